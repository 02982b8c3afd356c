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
