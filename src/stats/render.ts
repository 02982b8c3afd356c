// render.ts: the live view's text: one line per interval with a header that repeats, an
// optional line per worker, and the summary printed at exit.
import { activeRate } from "./activity";
import type { Interval, ProxyInterval, WorkerInterval } from "./sampler";

const HEADER_EVERY = 20;
/** Every line the live view prints fits a terminal this wide (-v included). */
export const VIEW_WIDTH = 80;

// [header, width]: 78 columns with the spaces between.
const COLUMNS: [string, number][] = [
  ["time", 8],
  ["req/s", 8],
  ["MB/s", 6],
  ["conns", 6],
  ["sys/req", 7],
  ["cs/s", 6],
  ["cs/req", 6],
  ["wake/s", 7],
  ["req/wk", 6],
  ["us%", 4],
  ["sy%", 4],
];

/** What each column means, for `vw --help` (each line under VIEW_WIDTH). */
export const LEGEND = `The live view: a line per --stats-interval (-v: a machine line, 4 per worker)
  req/s    requests answered per second   MB/s     response bytes/s (10^6)
  conns    connections open               sys/req  system calls per request
  cs/s     context switches of workers    cs/req   context switches per request
  wake/s   wake-ups (returns from waits)  req/wk   requests per wake-up
  us% sy%  user and system CPU of the workers, as a share of their CPUs
  -v with --proxy, a 5th per worker: upstream system calls, new connections,
  pipelined and resent requests, each per request relayed`;

function fmt(n: number | null, digits = 0): string {
  if (n === null || !Number.isFinite(n)) return "-";
  return n.toFixed(digits);
}

/** Fits a number in `width` columns: fewer decimals first, then k/M suffixes. */
function fit(n: number | null, digits: number, width: number): string {
  if (n === null || !Number.isFinite(n)) return "-";
  for (let d = digits; d >= 0; d--) {
    const t = n.toFixed(d);
    if (t.length <= width) return t;
  }
  for (const [div, suffix] of [[1e3, "k"], [1e6, "M"], [1e9, "G"]] as const) {
    const t = `${Math.round(n / div)}${suffix}`;
    if (t.length <= width) return t;
  }
  return n.toExponential(0);
}

function row(cells: string[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(COLUMNS[i][1]) : c.padStart(COLUMNS[i][1]))).join(" ");
}

export class LiveView {
  private lines = 0;
  constructor(private readonly verbose: boolean) {}

  /** The text for one interval (header included when due), without a trailing newline. */
  render(iv: Interval): string {
    const out: string[] = [];
    if (this.lines % HEADER_EVERY === 0) out.push(row(COLUMNS.map(([name]) => name)));
    this.lines++;
    const s = iv.interval_s;
    const w = (i: number): number => COLUMNS[i][1];
    out.push(
      row([
        iv.time.slice(11, 19),
        fit(iv.rps, 0, w(1)),
        fit(iv.bytes_out / s / 1e6, 1, w(2)),
        fit(iv.conns, 0, w(3)),
        fit(iv.syscalls_per_req, 2, w(4)),
        fit((iv.cs_voluntary + iv.cs_involuntary) / s, 0, w(5)),
        fit(iv.cs_per_req, 3, w(6)),
        fit(iv.wakeups / s, 0, w(7)),
        fit(iv.req_per_wakeup, 1, w(8)),
        fit(iv.user_pct, 0, w(9)),
        fit(iv.sys_pct, 0, w(10)),
      ]),
    );
    if (this.verbose) {
      out.push(`  machine: context switches/s ${fmt(iv.machine_cs / s)}, interrupts/s ${fmt(iv.machine_intr / s)}`);
      for (const wk of iv.workers) out.push(...workerLines(wk, s));
    }
    return out.join("\n");
  }
}

/**
 * System calls per request by kind. `short` (the live view) gives each value in 3 characters
 * (.08, 1.0, 12); otherwise 2 decimals.
 */
function kindsPerReq(w: WorkerInterval, short = false): string {
  const r = w.requests;
  const k = (n: number): string => {
    if (r === 0) return "-";
    const v = n / r;
    if (!short) return v.toFixed(2);
    return v < 1 ? v.toFixed(2).replace(/^0\./, ".").replace(/^1\.00$/, "1.0") : v < 10 ? v.toFixed(1) : v.toFixed(0);
  };
  // Every kind the worker used, in native/worker/stats.h's order; the waits (one per engine) as "wait".
  const parts = new Map<string, number>();
  for (const [kind, n] of Object.entries(w.syscalls)) {
    if (kind === "total" || n === 0) continue;
    const name = WAITS.has(kind) ? "wait" : (SHORT[kind] ?? kind);
    parts.set(name, (parts.get(name) ?? 0) + n);
  }
  return [...parts].map(([name, n]) => `${name} ${k(n)}`).join(" ") || "none";
}

/** The live view's short names of system call kinds; a kind not here shows its own name. */
const SHORT: Readonly<Record<string, string>> = { accept: "acc", read: "rd", write: "wr", close: "cl", epoll_ctl: "ctl", nanosleep: "slp", connect: "con", other: "oth" };
/** The calls an engine blocks in: whichever one it uses is shown as "wait". */
const WAITS: ReadonlySet<string> = new Set(["epoll_wait", "poll", "select", "io_uring_enter"]);

