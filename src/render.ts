// render.ts: the live view's text: one line per interval with a header that repeats, an
// optional line per worker, and the summary printed at exit.
import { activeRate } from "./activity";
import type { Interval, WorkerInterval } from "./sampler";

const HEADER_EVERY = 20;

const COLUMNS: [string, number][] = [
  ["time", 8],
  ["req/s", 9],
  ["MB/s", 7],
  ["conns", 6],
  ["sys/req", 7],
  ["cs/s", 7],
  ["cs/req", 7],
  ["us%", 5],
  ["sy%", 5],
  ["m.cs/s", 8],
  ["m.in/s", 8],
];

function fmt(n: number | null, digits = 0): string {
  if (n === null) return "-";
  return n.toFixed(digits);
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
    out.push(
      row([
        iv.time.slice(11, 19),
        fmt(iv.rps),
        fmt(iv.bytes_out / s / 1e6, 1),
        fmt(iv.conns),
        fmt(iv.syscalls_per_req, 2),
        fmt((iv.cs_voluntary + iv.cs_involuntary) / s),
        fmt(iv.cs_per_req, 3),
        fmt(iv.user_pct),
        fmt(iv.sys_pct),
        fmt(iv.machine_cs / s),
        fmt(iv.machine_intr / s),
      ]),
    );
    if (this.verbose) for (const w of iv.workers) out.push(workerLine(w, s));
    return out.join("\n");
  }
}

function kindsPerReq(w: WorkerInterval): string {
  const r = w.requests;
  const k = (n: number): string => (r > 0 ? (n / r).toFixed(2) : "-");
  const sc = w.syscalls;
  const wait = sc.epoll_wait + sc.poll + sc.select + sc.io_uring_enter; // whichever the engine blocks in
  return `wait ${k(wait)} acc ${k(sc.accept)} rd ${k(sc.read)} wr ${k(sc.write)} cl ${k(sc.close)} ctl ${k(sc.epoll_ctl)} slp ${k(sc.nanosleep)} oth ${k(sc.other)}`;
}

function workerLine(w: WorkerInterval, secs: number): string {
  return (
    `  w${w.id} cpu ${w.cpu}  req/s ${fmt(w.rps)}  sys/req ${fmt(w.syscalls_per_req, 2)} (${kindsPerReq(w)})` +
    `  ev/wait ${fmt(w.events_per_wait, 1)}  wake/s ${fmt(w.wakeups_per_s)} req/wake ${fmt(w.req_per_wakeup, 1)} hold ${w.hold_us}us` +
    `  cs/s vol ${fmt(w.cs_voluntary / secs)} inv ${fmt(w.cs_involuntary / secs)}` +
    `  us ${fmt(w.user_pct)}% sy ${fmt(w.sys_pct)}%  net rx/tx ${w.net_rx}/${w.net_tx}`
  );
}

/**
 * The summary at exit: the first line is stable (scripts and tests read it): requests, the
 * seconds from the first request to the last (uptime when under two polls), and their rate.
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
    `  all: up ${total.interval_s.toFixed(1)} s, ${total.syscalls} syscalls (${fmt(total.syscalls_per_req, 2)}/req), ` +
      `${total.cs_voluntary + total.cs_involuntary} context switches (${fmt(total.cs_per_req, 3)}/req), ` +
      `${total.wakeups} wake-ups (${fmt(total.req_per_wakeup, 1)} req/wake), ` +
      `${cpuUs(all, total.requests)} cpu µs/req, ${total.accepted} connections, ${total.errors} 4xx/5xx`,
  );
  for (const w of total.workers) {
    lines.push(
      `  worker ${w.id} cpu ${w.cpu}: ${w.requests} requests, ${fmt(w.syscalls_per_req, 2)} syscalls/req (${kindsPerReq(w)}), ` +
        `${fmt(w.cs_per_req, 3)} cs/req (vol ${w.cs_voluntary} inv ${w.cs_involuntary}), ` +
        `${w.wakeups} wake-ups (${fmt(w.req_per_wakeup, 1)} req/wake, ${w.coalesced_waits} held), ${cpuUs(w, w.requests)} cpu µs/req, us ${fmt(w.user_pct)}% sy ${fmt(w.sys_pct)}%`,
    );
  }
  return lines.join("\n");
}
