// proxy-run.ts: one run of `npm run bench:proxy`: a proxy started fresh and pinned, warmed up,
// a perf window (system calls), then the measured wrk window, read from both sides: the
// client's requests and latency, the proxy's CPU time and context switches (all its threads,
// /proc/PID/task/*), the backend's CPU time. Stopped by its PID whatever happens.
import * as perf from "./perf";
import * as proc from "./proc";
import { cpuBusy, readCpu } from "./procstat";
import { readTasks, taskDelta, type TaskTotals } from "./taskstat";
import { runWrk, type WrkResult } from "./wrk";

export interface RunPlan {
  /** the proxy's command (its PID is the one measured: taskset/ip netns exec exec it) */
  cmd: string;
  args: string[];
  /** the proxy's CPU */
  proxyCpu: number;
  /** where the client (wrk, perf, this script) runs */
  clientCpus: number[];
  /** every CPU, for the idle check */
  allCpus: number[];
  /** what the proxy and wrk run under ([] on loopback; ["ip", "netns", "exec", NS] with --netns) */
  proxyPrefix: string[];
  clientPrefix: string[];
  /** resolves once the proxy listens (rejects when it exited or took too long) */
  waitReady: (child: proc.Child) => Promise<void>;
  url: string;
  connections: number;
  warmupSec: number;
  durationSec: number;
  perf: boolean;
  backendPid: number;
}

export interface RunValues {
  reqPerSec: number | null;
  /** proxy CPU time (schedstat, all threads) ÷ requests, µs */
  cpuUsPerReq: number | null;
  /** the same from /proc/PID/stat utime+stime (ticks): a cross-check */
  statCpuUsPerReq: number | null;
  /** utime ÷ (utime+stime), % */
  userPct: number | null;
  /** the proxy's threads' context switches (voluntary + involuntary) ÷ requests */
  csPerReq: number | null;
  /** perf window: raw_syscalls:sys_enter of the proxy ÷ requests in that window */
  syscallsPerReq: number | null;
  /** perf window: context-switches ÷ requests (a cross-check of csPerReq) */
  perfCsPerReq: number | null;
  /** proxy CPU time ÷ wall time, % of one CPU */
  proxyCpuPct: number | null;
  /** wrk's CPU, % of one CPU */
  clientCpuPct: number | null;
  /** backend CPU time ÷ requests, µs: the same work behind every proxy */
  backendCpuUsPerReq: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface Run {
  round: number;
  /** position within the round, from 1 */
  slot: number;
  proxy: string;
  ok: boolean;
  error: string | null;
  /** busy share (%) of every CPU in the 0.3 s before the proxy started */
  busyBeforePct: number | null;
  requests: number | null;
  /** wrk socket errors + non-2xx/3xx responses */
  errors: number;
  values: RunValues;
  wrk: string | null;
}

const per = (a: number | null, b: number | null): number | null => (a === null || b === null || b <= 0 ? null : a / b);

function emptyValues(): RunValues {
  return {
    reqPerSec: null, cpuUsPerReq: null, statCpuUsPerReq: null, userPct: null, csPerReq: null, syscallsPerReq: null,
    perfCsPerReq: null, proxyCpuPct: null, clientCpuPct: null, backendCpuUsPerReq: null, p50Ms: null, p99Ms: null,
  };
}

/** Starts the proxy, measures it, stops it by its PID. Never throws: a failure is in the Run. */
export async function measureProxy(id: string, round: number, slot: number, p: RunPlan): Promise<Run> {
  const busy = await cpuBusy(p.allCpus, 300);
  const r: Run = { round, slot, proxy: id, ok: false, error: null, busyBeforePct: busy === null ? null : busy * 100, requests: null, errors: 0, values: emptyValues(), wrk: null };
  const clientCpus = p.clientCpus.join(",");
  const wrk = (seconds: number): Promise<WrkResult> => runWrk({ url: p.url, connections: p.connections, durationSec: seconds, clientCpus, prefix: p.clientPrefix });
  let child: proc.Child | null = null;
  try {
    const pinned = ["taskset", "-c", String(p.proxyCpu), p.cmd, ...p.args];
    const line = [...p.proxyPrefix, ...pinned];
    child = proc.start(line[0]!, line.slice(1)); // ip netns exec and taskset exec: the PID is the proxy's
    await p.waitReady(child);
    const pid = child.pid;
    if (p.warmupSec > 0) await wrk(p.warmupSec);
    if (p.perf) {
      const session = await perf.attach(pid, clientCpus);
      let n: number | null = null;
      try {
        n = (await wrk(1)).requests;
      } finally {
        const c = await session.finish();
        r.values.syscallsPerReq = per(c.syscalls, n);
        r.values.perfCsPerReq = per(c.contextSwitches, n);
      }
    }
    const t0 = readTasks(pid);
    const s0 = readCpu(pid);
    const b0 = readTasks(p.backendPid);
    const load = await wrk(p.durationSec);
    const t1 = readTasks(pid);
    const s1 = readCpu(pid);
    const b1 = readTasks(p.backendPid);
    if (child.hasExited()) throw new Error(`the proxy exited during the run: ${child.output().trim().slice(-300)}`);
    r.wrk = load.raw;
    r.requests = load.requests;
    r.errors = load.errors;
    const v = r.values;
    v.reqPerSec = load.reqPerSec;
    v.p50Ms = load.p50Ms;
    v.p99Ms = load.p99Ms;
    v.clientCpuPct = load.clientCpu === null ? null : load.clientCpu * 100;
    if (t0 !== null && t1 !== null && s0 !== null && s1 !== null) {
      const d: TaskTotals = taskDelta(t0, t1);
      v.cpuUsPerReq = per(d.runNs / 1000, load.requests);
      v.csPerReq = per(d.contextSwitches, load.requests);
      v.proxyCpuPct = per(d.runNs / 1e4, s1.at - s0.at); // ns ÷ (ms × 1e6) × 100 = % of one CPU
      const statSec = s1.user + s1.sys - s0.user - s0.sys;
      v.statCpuUsPerReq = per(statSec * 1e6, load.requests);
      v.userPct = statSec > 0 ? (100 * (s1.user - s0.user)) / statSec : null;
    }
    if (b0 !== null && b1 !== null) v.backendCpuUsPerReq = per((b1.runNs - b0.runNs) / 1000, load.requests);
    r.ok = load.requests > 0 && v.cpuUsPerReq !== null;
    if (!r.ok) r.error = load.requests > 0 ? "the proxy's /proc/PID/task could not be read" : "no requests completed";
  } catch (e) {
    r.error = e instanceof Error ? e.message : String(e);
  } finally {
    if (child !== null) await proc.stop(child);
  }
  return r;
}
