// proxy.ts: entry of `npm run bench:proxy` (issue 13): what relaying a request costs vw against
// nginx, on one machine over loopback. One backend (vw itself, one worker, normal scheduling)
// and the client (wrk -t1 -cN, keep-alive) share the lower CPUs; the proxy under test runs
// alone on the last CPU (2 CPUs: backend and client on CPU 0, the proxy on CPU 1). Proxies:
// vw --proxy (pool) and nginx proxy_pass with an upstream keepalive pool, vw --proxy-fresh and
// nginx proxy_pass without upstream keep-alive, each started fresh per run, in interleaved
// rounds whose order rotates. Per run: req/s, the proxy's CPU µs per request (its threads'
// schedstat), context switches per request, system calls per request (a separate perf window).
// The report: medians (min–max), medians of per-round ratios vw ÷ nginx, and issue 13's target
// (proxy CPU per request ≤ 0.8× nginx with keepalive upstream) met or NOT met.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { allowedCpus } from "./lib/cpus";
import { log, parseFlags, pickById, pinSelf, pinnableVw, runEntry, startPinned, writeResult } from "./lib/harness";
import * as perf from "./lib/perf";
import * as proc from "./lib/proc";
import { idleAtStart } from "./lib/procstat";
import { createTopology, netnsProblem, type Topology } from "./lib/netns";
import { backendCommand, PROXIES, proxyCommand } from "./lib/proxies";
import { writeProxyChart } from "./lib/charts";
import { markdown, summarise, TARGET, targetLine } from "./lib/proxy-report";
import { measureProxy, type Run } from "./lib/proxy-run";
import { schedstatAvailable } from "./lib/taskstat";
import { fmt, repoRoot, which } from "./lib/util";

const USAGE = `usage: npm run bench:proxy -- [flags]
  --rounds R        interleaved rounds, every proxy once per round, order rotated (default 5)
  --duration S      seconds measured per run, whole seconds (default 8)
  --warmup S        seconds of unmeasured load after each start (default 2)
  --proxies a,b     subset of: ${PROXIES.map((p) => p.id).join(",")} (default all available)
  --connections N   client connections, wrk -t1 -cN (default 32)
  --pool N          upstream connections: vw --proxy-conns N, nginx keepalive N (default: --connections)
  --path P          what the client asks for, a built-in of the backend (default /1b)
  --vw-args "A B"   extra flags for the vw proxies (e.g. "--policy other")
  --netns           the three-host topology: client, proxy and backend in three network
                    namespaces joined by veth pairs (root only; removed at the end)
  --no-perf         skip the perf window: syscalls/req becomes n/a
  --quick           1 round, 2 s measured, 1 s warm-up: checks that everything works
  --out DIR         where bench-proxy.md, proxy.json and proxy.svg go (default bench/results)`;

function rounded(v: unknown): unknown {
  if (typeof v === "number") return Number.isInteger(v) || !Number.isFinite(v) ? v : Number(v.toPrecision(6));
  if (Array.isArray(v)) return v.map(rounded);
  if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rounded(x)]));
  return v;
}

