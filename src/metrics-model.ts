// metrics-model.ts: what /metrics says, as data: each worker counter of the shared stats block
// mapped to a Prometheus metric family by the naming conventions (base units, `_total` on
// counters, one family with labels instead of a name per status class or system call kind),
// with real HELP text. Pure: metrics.ts turns the families into exposition text.
import type { Counters } from "./stats";
import type { ThreadSample } from "./procfs";
import type { WorkerIdentity } from "./sampler";

export type MetricType = "counter" | "gauge";

/** One time series: label values (the `worker` label included) and its value now. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** One metric family, as `# HELP`, `# TYPE` and its samples. */
export interface Family {
  name: string;
  help: string;
  type: MetricType;
  labelNames: string[];
  samples: Sample[];
}

/** Where one worker counter goes: a family, the extra labels its series carries, a unit scale. */
export interface FieldMetric {
  family: string;
  type: MetricType;
  help: string;
  /** Labels besides `worker` that tell this counter from the family's other series. */
  labels?: Record<string, string>;
  /** Multiplies the raw value into the family's base unit (1e-6 for microseconds to seconds). */
  scale?: number;
}

const syscallHelp =
  "System calls the worker made, by kind (counted by the worker through one wrapper per call; " +
  "agrees with perf's raw_syscalls:sys_enter). Sum over syscall for the total.";
const syscall = (kind: string): FieldMetric => ({ family: "vw_syscalls_total", type: "counter", help: syscallHelp, labels: { syscall: kind } });
const upBytesHelp = "--proxy: bytes read from (direction=\"in\") and written to (direction=\"out\") backends.";
const proxyErrorsHelp = "--proxy: answers vw gave for its backends: 502 (refused, reset, unusable) and 504 (no response within --proxy-timeout).";
const responsesHelp = "Responses the worker sent, by status class (code=\"2xx\" ... \"5xx\").";
const responses = (cls: string): FieldMetric => ({ family: "vw_responses_total", type: "counter", help: responsesHelp, labels: { code: cls } });
const rejectedHelp =
  "Connections the worker closed at accept, unread: reason=\"limit\" over --max-conns or out of " +
  "file descriptors, reason=\"allow\" from a peer outside --allow.";
const localityHelp =
  "With --locality: accepted connections whose packets the worker's own CPU handled " +
  "(locality=\"local\") or another CPU (locality=\"remote\"), from SO_INCOMING_CPU.";

/**
 * Every counter of the stats block (native/stats.h): its metric, or "internal" for counters
 * that only feed another family (the blocking engine's ended connection threads are folded
 * into vw_cpu_seconds_total and vw_context_switches_total; sys_total is the sum of
 * vw_syscalls_total over its kinds).
 */
