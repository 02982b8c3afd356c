// sampler.ts: turns cumulative counters (the workers' slots, /proc) into per-interval figures:
// what one line of the live view, one NDJSON object, or one `vw stats` update shows.
import type { ActivityWindow } from "./activity";
import type { StatsReader, Counters, LatencyCounts } from "./stats";
import type { StatsCounter } from "../native";
import { latencyDelta, latencyQuantileUs, latencySum } from "./latency";
import { WorkerThreads, readMachine, readNetSoftirqs, type MachineSample, type ThreadSample } from "./procfs";

export interface WorkerIdentity {
  id: number;
  cpu: number;
  tid: number;
}

/**
 * The system call kinds the workers count, as native/worker/stats.h lists them: [kind, counter name]
 * for each counter of the vw_syscalls_total family (label syscall=KIND).
 */
export function syscallKinds(meta: readonly StatsCounter[]): [string, string][] {
  return meta.filter((c) => c.metric === "vw_syscalls_total" && c.label.startsWith("syscall=")).map((c) => [c.label.slice("syscall=".length), c.name]);
}

export interface WorkerInterval {
  id: number;
  cpu: number;
  tid: number;
  requests: number;
  rps: number;
  conns: number;
  accepted: number;
  bytes_out: number;
  /** By kind (native/worker/stats.h's vw_syscalls_total kinds: epoll_wait, read, write, ...) and `total`. */
  syscalls: Record<string, number>;
  syscalls_per_req: number | null;
  /** Readiness events (io_uring: completions) per wake-up. */
  events_per_wait: number | null;
  /** Server-side latency of the interval's requests (read → response offered to the kernel), µs; null without requests. */
  latency_p50_us: number | null;
  latency_p99_us: number | null;
  /** Returns from the worker's blocking wait (loop iterations): each one can cost two context switches. */
  wakeups: number;
  wakeups_per_s: number;
  /** Requests answered per wake-up: what --coalesce raises, and what divides context switches per request. */
  req_per_wakeup: number | null;
  /** Waits whose wake-up --coalesce held back. */
  coalesced_waits: number;
  /** The hold the worker's next wait uses, µs, at the end of the interval (0: none). */
  hold_us: number;
  cs_voluntary: number;
  cs_involuntary: number;
  cs_per_req: number | null;
  user_pct: number;
  sys_pct: number;
  net_rx: number;
  net_tx: number;
  incoming_local: number;
  incoming_remote: number;
  /** Present with --proxy: this worker's relay. */
  proxy?: ProxyInterval;
}

/** --proxy: what the relay did in the interval (a worker's, or all workers' together); counts. */
export interface ProxyInterval {
  up_opened: number; // upstream connections opened
  up_reused: number; // requests sent on a connection opened before (pooled, or a pipeline's)
  up_pipelined: number; // requests sent behind another still unanswered (--proxy-pipeline)
  up_retried: number; // GET/HEAD resent after their connection closed before the answer
  up_failed: number; // refused, reset, closed early, unparsable
  up_bytes_in: number;
  up_bytes_out: number;
  /** System calls on upstream connections (a part of the worker's `syscalls`). */
  up_syscalls: { read: number; write: number; close: number; connect: number };
  bad_gateway: number; // 502 answered
  gateway_timeout: number; // 504 answered
}

const PROXY_COUNTERS = ["up_opened", "up_reused", "up_pipelined", "up_retried", "up_failed", "up_bytes_in", "up_bytes_out"] as const;

/** The relay's counts over an interval, from a counter-delta getter (native/worker/stats.h names). */
function proxyInterval(d: (counter: string) => number): ProxyInterval {
  const counts = Object.fromEntries(PROXY_COUNTERS.map((k) => [k, d(k)])) as Record<(typeof PROXY_COUNTERS)[number], number>;
  return {
    ...counts,
    up_syscalls: { read: d("up_sys_read"), write: d("up_sys_write"), close: d("up_sys_close"), connect: d("sys_connect") },
    bad_gateway: d("proxy_502"),
    gateway_timeout: d("proxy_504"),
  };
}

/** One interval. Counts are per interval, never cumulative: summing lines gives the run. */

