// run.ts: one measured run = one fresh server, one scenario, one round.
//   1. check that the client and server CPUs are idle (0.5 s of /proc/stat)
//   2. start the server pinned to its CPUs, wait until its port accepts
//   3. warm up (wrk, same shape) for --warmup seconds
//   4. perf window: 1 s of the same load with perf stat attached to the server
//   5. measured window (--duration): req/s and latency from the load generator,
//      server CPU from /proc/PID/stat before/after, the generator's own CPU
//   6. stop the server by PID
import * as perf from "./perf";
import * as proc from "./proc";
import { cpuBusy, delta, readCpu } from "./procstat";
import type { Scenario } from "./scenarios";
import { URL_PATH } from "./scenarios";
import { startServer, type RunningServer, type ServerDef } from "./servers";
import { runWeighttp } from "./weighttp";
import { runWrk, type WrkOptions } from "./wrk";

export const METRICS = [
  "reqPerSec",
  "p50Ms",
  "p99Ms",
  "cpuUsPerReq",
  "syscallsPerReq",
  "ctxSwitchesPerReq",
  "serverCpuPct",
  "clientCpuPct",
  "userSharePct",
] as const;
export type Metric = (typeof METRICS)[number];

export interface RunResult {
  round: number;
  scenario: string;
  server: string;
  ok: boolean;
  error: string | null;
  requests: number | null;
  /** wrk socket errors + non-2xx, or weighttp failed+errored */
  errors: number;
  values: Record<Metric, number | null>;
  /** the load generator's own report, for auditing a number in the table */
  toolOutput: string | null;
  /** busy share (%) of the client / server CPUs in the 0.5 s before the run */
  busyBeforePct: { client: number | null; server: number | null };
}

export interface RunEnv {
  serverCpus: number[];
  clientCpus: number[];
  tmpDir: string;
  warmupSec: number;
  durationSec: number;
  perf: boolean;
  pipelineScript: (depth: number) => string;
  weighttpBin: string | null;
}

/** seconds of load counted by perf, separately from the measured --duration */
export const PERF_WINDOW_SEC = 1;

const emptyValues = (): Record<Metric, number | null> =>
  Object.fromEntries(METRICS.map((m) => [m, null])) as Record<Metric, number | null>;

function wrkOptions(sc: Scenario, port: number, env: RunEnv, durationSec: number): WrkOptions {
  return {
    url: `http://127.0.0.1:${port}${URL_PATH}`,
    connections: sc.connections,
    durationSec,
    clientCpus: env.clientCpus.join(","),
    headers: sc.keepAlive ? [] : ["Connection: close"],
    ...(sc.pipeline > 1 ? { luaScript: env.pipelineScript(sc.pipeline) } : {}),
  };
}

interface Load {
  requests: number;
  errors: number;
  reqPerSec: number;
  p50Ms: number | null;
  p99Ms: number | null;
  clientCpu: number | null;
  raw: string;
}

/** Drive `seconds` of the scenario's load (weighttp: a count sized from `rate`). */
async function drive(sc: Scenario, port: number, env: RunEnv, seconds: number, rate: number | null): Promise<Load> {
  if (sc.tool === "wrk") return runWrk(wrkOptions(sc, port, env, seconds));
  if (env.weighttpBin === null) throw new Error("weighttp not found");
  const n = Math.min(50_000_000, Math.max(10_000, Math.round((rate ?? 20_000) * seconds)));
  const w = await runWeighttp({
    bin: env.weighttpBin,
    url: `http://127.0.0.1:${port}${URL_PATH}`,
    requests: n,
    connections: sc.connections,
    clientCpus: env.clientCpus.join(","),
    limitSec: seconds * 3 + 10,
  });
  return { ...w, p50Ms: null, p99Ms: null };
}

export async function runOne(def: ServerDef, sc: Scenario, round: number, env: RunEnv): Promise<RunResult> {
  const [client, server] = await Promise.all([cpuBusy(env.clientCpus, 500), cpuBusy(env.serverCpus, 500)]);
  const result: RunResult = {
    round,
    scenario: sc.id,
    server: def.name,
    ok: false,
    error: null,
    requests: null,
    errors: 0,
    values: emptyValues(),
    toolOutput: null,
    busyBeforePct: { client: client === null ? null : client * 100, server: server === null ? null : server * 100 },
  };
  let srv: RunningServer | null = null;
  try {
    const port = await proc.freePort();
    srv = await startServer(def, { port, serverCpus: env.serverCpus, tmpDir: env.tmpDir });
    // Warm-up has the scenario's shape; for weighttp it is a wrk keep-alive run
    // whose rate sizes weighttp's request counts.
    let warmRate: number | null = null;
    if (env.warmupSec > 0) warmRate = (await runWrk(wrkOptions(sc, port, env, env.warmupSec))).reqPerSec;

    // perf gets its own window, before the measured one: enabling the syscall
    // tracepoint slows every syscall on the box, which would inflate the CPU
    // µs/request of whoever makes more syscalls.
    let counts: perf.PerfCounts | null = null;
    let perfRequests = 0;
    if (env.perf) {
      const session = await perf.attach(srv.pid, env.clientCpus.join(","));
      try {
        perfRequests = (await drive(sc, port, env, PERF_WINDOW_SEC, warmRate)).requests;
      } finally {
        counts = await session.finish();
      }
    }

    const before = readCpu(srv.pid);
    const load = await drive(sc, port, env, env.durationSec, warmRate);
    const after = readCpu(srv.pid);
    const requests = load.requests;
    result.requests = requests;
    result.errors = load.errors;
    result.toolOutput = load.raw;
    const v = result.values;
    v.reqPerSec = load.reqPerSec;
    v.p50Ms = load.p50Ms;
    v.p99Ms = load.p99Ms;
    v.clientCpuPct = load.clientCpu === null ? null : load.clientCpu * 100;
    if (before !== null && after !== null && requests > 0) {
      const d = delta(before, after);
      const cpu = d.user + d.sys;
      v.cpuUsPerReq = (cpu * 1e6) / requests;
      v.serverCpuPct = d.wallSec > 0 ? (cpu / d.wallSec) * 100 : null;
      v.userSharePct = cpu > 0 ? (d.user / cpu) * 100 : null;
    }
    if (counts !== null && perfRequests > 0) {
      v.syscallsPerReq = counts.syscalls === null ? null : counts.syscalls / perfRequests;
      v.ctxSwitchesPerReq = counts.contextSwitches === null ? null : counts.contextSwitches / perfRequests;
    }
    result.ok = requests > 0;
    if (!result.ok) result.error = "no requests completed";
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e);
  } finally {
    if (srv !== null) await srv.stop();
  }
  return result;
}
