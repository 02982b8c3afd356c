// taskstat.ts: what one process's threads cost, summed over /proc/PID/task/*: CPU time in
// nanoseconds from schedstat (the scheduler's own run-time sum, not tick-sampled like
// /proc/PID/stat) and context switches from status. For a process whose threads live through
// the measured window (vw's worker and main thread, nginx's single process).
import * as fs from "node:fs";

export interface TaskTotals {
  /** time on a CPU, all live threads, ns (schedstat field 1) */
  runNs: number;
  /** voluntary_ctxt_switches + nonvoluntary_ctxt_switches, all live threads */
  contextSwitches: number;
  /** threads read */
  threads: number;
}

function read(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

/** True when this kernel exposes per-thread schedstat (CONFIG_SCHED_INFO). */
export function schedstatAvailable(): boolean {
  return read("/proc/self/schedstat") !== null;
}

/** The sums over every thread of `pid`; null when the process is gone or unreadable. */
export function readTasks(pid: number): TaskTotals | null {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const t: TaskTotals = { runNs: 0, contextSwitches: 0, threads: 0 };
  for (const tid of tids) {
    const sched = read(`/proc/${pid}/task/${tid}/schedstat`);
    const status = read(`/proc/${pid}/task/${tid}/status`);
    if (sched === null || status === null) continue; // the thread just ended
    const run = Number(sched.trim().split(/\s+/)[0]);
    const vol = /^voluntary_ctxt_switches:\s+(\d+)$/m.exec(status);
    const inv = /^nonvoluntary_ctxt_switches:\s+(\d+)$/m.exec(status);
    if (!Number.isFinite(run) || vol === null || inv === null) continue;
    t.runNs += run;
    t.contextSwitches += Number(vol[1]) + Number(inv[1]);
    t.threads++;
  }
  return t.threads > 0 ? t : null;
}

/** b − a, field by field (threads: b's count). */
export function taskDelta(a: TaskTotals, b: TaskTotals): TaskTotals {
  return { runNs: b.runNs - a.runNs, contextSwitches: b.contextSwitches - a.contextSwitches, threads: b.threads };
}