export interface Interval {
  /** Present with --proxy. */
  proxy?: ProxyInterval;
  time: string;
  interval_s: number;
  requests: number;
  rps: number;
  bytes_out: number;
  bytes_in: number;
  conns: number;
  accepted: number;
  errors: number;
  timeouts: number;
  syscalls: number;
  syscalls_per_req: number | null;
  wakeups: number;
  req_per_wakeup: number | null;
  cs_voluntary: number;
  cs_involuntary: number;
  cs_per_req: number | null;
  user_pct: number;
  sys_pct: number;
  machine_cs: number;
  machine_intr: number;
  /** Seconds from the first request answered to the last, so far (the run's, not the interval's); null before any. */
  active_s: number | null;
  /** Every request so far / active_s: the rate a client saw; null while the window is under 20 ms. */
  active_rps: number | null;
  /** Server-side latency of the interval's requests, all workers, µs; null without requests. */
  latency_p50_us: number | null;
  latency_p99_us: number | null;
  workers: WorkerInterval[];
}

interface Point {
  at: number; // ms, monotonic
  counters: Counters[];
  latency: LatencyCounts[];
  threads: ThreadSample[];
  machine: MachineSample;
  rx: number[];
  tx: number[];
}

const per = (n: number, d: number): number | null => (d > 0 ? n / d : null);
const round = (n: number, digits = 3): number => Math.round(n * 10 ** digits) / 10 ** digits;
const roundOrNull = (n: number | null, digits = 3): number | null => (n === null ? null : round(n, digits));

export class Sampler {
  private first: Point;
  private last: Point | undefined;
  private readonly threads: WorkerThreads;
  private readonly kinds: [string, string][];
  private readonly boundsNs: number[];

  constructor(
    private readonly stats: StatsReader,
    private readonly workers: readonly WorkerIdentity[],
    pid = process.pid,
    private readonly activity?: ActivityWindow,
    private readonly proxy = false,
  ) {
    this.threads = new WorkerThreads(pid, workers);
    this.kinds = syscallKinds(stats.counters());
    this.boundsNs = stats.latencyBoundsNs();
    this.first = this.last = this.point();
  }

  private point(): Point {
    const soft = readNetSoftirqs() ?? { rx: this.last?.rx ?? [], tx: this.last?.tx ?? [] };
    // A worker that has exited (after stop) keeps its last reading: the summary needs it.
    const counters = this.stats.snapshot();
    const read = this.threads.read(counters);
    const threads = this.workers.map(
      (_w, i) => read[i] ?? this.last?.threads[i] ?? { csVoluntary: 0, csInvoluntary: 0, userSec: 0, sysSec: 0 },
    );
    return {
      at: performance.now(),
      counters,
      latency: this.stats.latency(),
      threads,
      machine: readMachine() ?? this.last?.machine ?? { cs: 0, intr: 0 },
      rx: soft.rx,
      tx: soft.tx,
    };
  }

  /** The interval since the previous call (or since start). */
  next(): Interval {
    const now = this.point();
    const iv = this.between(this.last ?? this.first, now);
    this.last = now;
    return iv;
  }

  /** The whole run so far, as one interval. */
  total(): Interval {
    return this.between(this.first, this.point());
  }

