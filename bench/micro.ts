// micro.ts: entry of `npm run bench:micro`: costs visible from JavaScript, with tinybench.
//   - StatsReader.snapshot(): every counter of every worker, read from shared memory
//   - Sampler.next(): one live-view interval (the counters plus /proc reads)
//   - building the response table: the built-in one, and one of 10,000 files
//     (buildTable with a --dir when content.ts has it, else 10,000 --route-like specs)
//   - a keep-alive round trip on one connection (GET /1b, wait for the whole response):
//     vw against a node:http server, same run, servers pinned to the same CPU
// See bench/README.md.
import * as fs from "node:fs";
import * as path from "node:path";
import { Bench } from "tinybench";
import * as content from "../src/content/content";
import { resolveConfig, start, type Server } from "../src/index";
import type { NativeTable, ResponseSpec } from "../src/native";
import { Sampler } from "../src/stats/sampler";
import { planCpus } from "./lib/cpus";
import { log, parseFlags, runEntry, startPinned, writeResult } from "./lib/harness";
import * as proc from "./lib/proc";
import { RoundTripper } from "./lib/rawhttp";
import { URL_PATH } from "./lib/scenarios";
import { median } from "./lib/util";

const USAGE = `usage: npm run bench:micro -- [flags]
  --files N     files in the table-building case (default 10000)
  --time MS     tinybench time per task (default 1000)
  --quick       200 ms per task, 1,000 files: checks that everything works
  --out DIR     where micro.json goes (default bench/results)`;

/** 10,000 (or n) small files in 100 per directory, the shape of a static site. */
function writeFiles(dir: string, n: number): void {
  for (let i = 0; i < n; i++) {
    const sub = path.join(dir, `d${String(Math.floor(i / 100)).padStart(3, "0")}`);
    if (i % 100 === 0) fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, `f${String(i).padStart(5, "0")}.html`), `<p>file ${i}</p>\n`.repeat(4));
  }
}

/**
 * How to build a table of n files: buildTable with a directory when content.ts offers one
 * (ContentOptions.dirs), else n --route-like specs built in memory. Detected at run time.
 */
function tableBuilder(dir: string, n: number): { label: string; build: () => NativeTable } {
  const mod = content as unknown as Record<string, unknown>;
  const bt = mod["buildTable"];
  const dc = mod["defaultContent"];
  if (typeof bt === "function" && typeof dc === "object" && dc !== null && Array.isArray((dc as Record<string, unknown>)["dirs"])) {
    const build = bt as (o: object) => NativeTable;
    const opts = { ...(dc as object), dirs: [dir] };
    return { label: `buildTable({ dirs: [${n} files] })`, build: () => build(opts) };
  }
  const builtin = content.builtinTable();
  return {
    label: `builtinTable() + ${n} --route-like specs in memory`,
    build: () => {
      const routes: ResponseSpec[] = [...builtin.routes];
      for (let i = 0; i < n; i++) {
        routes.push({ path: `/d${Math.floor(i / 100)}/f${i}.html`, status: 200, headers: "Content-Type: text/html; charset=utf-8\r\n", body: Buffer.from(`<p>file ${i}</p>\n`.repeat(4)) });
      }
      return { routes, errors: builtin.errors };
    },
  };
}

