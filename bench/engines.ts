// engines.ts: entry of `npm run bench:engines`: vw's engines side by side, per request. For each
// engine (epoll, uring, uring with --sqpoll, poll, select, blocking) and each load shape:
//   ka100       100 keep-alive connections
//   ka100+idleN the same 100 active connections with N idle keep-alive ones open beside them
//               (N from --idle, default 1,000 and 10,000), held by bench/lib/conns-client
//   pipe16      100 connections, 16 pipelined requests per write
//   close50     no keep-alive (Connection: close), 50 connections
// it measures the worker's CPU µs/request, system calls/request, context switches/request and
// req/s. Rounds are interleaved (in each round every shape runs every engine in turn, each on a
// fresh server), so slow drift of the machine spreads over all engines alike.
//
// Where the numbers come from, read just before and after the measured wrk window:
// - worker CPU µs/req: vw_cpu_seconds_total of worker 0 (/metrics), which covers the worker
//   thread, --engine blocking's connection threads (live from /proc, ended from what each
//   measured of itself just before it exited) and the --sqpoll kernel thread: the engine's own
//   cost. It misses only each blocking thread's bare exit (after its last measurement).
// - process CPU µs/req: utime+stime of the whole server process (/proc/PID/stat; includes exited
//   threads), as `npm run bench` measures servers. It adds Node's main thread, whose once-a-second
//   /proc sampling grows with the number of threads (blocking with 10,000 idle connections).
// - syscalls/req: vw_syscalls_total over all kinds (each engine's count equals perf's raw_syscalls:sys_enter, as
//   test/engines.test.ts checks), so no perf window slows the machine.
// - ctx sw/req: vw_context_switches_total of worker 0 (same threads as worker CPU).
// - requests: vw_requests_total; req/s: wrk's.
//
// Output: a Markdown table on stdout, bench/results/engines.json (every run's raw values too) and
// bench/results/engines.svg (CPU µs/request against idle connections, one line per engine).
import * as fs from "node:fs";
import * as path from "node:path";
import { native } from "../src/native";
import { writeEnginesChart } from "./lib/charts";
import { planCpus } from "./lib/cpus";
import { Flags, log, mdTable, pinSelf, runEntry, startPinned, UsageError, vwCli, writeResult } from "./lib/harness";
import { readCpu } from "./lib/procstat";
import * as proc from "./lib/proc";
import { fmt, sleep, spread, which, type Spread } from "./lib/util";
import { runWrk, writePipelineScript } from "./lib/wrk";

const USAGE = `usage: npm run bench:engines -- [flags]
  --rounds R       interleaved rounds (default 3)
  --duration S     seconds of measured load per run, whole seconds (default 3)
  --warmup S       seconds of unmeasured load per run (default 1)
  --engines a,b    subset of: epoll,uring,uring-sqpoll,poll,select,blocking (default: all built)
  --scenarios a,b  subset of: ka100,idle,pipe16,close50 (default all; idle = one per --idle count)
  --idle N,M       idle connection counts beside the 100 active ones (default 1000,10000)
  --quick          1 round, 1 s, --idle 1000: checks that everything works, measures nothing
  --out DIR        where engines.json and engines.svg go (default bench/results)`;

const URL_PATH = "/1b";
const ACTIVE = 100;

interface EngineDef {
  name: string;
  engine: string;
  args: string[];
}

const ALL_ENGINES: EngineDef[] = [
  { name: "epoll", engine: "epoll", args: ["--engine", "epoll"] },
  { name: "uring", engine: "uring", args: ["--engine", "uring"] },
  { name: "uring-sqpoll", engine: "uring", args: ["--engine", "uring", "--sqpoll"] },
  { name: "poll", engine: "poll", args: ["--engine", "poll"] },
  { name: "select", engine: "select", args: ["--engine", "select"] },
  { name: "blocking", engine: "blocking", args: ["--engine", "blocking"] },
];

interface Shape {
  id: string;
  title: string;
  connections: number;
  idle: number;
  keepAlive: boolean;
  pipeline: number;
}

