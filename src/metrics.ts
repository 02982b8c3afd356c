// metrics.ts: Prometheus text exposition of every worker counter, served by the Node main
// thread (never by a worker) at http://HOST:PORT/metrics.
import * as http from "node:http";

import type { NativeListen } from "./native";
import type { WorkerIdentity } from "./sampler";
import type { StatsReader } from "./stats";
import { WorkerThreads } from "./procfs";

// Counters that are gauges, not totals; everything else only grows.
const GAUGES = new Set(["conns_open", "cpu", "uring_setup_flags", "uring_features", "coalesce_hold_us", "wait_errno"]);

const HELP: Record<string, string> = {
  conns_accepted: "Connections accepted.",
  conns_closed: "Connections closed.",
  conns_open: "Connections open now.",
  requests: "Requests answered.",
  bytes_in: "Bytes read from clients.",
  bytes_out: "Bytes written to clients.",
  sys_total: "System calls made by the worker.",
  loops: "Wake-ups: returns from the worker's blocking wait (event loop iterations).",
  coalesced_waits: "Waits whose wake-up --coalesce held back so requests were answered in one pass.",
  coalesce_hold_us: "Microseconds the worker's next wait may hold its wake-up back (--coalesce; 0: none).",
  sys_nanosleep: "clock_nanosleep calls: --coalesce pauses of a readiness engine.",
  wait_errno: "errno of a failed wait that stopped the worker (0: running).",
  events: "Readiness events returned by waits.",
  cpu: "CPU the worker last reported running on.",
  sys_connect: "connect calls for --proxy upstream connections.",
  up_opened: "--proxy: upstream connections opened.",
  up_reused: "--proxy: requests sent on a pooled keep-alive upstream connection.",
  up_retried: "--proxy: GET/HEAD requests resent because their pooled connection turned out closed.",
  up_failed: "--proxy: upstream failures (refused, reset, closed before or during a response, unparsable).",
  up_bytes_in: "--proxy: bytes read from backends.",
  up_bytes_out: "--proxy: bytes written to backends.",
  proxy_502: "--proxy: 502 Bad Gateway answered.",
  proxy_504: "--proxy: 504 Gateway Timeout answered (--proxy-timeout).",
  log_dropped: "Access-log records dropped because the worker's ring was full (--access-log).",
};

/** Process-wide gauges beside the per-worker counters, e.g. tables awaiting reclamation. */
export type Gauges = () => Record<string, { help: string; value: number }>;

// One reader per worker list (it remembers threads that have exited).
const readers = new WeakMap<readonly WorkerIdentity[], WorkerThreads>();
function threadsOf(workers: readonly WorkerIdentity[]): WorkerThreads {
  let r = readers.get(workers);
  if (!r) readers.set(workers, (r = new WorkerThreads(process.pid, workers)));
  return r;
}

export function renderMetrics(stats: StatsReader, workers: readonly WorkerIdentity[], gauges?: Gauges): string {
  const snap = stats.snapshot();
  const out: string[] = [];
  const names = Object.keys(snap[0] ?? {});
  for (const name of names) {
    const gauge = GAUGES.has(name);
    const metric = gauge ? `vw_${name}` : `vw_${name}_total`;
    out.push(`# HELP ${metric} ${HELP[name] ?? `Worker counter ${name}.`}`);
    out.push(`# TYPE ${metric} ${gauge ? "gauge" : "counter"}`);
    snap.forEach((c, i) => out.push(`${metric}{worker="${workers[i].id}"} ${c[name]}`));
  }
  const read = threadsOf(workers).read(snap);
  const threads = workers.map((_w, i) => read[i] ?? { csVoluntary: 0, csInvoluntary: 0, userSec: 0, sysSec: 0 });
  out.push("# HELP vw_context_switches_total Context switches of the worker thread (and its connection or SQPOLL threads).");
  out.push("# TYPE vw_context_switches_total counter");
  threads.forEach((t, i) => {
    out.push(`vw_context_switches_total{worker="${workers[i].id}",kind="voluntary"} ${t.csVoluntary}`);
    out.push(`vw_context_switches_total{worker="${workers[i].id}",kind="involuntary"} ${t.csInvoluntary}`);
  });
  out.push("# HELP vw_cpu_seconds_total CPU time of the worker thread (and its connection or SQPOLL threads).");
  out.push("# TYPE vw_cpu_seconds_total counter");
  threads.forEach((t, i) => {
    out.push(`vw_cpu_seconds_total{worker="${workers[i].id}",mode="user"} ${t.userSec}`);
    out.push(`vw_cpu_seconds_total{worker="${workers[i].id}",mode="system"} ${t.sysSec}`);
  });
  for (const [name, g] of Object.entries(gauges?.() ?? {})) {
    out.push(`# HELP vw_${name} ${g.help}`);
    out.push(`# TYPE vw_${name} gauge`);
    out.push(`vw_${name}{process="vw"} ${g.value}`);
  }
  return `${out.join("\n")}\n`;
}

export async function serveMetrics(
  addr: NativeListen,
  stats: StatsReader,
  workers: readonly WorkerIdentity[],
  gauges?: Gauges,
): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "Content-Type": "text/plain", Connection: "close" }).end("try /metrics\n");
      return;
    }
    // Connection: close, so a scraper never holds an fd the workers might need.
    res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8", Connection: "close" });
    res.end(req.method === "HEAD" ? undefined : renderMetrics(stats, workers, gauges));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(addr.port, addr.host, () => resolve());
  });
  server.unref();
  return server;
}