async function main(ctx: { tmpDir: string }): Promise<number> {
  const f = parseFlags(
    {
      "--rounds": "number", "--duration": "number", "--warmup": "count", "--proxies": "string", "--connections": "number",
      "--pool": "number", "--path": "string", "--vw-args": "string", "--netns": "switch", "--no-perf": "switch", "--quick": "switch", "--out": "string",
    },
    USAGE,
  );
  if (typeof f === "number") return f;
  const quick = f.has("--quick");
  const rounds = Math.max(1, Math.floor(f.num("--rounds", quick ? 1 : 5)));
  const durationSec = Math.max(1, Math.round(f.num("--duration", quick ? 2 : 8)));
  const warmupSec = Math.round(f.num("--warmup", quick ? 1 : 2));
  const connections = Math.floor(f.num("--connections", 32));
  const pool = Math.floor(f.num("--pool", connections));
  const urlPath = f.str("--path", "/1b");
  const vwArgs = f.str("--vw-args", "").split(/\s+/).filter((a) => a !== "");
  if (!urlPath.startsWith("/")) {
    log(`--path must start with /\n${USAGE}`);
    return 2;
  }
  const wanted = pickById(f, "--proxies", PROXIES, USAGE);
  if (wanted === null) return 2;

  const t0 = Date.now();
  const cli = pinnableVw(which);
  if (cli === null) return 1;
  if (which("wrk") === null) {
    log("wrk not found (apt-get install wrk): no client to run");
    return 1;
  }
  if (!schedstatAvailable()) {
    log("/proc/PID/task/TID/schedstat missing (kernel without CONFIG_SCHED_INFO): cannot measure the proxy's CPU time");
    return 1;
  }
  const netns = f.has("--netns");
  if (netns) {
    const why = netnsProblem() ?? (which("ss") === null ? "ss (iproute2) not found" : null);
    if (why !== null) {
      log(`--netns: ${why}`);
      return 1;
    }
  }
  const notes: string[] = [];
  const skipped: string[] = [];
  const warnings: string[] = [];

  // CPUs: the proxy alone on the last allowed CPU, backend and client on the others.
  const cpus = allowedCpus();
  const proxyCpu = cpus[cpus.length - 1]!;
  const shared = cpus.length > 1 ? cpus.slice(0, -1) : cpus;
  if (cpus.length < 2) warnings.push(`one CPU only (${proxyCpu}): the proxy shares it with the backend and the client, its figures include their interference`);

  const nginxMissing = which("nginx") === null ? "nginx not on PATH (apt-get install nginx-light)" : null;
  const specs = wanted.filter((s) => {
    const why = s.kind === "nginx" ? nginxMissing : null;
    if (why !== null) skipped.push(`${s.id} (${s.label}): ${why}`);
    return why === null;
  });
  if (specs.length === 0) {
    for (const k of skipped) log(`skipped: ${k}`);
    log("no proxy can run");
    return 1;
  }
  if (!specs.some((s) => s.id === TARGET.peer)) notes.push("nginx with keepalive upstream not run: issue 13's target cannot be judged");

  let perfOk = false;
  if (!f.has("--no-perf")) {
    const why = await perf.perfProblem();
    perfOk = why === null;
    if (why !== null) skipped.push(`perf (syscalls/req → n/a): ${why}`);
  } else {
    skipped.push("perf: --no-perf (syscalls/req → n/a)");
  }
  if (process.getuid?.() !== 0) notes.push("not root: the vw proxy's SCHED_FIFO is refused and its worker runs under SCHED_OTHER (it says so at start)");

  await pinSelf(shared);
  let topo: Topology | null = null;
  if (netns) {
    topo = createTopology();
    const t = topo;
    process.on("exit", () => t.destroy()); // Ctrl-C too: runEntry exits after stopping the children
    notes.push(
      `three network namespaces (${t.ns.client}: the client, ${t.ns.proxy}: the proxy, ${t.ns.backend}: the backend) joined by two veth pairs, 10.214.1.0/24 and 10.214.2.0/24; ` +
        "in the proxy's namespace net.ipv4.tcp_tw_reuse=1 (loopback has it by default), so --proxy-fresh does not run out of ports; removed at the end",
    );
  }
  const backendPort = topo === null ? await proc.freePort() : 8080;
  const backendAddr = `${topo?.backendAddr ?? "127.0.0.1"}:${backendPort}`;
  const be = backendCommand(cli, backendAddr, shared[0]!);
  const proxyHost = topo?.proxyAddr ?? "127.0.0.1";
  const wrkLine = `${topo === null ? "" : `ip netns exec ${topo.ns.client} `}taskset -c ${shared.join(",")} wrk -t1 -c${connections} -d${durationSec}s --latency http://${proxyHost}:PORT${urlPath}`;
  const perRun = 0.3 + 1 + warmupSec + (perfOk ? 1.6 : 0) + durationSec + 1;
  const est = rounds * specs.length * perRun;
  log(
    `vw bench:proxy: ${specs.map((s) => s.id).join(",")}; backend vw on CPU ${shared[0]}, client on CPU ${shared.join(",")}, proxy alone on CPU ${proxyCpu}; ` +
      `${rounds} round(s) × ${durationSec} s (+${warmupSec} s warm-up); estimated ${Math.ceil(est)} s (~${(est / 60).toFixed(1)} min)`,
  );
  for (const n of notes) log(n);
  for (const k of skipped) log(`skipped: ${k}`);

  const { busy: busyStart, line: idleLine } = await idleAtStart(cpus);
  log(idleLine);

  const runs: Run[] = [];
  let backend: proc.Child | null = null;
  try {
    if (topo === null) backend = await startPinned(be.cmd, be.args, shared.slice(0, 1), backendPort);
    else {
      backend = proc.start("ip", ["netns", "exec", topo.ns.backend, "taskset", "-c", String(shared[0]), be.cmd, ...be.args]);
      await topo.waitListening("backend", backendPort, backend);
    }
    const total = rounds * specs.length;
    for (let round = 1; round <= rounds; round++) {
      const k = (round - 1) % specs.length; // round 1 A B C D, round 2 B C D A, …
      const order = [...specs.slice(k), ...specs.slice(0, k)];
      for (const [i, spec] of order.entries()) {
        if (backend.hasExited()) throw new Error(`the backend exited: ${backend.output().trim().slice(-300)}`);
        const port = topo === null ? await proc.freePort() : 20000 + runs.length; // a fresh port per run in the namespace
        const { cmd, args } = proxyCommand(spec, { cli, listen: `${proxyHost}:${port}`, backend: backendAddr, cpu: proxyCpu, pool, vwArgs, tmpDir: ctx.tmpDir });
        const t = topo;
        const r = await measureProxy(spec.id, round, i + 1, {
          cmd, args, proxyCpu, clientCpus: shared, allCpus: cpus, url: `http://${proxyHost}:${port}${urlPath}`,
          proxyPrefix: t === null ? [] : t.prefix("proxy"),
          clientPrefix: t === null ? [] : t.prefix("client"),
          waitReady: (child) => (t === null ? proc.waitForPort(port, child, 10_000) : t.waitListening("proxy", port, child)),
          connections, warmupSec, durationSec, perf: perfOk, backendPid: backend.pid,
        });
        runs.push(r);
        if (r.busyBeforePct !== null && r.busyBeforePct > 20) {
          warnings.push(`round ${round} ${spec.id}: CPUs were ${r.busyBeforePct.toFixed(0)} % busy just before the run (something else is running)`);
        }
        if (r.ok && r.requests !== null && r.errors > r.requests * 0.001) warnings.push(`round ${round} ${spec.id}: ${r.errors} errors for ${r.requests} requests`);
        const v = r.values;
        log(
          `[${runs.length}/${total}] round ${round} ${spec.label}: ` +
            (r.ok
              ? `${fmt(v.reqPerSec)} req/s, ${fmt(v.cpuUsPerReq)} CPU µs/req, ${fmt(v.syscallsPerReq)} syscalls/req, ${fmt(v.csPerReq)} cs/req, proxy ${fmt(v.proxyCpuPct)} % CPU` +
              (r.errors > 0 ? `, ${r.errors} errors` : "")
              : `FAILED: ${(r.error ?? "").replace(/\s+/g, " ").slice(0, 200)}`),
        );
      }
    }
  } finally {
    if (backend !== null) await proc.stop(backend);
    topo?.destroy();
  }

  const summary = summarise(runs, specs);
  const wallSec = Math.round((Date.now() - t0) / 1000);
  const date = new Date().toISOString();
  const setup = [
    `${topo === null ? "Loopback" : "Three network namespaces joined by veth pairs (client ↔ proxy ↔ backend)"}, ${cpus.length} CPUs: the backend (\`${["vw", ...be.args.slice(1)].join(" ")}\`, pinned to CPU ${shared[0]}) and the client (\`${wrkLine}\`) on CPU ${shared.join(",")}; ` +
      `the proxy under test alone on CPU ${proxyCpu} (\`taskset -c ${proxyCpu}\`, one worker: vw \`--workers 1 --cpus ${proxyCpu}\`, nginx \`worker_processes 1\`, \`master_process off\`).`,
    `vw: \`vw --listen ${proxyHost}:PORT --workers 1 --cpus ${proxyCpu} --proxy ${backendAddr.replace(/:\d+$/, ":BPORT")} --proxy-conns ${pool} --quiet${vwArgs.length > 0 ? ` ${vwArgs.join(" ")}` : ""}\` (and \`--proxy-fresh\`). ` +
      `nginx: \`proxy_pass\` to an upstream with \`keepalive ${pool}\`, \`proxy_http_version 1.1\`, \`proxy_set_header Connection ""\` (and without: plain \`proxy_pass http://${backendAddr.replace(/:\d+$/, ":BPORT")}\`, HTTP/1.0, a connection per request); \`access_log off\`; both forward the client's Host. ` +
      `The pool is as large as the client's connections, so neither proxy waits for an upstream connection nor closes one it could keep.`,
    `${rounds} round(s); in each, every proxy once, started fresh: ${warmupSec} s warm-up, ${perfOk ? "a 1 s perf window, " : ""}then ${durationSec} s measured; the order rotates by one per round. ` +
      `Kernel ${os.release()}, node ${process.version}, took ${wallSec} s. Only ratios within one run mean anything.`,
    "",
    `- ${idleLine}`,
  ];
  const md = markdown(summary, runs, { date, setup, notes, skipped, warnings, specs });
  process.stdout.write(md);
  for (const t of summary.targets) log(targetLine(t, specs));
  const outDir = f.has("--out") ? f.str("--out", "") : path.join(repoRoot(), "bench", "results");
  const json = writeResult(outDir, "proxy.json", rounded({
    meta: { topology: topo === null ? "loopback" : "netns", date, kernel: `${os.type()} ${os.release()}`, node: process.version, cpus, proxyCpu, clientCpus: shared, backendCpu: shared[0], connections, pool, path: urlPath, vwArgs, rounds, durationSec, warmupSec, quick, perf: perfOk, order: "rotated", wallSec },
    idleAtStart: { busyPct: busyStart === null ? null : busyStart * 100, line: idleLine },
    target: TARGET,
    notes,
    skipped,
    warnings,
    summary,
    runs,
  }));
  fs.writeFileSync(path.join(outDir, "bench-proxy.md"), md);
  await writeProxyChart(outDir, { meta: { topology: topo === null ? "loopback" : "netns", date, rounds, durationSec, warmupSec, connections, path: urlPath, proxyCpu, backendCpu: shared[0] }, summary });
  log(`wrote ${json}, bench-proxy.md and proxy.svg`);
  return runs.some((r) => !r.ok) ? 1 : 0;
}

runEntry("proxy", main);