  private between(a: Point, b: Point): Interval {
    const secs = Math.max((b.at - a.at) / 1000, 1e-6);
    const workers = this.workers.map((w, i): WorkerInterval => {
      const d = (k: string): number => (b.counters[i][k] ?? 0) - (a.counters[i][k] ?? 0);
      const requests = d("requests");
      const total = d("sys_total");
      const cv = b.threads[i].csVoluntary - a.threads[i].csVoluntary;
      const ci = b.threads[i].csInvoluntary - a.threads[i].csInvoluntary;
      const syscalls: Record<string, number> = { total };
      for (const [kind, counter] of this.kinds) syscalls[kind] = d(counter);
      const lat = latencyDelta(a.latency[i], b.latency[i]);
      return {
        id: w.id,
        cpu: b.counters[i].cpu ?? w.cpu,
        tid: w.tid,
        requests,
        rps: round(requests / secs, 1),
        conns: b.counters[i].conns_open ?? 0,
        accepted: d("conns_accepted"),
        bytes_out: d("bytes_out"),
        syscalls,
        syscalls_per_req: roundOrNull(per(total, requests)),
        events_per_wait: roundOrNull(per(d("events"), d("loops")), 2),
        latency_p50_us: roundOrNull(latencyQuantileUs(lat, this.boundsNs, 0.5), 2),
        latency_p99_us: roundOrNull(latencyQuantileUs(lat, this.boundsNs, 0.99), 2),
        wakeups: d("loops"),
        wakeups_per_s: round(d("loops") / secs, 1),
        req_per_wakeup: roundOrNull(per(requests, d("loops")), 2),
        coalesced_waits: d("coalesced_waits"),
        hold_us: b.counters[i].coalesce_hold_us ?? 0,
        cs_voluntary: cv,
        cs_involuntary: ci,
        cs_per_req: roundOrNull(per(cv + ci, requests), 4),
        user_pct: round(((b.threads[i].userSec - a.threads[i].userSec) / secs) * 100, 1),
        sys_pct: round(((b.threads[i].sysSec - a.threads[i].sysSec) / secs) * 100, 1),
        net_rx: (b.rx[w.cpu] ?? 0) - (a.rx[w.cpu] ?? 0),
        net_tx: (b.tx[w.cpu] ?? 0) - (a.tx[w.cpu] ?? 0),
        incoming_local: d("incoming_local"),
        incoming_remote: d("incoming_remote"),
        ...(this.proxy ? { proxy: proxyInterval(d) } : {}),
      };
    });
    const sum = (f: (w: WorkerInterval) => number): number => workers.reduce((s, w) => s + f(w), 0);
    const sumCounter = (k: string): number =>
      this.workers.reduce((s, _w, i) => s + (b.counters[i][k] ?? 0) - (a.counters[i][k] ?? 0), 0);
    const requests = sum((w) => w.requests);
    const syscalls = sum((w) => w.syscalls.total);
    const wakeups = sum((w) => w.wakeups);
    const cv = sum((w) => w.cs_voluntary);
    const ci = sum((w) => w.cs_involuntary);
    const n = Math.max(workers.length, 1);
    const lat = latencySum(this.workers.map((_w, i) => latencyDelta(a.latency[i], b.latency[i])));
    // The run so far, whatever the interval: the window is the run's.
    const runRequests = this.workers.reduce((t, _w, i) => t + (b.counters[i].requests ?? 0) - (this.first.counters[i].requests ?? 0), 0);
    const active = this.activity?.activeSeconds() ?? null;
    return {
      time: new Date().toISOString(),
      interval_s: round(secs),
      requests,
      rps: round(requests / secs, 1),
      bytes_out: sum((w) => w.bytes_out),
      bytes_in: sumCounter("bytes_in"),
      conns: sum((w) => w.conns),
      accepted: sum((w) => w.accepted),
      errors: sumCounter("resp_4xx") + sumCounter("resp_5xx"),
      timeouts: sumCounter("timeouts"),
      syscalls,
      syscalls_per_req: roundOrNull(per(syscalls, requests)),
      wakeups,
      req_per_wakeup: roundOrNull(per(requests, wakeups), 2),
      cs_voluntary: cv,
      cs_involuntary: ci,
      cs_per_req: roundOrNull(per(cv + ci, requests), 4),
      // Averages over the workers' CPUs: 100 means every worker CPU fully busy in user mode.
      user_pct: round(sum((w) => w.user_pct) / n, 1),
      sys_pct: round(sum((w) => w.sys_pct) / n, 1),
      machine_cs: b.machine.cs - a.machine.cs,
      machine_intr: b.machine.intr - a.machine.intr,
      active_s: roundOrNull(active),
      active_rps: active !== null && active >= 0.02 ? round(runRequests / active, 1) : null,
      latency_p50_us: roundOrNull(latencyQuantileUs(lat, this.boundsNs, 0.5), 2),
      latency_p99_us: roundOrNull(latencyQuantileUs(lat, this.boundsNs, 0.99), 2),
      workers,
      ...(this.proxy ? { proxy: proxyInterval(sumCounter) } : {}),
    };
  }
}