/** A count in at most 5 characters for the -v lines: 12345, 123k, 12.3M, 1235M. */
function count(n: number): string {
  if (!Number.isFinite(n)) return "-";
  if (n < 1e5) return n.toFixed(0);
  if (n < 1e6) return `${Math.round(n / 1e3)}k`;
  if (n < 1e8) return `${(n / 1e6).toFixed(1)}M`;
  return `${Math.round(n / 1e6)}M`;
}

/** Server-side latency p50 and p99, µs, e.g. "p50 0.41 p99 3.1 µs"; "-" without requests. */
function latency(p50: number | null, p99: number | null): string {
  if (p50 === null || p99 === null) return "-";
  const us = (n: number): string => (n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));
  return `p50 ${us(p50)} p99 ${us(p99)} µs`;
}

/** A worker's -v block: four lines, each under VIEW_WIDTH. */
function workerLines(w: WorkerInterval, secs: number): string[] {
  const ev = w.events_per_wait === null ? "-" : fmt(w.events_per_wait, w.events_per_wait < 100 ? 1 : 0);
  return [
    `  w${w.id} cpu ${w.cpu}  req/s ${count(w.rps)}  wake/s ${count(w.wakeups_per_s)}  req/wake ${fmt(w.req_per_wakeup, 1)}  hold ${w.hold_us}us`,
    `    sys/req ${fmt(w.syscalls_per_req, 2)}  ${kindsPerReq(w, true)}`,
    `    ev/wait ${ev}  cs/s vol ${count(w.cs_voluntary / secs)} inv ${count(w.cs_involuntary / secs)}` +
      `  us ${fmt(w.user_pct)}% sy ${fmt(w.sys_pct)}%  rx/tx ${count(w.net_rx)}/${count(w.net_tx)}`,
    `    latency ${latency(w.latency_p50_us, w.latency_p99_us)} (read to response offered to the kernel)`,
    ...(w.proxy ? [proxyLine(w.proxy, w.requests)] : []),
  ];
}

/**
 * A proxy worker's 5th -v line, per request relayed: its upstream system calls by kind, new
 * connections, requests sent behind another (--proxy-pipeline), requests resent.
 */
function proxyLine(p: ProxyInterval, requests: number): string {
  const k = (n: number): string => {
    if (requests === 0) return "-";
    const v = n / requests;
    return v < 1 ? v.toFixed(2).replace(/^0\./, ".") : v < 10 ? v.toFixed(1) : v.toFixed(0);
  };
  const up = p.up_syscalls;
  return `    upstream/req rd ${k(up.read)} wr ${k(up.write)} cl ${k(up.close)} con ${k(up.connect)}` +
    ` new ${k(p.up_opened)} piped ${k(p.up_pipelined)} resent ${k(p.up_retried)}`;
}

/**
 * The summary at exit, in lines under VIEW_WIDTH: the first is stable (scripts and tests read
 * it): requests, the seconds from the first request to the last (uptime when under two polls),
 * and their rate.
 */
export function summary(total: Interval): string {
  const cpuUs = (w: { user_pct: number; sys_pct: number }, req: number): string =>
    req > 0 ? (((w.user_pct + w.sys_pct) / 100) * total.interval_s * 1e6 / req).toFixed(2) : "-";
  const served = activeRate(total.requests, total.active_s, total.interval_s);
  const lines = [
    `vw: ${total.requests} requests in ${served.seconds.toFixed(1)} s, ${Math.round(served.rps)} req/s`,
  ];
  const all = {
    user_pct: total.workers.reduce((s, w) => s + w.user_pct, 0),
    sys_pct: total.workers.reduce((s, w) => s + w.sys_pct, 0),
  };
  lines.push(
    `  all: up ${total.interval_s.toFixed(1)} s, ${total.accepted} connections, ${total.errors} 4xx/5xx, ${cpuUs(all, total.requests)} cpu µs/req`,
    `    ${total.syscalls} syscalls (${fmt(total.syscalls_per_req, 2)}/req), ` +
      `${total.cs_voluntary + total.cs_involuntary} context switches (${fmt(total.cs_per_req, 3)}/req)`,
    `    ${total.wakeups} wake-ups (${fmt(total.req_per_wakeup, 1)} req/wake), latency ${latency(total.latency_p50_us, total.latency_p99_us)}`,
  );
  const p = total.proxy;
  if (p) {
    lines.push(
      `  proxy: ${p.up_opened} connections opened, ${p.up_reused} requests on pooled ones`,
      `    ${p.up_pipelined} pipelined, ${p.up_retried} resent, ${p.up_failed} upstream failures`,
      `    ${p.bad_gateway} answered 502, ${p.gateway_timeout} answered 504`,
    );
  }
  for (const w of total.workers) {
    lines.push(
      `  worker ${w.id} cpu ${w.cpu}: ${w.requests} requests, ${cpuUs(w, w.requests)} cpu µs/req, us ${fmt(w.user_pct)}% sy ${fmt(w.sys_pct)}%`,
      `    ${fmt(w.syscalls_per_req, 2)} syscalls/req, by kind:`,
      `      ${kindsPerReq(w)}`,
      `    ${fmt(w.cs_per_req, 3)} cs/req (vol ${w.cs_voluntary} inv ${w.cs_involuntary})`,
      `    ${w.wakeups} wake-ups (${fmt(w.req_per_wakeup, 1)} req/wake, ${w.coalesced_waits} held)`,
      `    latency ${latency(w.latency_p50_us, w.latency_p99_us)}`,
    );
  }
  return lines.join("\n");
}