function shapes(idle: readonly number[]): Shape[] {
  return [
    { id: "ka100", title: `keep-alive, ${ACTIVE} connections`, connections: ACTIVE, idle: 0, keepAlive: true, pipeline: 1 },
    ...idle.map((n) => ({
      id: `ka100+idle${n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : n}`,
      title: `keep-alive, ${ACTIVE} active connections and ${n} idle ones`,
      connections: ACTIVE,
      idle: n,
      keepAlive: true,
      pipeline: 1,
    })),
    { id: "pipe16", title: `keep-alive, 16 pipelined requests per write, ${ACTIVE} connections`, connections: ACTIVE, idle: 0, keepAlive: true, pipeline: 16 },
    { id: "close50", title: "no keep-alive (Connection: close), 50 connections", connections: 50, idle: 0, keepAlive: false, pipeline: 1 },
  ];
}

const METRICS = ["reqPerSec", "cpuUsPerReq", "processCpuUsPerReq", "syscallsPerReq", "csPerReq"] as const;
type Metric = (typeof METRICS)[number];

interface Run {
  round: number;
  shape: string;
  engine: string;
  ok: boolean;
  error: string | null;
  requests: number | null;
  wrkErrors: number;
  idleHeld: number | null;
  values: Record<Metric, number | null>;
  raw: { before: Scrape | null; after: Scrape | null; wrk: string | null };
}

/** Worker 0's counters from vw's /metrics. */
interface Scrape {
  requests: number;
  syscalls: number;
  cs: number;
  cpuSec: number;
}

async function scrape(mport: number): Promise<Scrape> {
  const text = await (await fetch(`http://127.0.0.1:${mport}/metrics`)).text();
  const one = (re: RegExp): number => {
    const m = re.exec(text);
    if (m === null) throw new Error(`/metrics lacks ${re.source}`);
    return Number(m[1]);
  };
  return {
    requests: one(/^vw_requests_total\{worker="0"\} (\d+)$/m),
    // The sum over system call kinds (one series per kind).
    syscalls: [...text.matchAll(/^vw_syscalls_total\{worker="0",syscall="[a-z_]+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0),
    cs: one(/^vw_context_switches_total\{worker="0",kind="voluntary"\} (\d+)$/m) + one(/^vw_context_switches_total\{worker="0",kind="involuntary"\} (\d+)$/m),
    cpuSec: one(/^vw_cpu_seconds_total\{worker="0",mode="user"\} ([\d.e+-]+)$/m) + one(/^vw_cpu_seconds_total\{worker="0",mode="system"\} ([\d.e+-]+)$/m),
  };
}

/** The workers accept before the launcher has opened /metrics: wait (≤ 5 s) for it too. */
async function metricsUp(mport: number): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      await scrape(mport);
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(25);
    }
  }
}

/** Why an engine cannot run a shape at all (select: its fd_set ends at fd 1023), else null. */
function cannot(e: EngineDef, s: Shape): string | null {
  if (e.engine === "select" && s.idle + s.connections > 900) {
    return `select holds fds below 1024 only (FD_SETSIZE): ${s.idle + s.connections} connections do not fit`;
  }
  return null;
}

interface Ctx {
  cli: string;
  serverCpus: number[];
  clientCpus: number[];
  tmpDir: string;
  warmupSec: number;
  durationSec: number;
}