export const FIELD_METRICS: Readonly<Record<string, FieldMetric | "internal">> = {
  conns_accepted: { family: "vw_connections_accepted_total", type: "counter", help: "Connections the worker accepted (accept4 returned a socket)." },
  conns_closed: { family: "vw_connections_closed_total", type: "counter", help: "Connections the worker closed, for any reason." },
  conns_open: { family: "vw_connections_open", type: "gauge", help: "Connections open on the worker now." },
  requests: { family: "vw_requests_total", type: "counter", help: "Requests the worker answered, error responses included." },
  resp_2xx: responses("2xx"),
  resp_3xx: responses("3xx"),
  resp_4xx: responses("4xx"),
  resp_5xx: responses("5xx"),
  bytes_in: { family: "vw_received_bytes_total", type: "counter", help: "Bytes the worker read from clients." },
  bytes_out: { family: "vw_sent_bytes_total", type: "counter", help: "Bytes the worker wrote to clients (status lines, headers and bodies)." },
  sys_total: "internal",
  sys_epoll_wait: syscall("epoll_wait"),
  sys_accept: syscall("accept"),
  sys_read: syscall("read"),
  sys_write: syscall("write"),
  sys_close: syscall("close"),
  sys_epoll_ctl: syscall("epoll_ctl"),
  sys_other: syscall("other"),
  sys_poll: syscall("poll"),
  sys_select: syscall("select"),
  sys_io_uring_enter: syscall("io_uring_enter"),
  sys_nanosleep: syscall("nanosleep"),
  sys_connect: syscall("connect"),
  up_opened: { family: "vw_proxy_upstream_connections_total", type: "counter", help: "--proxy: upstream connections the worker opened." },
  up_reused: { family: "vw_proxy_pooled_requests_total", type: "counter", help: "--proxy: requests sent on a pooled keep-alive upstream connection." },
  up_retried: { family: "vw_proxy_retries_total", type: "counter", help: "--proxy: GET/HEAD requests resent on a new connection because their pooled one turned out closed." },
  up_failed: { family: "vw_proxy_upstream_failures_total", type: "counter", help: "--proxy: upstream failures (refused, reset, closed before or during a response, unparsable)." },
  up_bytes_in: { family: "vw_proxy_upstream_bytes_total", type: "counter", help: upBytesHelp, labels: { direction: "in" } },
  up_bytes_out: { family: "vw_proxy_upstream_bytes_total", type: "counter", help: upBytesHelp, labels: { direction: "out" } },
  proxy_502: { family: "vw_proxy_errors_total", type: "counter", help: proxyErrorsHelp, labels: { code: "502" } },
  proxy_504: { family: "vw_proxy_errors_total", type: "counter", help: proxyErrorsHelp, labels: { code: "504" } },
  loops: {
    family: "vw_wakeups_total",
    type: "counter",
    help: "Wake-ups of the worker: returns from its blocking wait (event loop iterations). Requests per wake-up is what --coalesce raises.",
  },
  coalesced_waits: { family: "vw_coalesced_waits_total", type: "counter", help: "Waits whose wake-up --coalesce held back so that requests arriving close together were answered in one pass." },
  coalesce_hold_us: {
    family: "vw_coalesce_hold_seconds",
    type: "gauge",
    help: "How long the worker's next wait may hold its wake-up back (--coalesce), in seconds; 0 when it holds none.",
    scale: 1e-6,
  },
  events: { family: "vw_events_total", type: "counter", help: "Readiness events (io_uring: completions) the worker's waits returned." },
  partial_writes: { family: "vw_partial_writes_total", type: "counter", help: "Writes the socket took only part of (the rest waited for the socket to drain)." },
  parse_errors: { family: "vw_parse_errors_total", type: "counter", help: "Requests the parser refused (answered 4xx/5xx, connection closed)." },
  timeouts: { family: "vw_timeouts_total", type: "counter", help: "Connections closed by --header-timeout or --idle-timeout." },
  accept_errors: { family: "vw_accept_errors_total", type: "counter", help: "accept4 failures other than EAGAIN (EMFILE, ENFILE, ENOBUFS, ...)." },
  rejected: { family: "vw_connections_rejected_total", type: "counter", help: rejectedHelp, labels: { reason: "limit" } },
  denied: { family: "vw_connections_rejected_total", type: "counter", help: rejectedHelp, labels: { reason: "allow" } },
  incoming_local: { family: "vw_connections_locality_total", type: "counter", help: localityHelp, labels: { locality: "local" } },
  incoming_remote: { family: "vw_connections_locality_total", type: "counter", help: localityHelp, labels: { locality: "remote" } },
  cpu: { family: "vw_worker_cpu", type: "gauge", help: "The CPU the worker runs on, as getcpu reported it at start and at each 1 s tick." },
  thread_user_us: "internal",
  thread_sys_us: "internal",
  thread_cs_voluntary: "internal",
  thread_cs_involuntary: "internal",
  uring_setup_flags: {
    family: "vw_io_uring_setup_flags",
    type: "gauge",
    help: "With --engine uring: the IORING_SETUP_* bits the worker's ring got (SQPOLL 2, COOP_TASKRUN 256, SINGLE_ISSUER 4096, DEFER_TASKRUN 8192); 0 otherwise.",
  },
  log_dropped: {
    family: "vw_access_log_dropped_total",
    type: "counter",
    help: "Access-log records the worker dropped because its ring was full (--access-log); the worker never waits for the log.",
  },
  wait_errno: {
    family: "vw_worker_wait_errno",
    type: "gauge",
    help: "The errno of a failed wait that stopped the worker (it stops rather than spin at real-time priority); 0 while it is fine.",
  },
  uring_features: {
    family: "vw_io_uring_features",
    type: "gauge",
    help: "With --engine uring: the IORING_FEAT_* bits the kernel offers (MIN_TIMEOUT 32768: it can hold a wait's wake-up back itself); 0 otherwise.",
  },
};

