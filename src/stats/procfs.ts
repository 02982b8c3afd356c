// procfs.ts: what the kernel already counts for us, read from /proc at no cost to the workers:
// per-thread context switches and CPU time, machine-wide context switches and interrupts
// (vmstat's cs and in), and per-CPU network softirqs.
import * as fs from "node:fs";
import { execFileSync } from "node:child_process";

let ticks: number | undefined;

/** Clock ticks per second of utime/stime (USER_HZ, almost always 100). */
export function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

export interface ThreadSample {
  csVoluntary: number;
  csInvoluntary: number;
  userSec: number;
  sysSec: number;
}

/** A thread's counters, or undefined once it is gone. */
export function readThread(pid: number, tid: number): ThreadSample | undefined {
  const status = tryRead(`/proc/${pid}/task/${tid}/status`);
  const stat = tryRead(`/proc/${pid}/task/${tid}/stat`);
  if (status === undefined || stat === undefined) return undefined;
  {
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // f[0] is field 3 (state)
    const hz = clockTicks();
    return {
      csVoluntary: Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0),
      csInvoluntary: Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0),
      userSec: Number(f[14 - 3]) / hz,
      sysSec: Number(f[15 - 3]) / hz,
    };
  }
}

/**
 * Everything that does a worker's work, summed: the worker thread itself; with --engine
 * blocking its connection threads (they inherit its name, vw-wN, at clone); with --engine uring
 * --sqpoll the kernel's submission-queue thread (iou-sqp-TID, TID being the worker's).
 *
 * /proc forgets a thread when it exits, so the sums are kept monotonic: connection threads that
 * have ended are added from what they counted themselves on the way out (the thread_* counters,
 * getrusage RUSAGE_THREAD), and a worker or SQPOLL thread that is gone keeps its last reading.
 * Each thread is counted exactly once. Stateful: one reader per consumer.
 */
export class WorkerThreads {
  private readonly gone: ThreadSample[];
  private seen = new Map<number, { worker: number; own: boolean; s: ThreadSample }>();

  constructor(
    private readonly pid: number,
    private readonly workers: readonly { id: number; tid: number }[],
  ) {
    this.gone = workers.map(() => ({ csVoluntary: 0, csInvoluntary: 0, userSec: 0, sysSec: 0 }));
  }

  /** Per worker; undefined when none of its threads was ever seen. */
  read(counters: readonly Record<string, number>[]): (ThreadSample | undefined)[] {
    const byName = new Map<string, number>();
    const byTid = new Map<number, number>();
    this.workers.forEach((w, i) => {
      byName.set(`vw-w${w.id}`, i);
      byName.set(`iou-sqp-${w.tid}`, i);
      byTid.set(w.tid, i);
    });
    const now = new Map<number, { worker: number; own: boolean; s: ThreadSample }>();
    let tids: string[] = [];
    try {
      tids = fs.readdirSync(`/proc/${this.pid}/task`);
    } catch {
      tids = [];
    }
    const hz = clockTicks();
    for (const t of tids) {
      const tid = Number(t);
      const stat = tryRead(`/proc/${this.pid}/task/${t}/stat`);
      if (stat === undefined) continue; // exited meanwhile
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const i = byTid.get(tid) ?? byName.get(name);
      if (i === undefined) continue;
      const status = tryRead(`/proc/${this.pid}/task/${t}/status`) ?? "";
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // "own": the worker or its SQPOLL thread, which leave no counters when they exit.
      now.set(tid, {
        worker: i,
        own: byTid.has(tid) || name.startsWith("iou-sqp-"),
        s: {
          csVoluntary: Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0),
          csInvoluntary: Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0),
          userSec: Number(f[14 - 3]) / hz,
          sysSec: Number(f[15 - 3]) / hz,
        },
      });
    }
    for (const [tid, prev] of this.seen) {
      if (now.has(tid) || !prev.own) continue;
      add(this.gone[prev.worker], prev.s);
    }
    for (const [tid, cur] of now) this.seen.set(tid, cur);
    for (const tid of [...this.seen.keys()]) if (!now.has(tid)) this.seen.delete(tid);
    const out: (ThreadSample | undefined)[] = this.workers.map(() => undefined);
    for (const cur of now.values()) add((out[cur.worker] ??= zero()), cur.s);
    return out.map((s, i) => {
      const g = this.gone[i];
      const ended = g.userSec + g.sysSec + g.csVoluntary + g.csInvoluntary > 0;
      if (s === undefined && !ended) return undefined;
      const r = s ?? zero();
      add(r, g);
      const c = counters[i] ?? {};
      r.userSec += (c.thread_user_us ?? 0) / 1e6;
      r.sysSec += (c.thread_sys_us ?? 0) / 1e6;
      r.csVoluntary += c.thread_cs_voluntary ?? 0;
      r.csInvoluntary += c.thread_cs_involuntary ?? 0;
      return r;
    });
  }
}

function zero(): ThreadSample {
  return { csVoluntary: 0, csInvoluntary: 0, userSec: 0, sysSec: 0 };
}

function add(into: ThreadSample, s: ThreadSample): void {
  into.csVoluntary += s.csVoluntary;
  into.csInvoluntary += s.csInvoluntary;
  into.userSec += s.userSec;
  into.sysSec += s.sysSec;
}

export interface MachineSample {
  cs: number; // context switches since boot (vmstat "cs")
  intr: number; // interrupts since boot (vmstat "in")
}

// Reads below may fail (EMFILE when the workers hold every fd the process may open): callers
// get undefined and keep their previous reading rather than crash the launcher.
function tryRead(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

export function readMachine(): MachineSample | undefined {
  const stat = tryRead("/proc/stat");
  if (stat === undefined) return undefined;
  return {
    cs: Number(/^ctxt (\d+)/m.exec(stat)?.[1] ?? 0),
    intr: Number(/^intr (\d+)/m.exec(stat)?.[1] ?? 0),
  };
}

/** NET_RX and NET_TX softirq counts per CPU (index = CPU number). */
export function readNetSoftirqs(): { rx: number[]; tx: number[] } | undefined {
  const text = tryRead("/proc/softirqs");
  if (text === undefined) return undefined;
  const row = (name: string): number[] => {
    const line = text.split("\n").find((l) => l.trim().startsWith(`${name}:`));
    return line ? line.trim().split(/\s+/).slice(1).map(Number) : [];
  };
  return { rx: row("NET_RX"), tx: row("NET_TX") };
}