async function runOne(e: EngineDef, s: Shape, round: number, ctx: Ctx): Promise<Run> {
  const r: Run = {
    round,
    shape: s.id,
    engine: e.name,
    ok: false,
    error: null,
    requests: null,
    wrkErrors: 0,
    idleHeld: null,
    values: { reqPerSec: null, cpuUsPerReq: null, processCpuUsPerReq: null, syscallsPerReq: null, csPerReq: null },
    raw: { before: null, after: null, wrk: null },
  };
  const port = await proc.freePort();
  const mport = await proc.freePort();
  const args = [ctx.cli, "--listen", `127.0.0.1:${port}`, "--metrics", `127.0.0.1:${mport}`, "--workers", "1", "--cpus", String(ctx.serverCpus[0]), "--quiet", ...e.args];
  let server: proc.Child | null = null;
  let idle: proc.Child | null = null;
  try {
    server = await startPinned(process.execPath, args, ctx.serverCpus, port);
    await metricsUp(mport);
    if (s.idle > 0) {
      const script = path.join(__dirname, "lib", "conns-client.js");
      idle = proc.start("taskset", ["-c", ctx.clientCpus.join(","), process.execPath, script, String(port), String(s.idle), "500", "600"], { keepStdout: true });
      const deadline = Date.now() + 120_000;
      let ready: RegExpExecArray | null = null;
      while (Date.now() < deadline && !idle.hasExited()) {
        ready = /READY (\d+) (\d+)/.exec(idle.stdout());
        if (ready !== null) break;
        await sleep(100);
      }
      if (ready === null) throw new Error(`idle client did not get ready: ${idle.output().trim().slice(-300)}`);
      r.idleHeld = Number(ready[1]);
      if (Number(ready[2]) > 0) throw new Error(`${ready[2]} of ${s.idle} idle connections failed`);
    }
    const wrk = (seconds: number) =>
      runWrk({
        url: `http://127.0.0.1:${port}${URL_PATH}`,
        connections: s.connections,
        durationSec: seconds,
        clientCpus: ctx.clientCpus.join(","),
        headers: s.keepAlive ? [] : ["Connection: close"],
        ...(s.pipeline > 1 ? { luaScript: writePipelineScript(ctx.tmpDir, s.pipeline, URL_PATH) } : {}),
      });
    if (ctx.warmupSec > 0) await wrk(ctx.warmupSec);
    const before = await scrape(mport);
    const cpu0 = readCpu(server.pid);
    const load = await wrk(ctx.durationSec);
    await sleep(50); // blocking: threads fold their counts before their next read
    const cpu1 = readCpu(server.pid);
    const after = await scrape(mport);
    r.raw = { before, after, wrk: load.raw };
    const req = after.requests - before.requests;
    r.requests = req;
    r.wrkErrors = load.errors;
    r.values.reqPerSec = load.reqPerSec;
    if (req > 0) {
      r.values.cpuUsPerReq = ((after.cpuSec - before.cpuSec) * 1e6) / req;
      if (cpu0 !== null && cpu1 !== null) r.values.processCpuUsPerReq = ((cpu1.user + cpu1.sys - cpu0.user - cpu0.sys) * 1e6) / req;
      r.values.syscallsPerReq = (after.syscalls - before.syscalls) / req;
      r.values.csPerReq = (after.cs - before.cs) / req;
    }
    r.ok = req > 0;
    if (!r.ok) r.error = "no requests completed";
  } catch (err) {
    r.error = err instanceof Error ? err.message : String(err);
  } finally {
    if (idle !== null) await proc.stop(idle);
    if (server !== null) await proc.stop(server);
  }
  return r;
}

interface Cell {
  shape: string;
  engine: string;
  runs: number;
  failed: number;
  metrics: Record<Metric, Spread | null>;
}

function summarise(runs: readonly Run[], shapeIds: readonly string[], engines: readonly string[]): Cell[] {
  const out: Cell[] = [];
  for (const sh of shapeIds) {
    for (const en of engines) {
      const mine = runs.filter((r) => r.shape === sh && r.engine === en);
      if (mine.length === 0) continue;
      const ok = mine.filter((r) => r.ok);
      out.push({
        shape: sh,
        engine: en,
        runs: ok.length,
        failed: mine.length - ok.length,
        metrics: Object.fromEntries(METRICS.map((m) => [m, spread(ok.map((r) => r.values[m]))])) as Record<Metric, Spread | null>,
      });
    }
  }
  return out;
}

const cellText = (s: Spread | null, digits = 3): string =>
  s === null ? "n/a" : s.n > 1 ? `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})` : fmt(s.median, digits);