/**
 * The metric of a counter /metrics does not know yet (a counter added to native/stats.h
 * without an entry above): still valid exposition, in base units by its suffix (_us, _ns
 * become _seconds_total, _bytes becomes _bytes_total). test/metrics.test.ts fails until the
 * counter has a real entry.
 */
export function fallbackMetric(field: string): FieldMetric {
  const unit = /^(.*)_(us|ns)$/.exec(field);
  if (unit) return { family: `vw_${unit[1]}_seconds_total`, type: "counter", help: `Worker counter ${field}, in seconds.`, scale: unit[2] === "us" ? 1e-6 : 1e-9 };
  return { family: `vw_${field.replace(/_total$/, "")}_total`, type: "counter", help: `Worker counter ${field}.` };
}

export function fieldMetric(field: string): FieldMetric | "internal" {
  return FIELD_METRICS[field] ?? fallbackMetric(field);
}

/** Adds a sample to the family `m.family`, creating the family on first use (order kept). */
function add(families: Map<string, Family>, m: Omit<FieldMetric, "scale" | "labels">, labels: Record<string, string>, value: number): void {
  let f = families.get(m.family);
  if (!f) {
    f = { name: m.family, help: m.help, type: m.type, labelNames: Object.keys(labels), samples: [] };
    families.set(m.family, f);
  }
  f.samples.push({ labels, value });
}

/**
 * The per-worker families: every counter of every worker (`snapshot[i]` belongs to
 * `workers[i]`), plus CPU seconds and context switches of each worker's threads (`threads[i]`,
 * from /proc and the counters of ended connection threads).
 */
export function workerFamilies(snapshot: readonly Counters[], workers: readonly WorkerIdentity[], threads: readonly ThreadSample[]): Family[] {
  const families = new Map<string, Family>();
  snapshot.forEach((counters, i) => {
    const worker = String(workers[i]?.id ?? i);
    for (const [field, raw] of Object.entries(counters)) {
      const m = fieldMetric(field);
      if (m === "internal") continue;
      add(families, m, { worker, ...m.labels }, raw * (m.scale ?? 1));
    }
  });
  const cpu = { family: "vw_cpu_seconds_total", type: "counter" as const, help: "CPU time of the worker's threads (the worker; --engine blocking's connection threads; --sqpoll's kernel thread), by mode." };
  const cs = {
    family: "vw_context_switches_total",
    type: "counter" as const,
    help: "Context switches of the worker's threads (same threads as vw_cpu_seconds_total): kind=\"voluntary\" (it blocked) or \"involuntary\" (it was preempted).",
  };
  threads.forEach((t, i) => {
    const worker = String(workers[i]?.id ?? i);
    add(families, cpu, { worker, mode: "user" }, t.userSec);
    add(families, cpu, { worker, mode: "system" }, t.sysSec);
    add(families, cs, { worker, kind: "voluntary" }, t.csVoluntary);
    add(families, cs, { worker, kind: "involuntary" }, t.csInvoluntary);
  });
  return [...families.values()];
}

/** A family of one unlabelled sample (or one sample with the given labels). */
export function single(name: string, type: MetricType, help: string, value: number, labels: Record<string, string> = {}): Family {
  return { name, help, type, labelNames: Object.keys(labels), samples: [{ labels, value }] };
}