async function main(ctx: { tmpDir: string }): Promise<number> {
  const f = parseFlags({ "--files": "number", "--time": "number", "--quick": "switch", "--out": "string" }, USAGE);
  if (typeof f === "number") return f;
  const quick = f.has("--quick");
  const nFiles = Math.floor(f.num("--files", quick ? 1000 : 10_000));
  const time = f.num("--time", quick ? 200 : 1000);
  const cpus = planCpus();
  const serverCpu = cpus.server[0]!;

  // vw in this process: its worker is a native thread pinned to the server CPU. Afterwards only
  // the main thread (this script, the client side) moves to the client CPUs.
  let server: Server;
  try {
    server = start(resolveConfig({ listen: ["127.0.0.1:0"], workers: 1, cpus: String(serverCpu), policy: "other" }));
  } catch (e) {
    log(`vw did not start: ${e instanceof Error ? e.message : String(e)} (is the addon built? npm run build)`);
    return 1;
  }
  const nodeScript = path.join(__dirname, "lib", "node-http-server.js");
  let nodeSrv: proc.Child | null = null;
  const conns: RoundTripper[] = [];
  try {
    await proc.run("taskset", ["-p", "-c", cpus.client.join(","), String(process.pid)], 5000);
    const vwPort = server.listen[0]!.port;
    const nodePort = await proc.freePort();
    nodeSrv = await startPinned(process.execPath, [nodeScript, String(nodePort)], [serverCpu], nodePort);
    const vwConn = await RoundTripper.open(vwPort, URL_PATH);
    const nodeConn = await RoundTripper.open(nodePort, URL_PATH);
    conns.push(vwConn, nodeConn);

    const sampler = new Sampler(
      server.stats,
      server.workers.map((w) => ({ id: w.id, cpu: w.cpu, tid: w.tid })),
    );
    const filesDir = path.join(ctx.tmpDir, "files");
    log(`writing ${nFiles} files for the table case…`);
    writeFiles(filesDir, nFiles);
    const big = tableBuilder(filesDir, nFiles);
    const probe = big.build();
    log(
      `vw worker (SCHED_OTHER) and the node:http server on CPU ${serverCpu}, this script (client, JS) on CPU ${cpus.client.join(",")}; ` +
        `table case: ${big.label} → ${probe.routes.length} routes; tinybench ${time} ms per task`,
    );

    const fast = new Bench({ time, warmupTime: Math.min(time, 200) });
    fast
      .add("StatsReader.snapshot()", () => {
        server.stats.snapshot();
      })
      .add("Sampler.next()", () => {
        sampler.next();
      })
      .add("builtinTable()", () => {
        content.builtinTable();
      })
      .add(`keep-alive round trip GET ${URL_PATH}: vw`, () => vwConn.rt())
      .add(`keep-alive round trip GET ${URL_PATH}: node:http`, () => nodeConn.rt());
    // Building thousands of entries takes long per call: a few iterations, not a time budget.
    const slow = new Bench({ time: 0, iterations: quick ? 3 : 8, warmupTime: 0, warmupIterations: 1 });
    slow.add(big.label, () => {
      big.build();
    });
    for (const b of [fast, slow]) {
      await b.warmup();
      await b.run();
    }
    const failed = [...fast.tasks, ...slow.tasks].filter((t) => t.result?.error !== undefined);
    for (const t of failed) log(`task ${t.name} failed: ${String(t.result?.error)}`);
    const rows = [...fast.table(), ...slow.table()].filter((r): r is Record<string, string | number> => r !== null);
    console.table(rows);
    const file = writeResult(f.has("--out") ? f.str("--out", "") : null, "micro.json", {
      meta: { date: new Date().toISOString(), node: process.version, serverCpu, clientCpus: cpus.client, files: nFiles, tableCase: big.label, timeMs: time, quick },
      tasks: [...fast.tasks, ...slow.tasks].map((t) => ({
        name: t.name,
        samples: t.result?.samples.length ?? 0,
        meanMs: t.result?.mean ?? null,
        p50Ms: median(t.result?.samples ?? []),
        p99Ms: t.result?.p99 ?? null,
        hz: t.result?.hz ?? null,
        rme: t.result?.rme ?? null,
        error: t.result?.error === undefined ? null : String(t.result.error),
      })),
    });
    log(`wrote ${file}`);
    return failed.length > 0 ? 1 : 0;
  } finally {
    for (const c of conns) c.close();
    if (nodeSrv !== null) await proc.stop(nodeSrv);
    await server.stop();
  }
}

runEntry("micro", main);