function markdown(meta: Record<string, unknown>, shapesRun: readonly Shape[], cells: readonly Cell[], notes: readonly string[], failed: readonly Run[]): string {
  const out: string[] = [`# vw engines, ${String(meta.date)}`, ""];
  out.push(
    `${String(meta.rounds)} round(s) × ${String(meta.durationSec)} s measured (+${String(meta.warmupSec)} s warm-up), engines interleaved per round, a fresh server per run. ` +
      `Server CPU ${String(meta.serverCpus)}, client CPUs ${String(meta.clientCpus)}; ${String(meta.kernel)}; took ${String(meta.wallSec)} s.`,
  );
  out.push(
    "Per request. Worker CPU: the engine's threads (worker, blocking's connection threads, the SQPOLL thread); process CPU: the whole server process. " +
      "Values: median (min–max) over rounds; compare within one run only.",
  );
  for (const n of notes) out.push(`- ${n}`);
  for (const sh of shapesRun) {
    const rows = cells.filter((c) => c.shape === sh.id);
    if (rows.length === 0) continue;
    out.push("", `## ${sh.id}: ${sh.title}`, "");
    out.push(
      mdTable(
        ["engine", "worker CPU µs/req", "process CPU µs/req", "syscalls/req", "ctx sw/req", "req/s", "runs ok/failed"],
        rows.map((c) => [
          c.engine,
          cellText(c.metrics.cpuUsPerReq),
          cellText(c.metrics.processCpuUsPerReq),
          cellText(c.metrics.syscallsPerReq),
          cellText(c.metrics.csPerReq, 2),
          cellText(c.metrics.reqPerSec),
          `${c.runs}/${c.failed}`,
        ]),
      ),
    );
  }
  if (failed.length > 0) {
    out.push("", "## failed runs", "");
    for (const f of failed) out.push(`- round ${f.round} ${f.shape} ${f.engine}: ${(f.error ?? "?").replace(/\s+/g, " ").slice(0, 300)}`);
  }
  return `${out.join("\n")}\n`;
}

function pick<T>(all: readonly T[], wanted: string | null, key: (t: T) => string, what: string): T[] {
  if (wanted === null) return [...all];
  const names = wanted.split(",").map((x) => x.trim()).filter(Boolean);
  const unknown = names.filter((n) => !all.some((t) => key(t) === n));
  if (unknown.length > 0) throw new UsageError(`unknown ${what}: ${unknown.join(",")} (known: ${all.map(key).join(",")})\n${USAGE}`, 2);
  return all.filter((t) => names.includes(key(t)));
}

async function main(ctx: { tmpDir: string }): Promise<number> {
  let f: Flags;
  let engines: EngineDef[];
  let shapeList: Shape[];
  let rounds: number;
  let durationSec: number;
  let warmupSec: number;
  try {
    f = new Flags(
      process.argv.slice(2),
      { "--rounds": "number", "--duration": "number", "--warmup": "count", "--engines": "string", "--scenarios": "string", "--idle": "string", "--quick": "switch", "--out": "string" },
      USAGE,
    );
    const quick = f.has("--quick");
    rounds = Math.floor(f.num("--rounds", quick ? 1 : 3));
    durationSec = Math.max(1, Math.floor(f.num("--duration", quick ? 1 : 3)));
    warmupSec = Math.floor(f.num("--warmup", quick ? 0 : 1));
    const idle = f
      .str("--idle", quick ? "1000" : "1000,10000")
      .split(",")
      .map(Number)
      .filter((n) => Number.isInteger(n) && n > 0);
    engines = pick(ALL_ENGINES, f.has("--engines") ? f.str("--engines", "") : null, (e) => e.name, "engine");
    const all = shapes(idle);
    const wanted = f.has("--scenarios") ? f.str("--scenarios", "").split(",") : null;
    shapeList = wanted === null ? all : all.filter((s) => wanted.includes(s.id) || (wanted.includes("idle") && s.idle > 0));
    if (shapeList.length === 0) throw new UsageError(`no scenario matches ${wanted?.join(",")}\n${USAGE}`, 2);
  } catch (e) {
    if (e instanceof UsageError) {
      log(e.message);
      return e.code;
    }
    throw e;
  }
  const t0 = Date.now();
  const cli = vwCli();
  if (cli === null) {
    log("dist/src/cli.js not built (run `npm run build`)");
    return 1;
  }
  for (const tool of ["taskset", "wrk"]) {
    if (which(tool) === null) {
      log(`${tool} not found (apt-get install ${tool === "wrk" ? "wrk" : "util-linux"})`);
      return 1;
    }
  }
  const notes: string[] = [];
  // Engines this build has (uring needs liburing at build time).
  const built = native().engines();
  engines = engines.filter((e) => {
    if (built.includes(e.engine)) return true;
    notes.push(`skipped: ${e.name}: this build has no ${e.engine} engine (apt-get install liburing-dev, then npm rebuild)`);
    return false;
  });
  const cpus = planCpus();
  if (cpus.allowed.length < 2) notes.push("warning: one CPU only: server and client share it");
  await pinSelf(cpus.client);
  const perRun = 1.2 + warmupSec + durationSec;
  const idleSec = shapeList.reduce((n, s) => n + s.idle / 2000, 0);
  const est = rounds * (shapeList.length * engines.length * perRun + engines.length * idleSec);
  log(
    `vw bench:engines: ${engines.map((e) => e.name).join(",")} × ${shapeList.map((s) => s.id).join(",")}, ${rounds} round(s) × ${durationSec} s ` +
      `(+${warmupSec} s warm-up); server CPU ${cpus.server[0]}, client CPUs ${cpus.client.join(",")}; estimated ${Math.ceil(est)} s`,
  );
  const c: Ctx = { cli, serverCpus: [cpus.server[0]!], clientCpus: cpus.client, tmpDir: ctx.tmpDir, warmupSec, durationSec };
  const runs: Run[] = [];
  const total = rounds * shapeList.length * engines.length;
  let n = 0;
  for (let round = 1; round <= rounds; round++) {
    for (const s of shapeList) {
      for (const e of engines) {
        n++;
        const why = cannot(e, s);
        if (why !== null) {
          if (round === 1) notes.push(`n/a: ${s.id} ${e.name}: ${why}`);
          continue;
        }
        const r = await runOne(e, s, round, c);
        runs.push(r);
        const v = r.values;
        log(
          `[${n}/${total}] round ${round} ${s.id} ${e.name}: ` +
            (r.ok
              ? `${fmt(v.cpuUsPerReq)} µs/req (process ${fmt(v.processCpuUsPerReq)}), ${fmt(v.syscallsPerReq)} syscalls/req, ${fmt(v.csPerReq)} cs/req, ${fmt(v.reqPerSec)} req/s${r.wrkErrors > 0 ? `, ${r.wrkErrors} wrk errors` : ""}`
              : `FAILED: ${(r.error ?? "").replace(/\s+/g, " ").slice(0, 200)}`),
        );
      }
    }
  }
  const engineNames = engines.map((e) => e.name);
  const cells = summarise(runs, shapeList.map((s) => s.id), engineNames);
  const meta = {
    date: new Date().toISOString(),
    rounds,
    durationSec,
    warmupSec,
    serverCpus: c.serverCpus.join(","),
    clientCpus: c.clientCpus.join(","),
    kernel: `${fs.readFileSync("/proc/sys/kernel/ostype", "utf8").trim()} ${fs.readFileSync("/proc/sys/kernel/osrelease", "utf8").trim()}`,
    node: process.version,
    wallSec: Math.round((Date.now() - t0) / 1000),
  };
  const failed = runs.filter((r) => !r.ok);
  process.stdout.write(markdown(meta, shapeList, cells, notes, failed));
  const json = writeResult(f.has("--out") ? f.str("--out", "") : null, "engines.json", { meta, notes, shapes: shapeList, engines: engineNames, summary: cells, runs });
  const chart = await writeEnginesChart(path.dirname(json), { meta, shapes: shapeList, engines: engineNames, summary: cells });
  log(`wrote ${json} and ${chart}`);
  return failed.length > 0 ? 1 : 0;
}

runEntry("engines", main);
