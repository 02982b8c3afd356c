// procstat.ts: CPU time of a process from /proc/PID/stat. utime and stime there
// already cover every thread of the process (vw's workers are threads of node),
// in clock ticks of `getconf CLK_TCK`.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";

let tck: number | null = null;

/** Clock ticks per second (USER_HZ), asked once from getconf. */
export function clockTicks(): number {
  if (tck === null) {
    try {
      tck = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    } catch {
      tck = 100;
    }
    if (!Number.isFinite(tck) || tck <= 0) tck = 100;
  }
  return tck;
}

export interface CpuTime {
  /** seconds in user mode, all threads */
  user: number;
  /** seconds in kernel mode, all threads */
  sys: number;
  /** wall clock (ms, monotonic) when read */
  at: number;
}

/** null when the process is gone. */
export function readCpu(pid: number): CpuTime | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // comm (field 2) may hold spaces and parens: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  const hz = clockTicks();
  return { user: utime / hz, sys: stime / hz, at: performance.now() };
}

export interface CpuDelta {
  user: number;
  sys: number;
  wallSec: number;
}

export function delta(a: CpuTime, b: CpuTime): CpuDelta {
  return { user: b.user - a.user, sys: b.sys - a.sys, wallSec: (b.at - a.at) / 1000 };
}

/**
 * Busy share (0..1) of the given CPUs over `ms`, from /proc/stat: everything but
 * idle and iowait. Used before each run to catch a client/server CPU that is
 * busy with something else.
 */
export async function cpuBusy(cpus: readonly number[], ms: number): Promise<number | null> {
  const a = readProcStat(cpus);
  await new Promise((r) => setTimeout(r, ms));
  const b = readProcStat(cpus);
  if (a === null || b === null || b.total <= a.total) return null;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

function readProcStat(cpus: readonly number[]): { idle: number; total: number } | null {
  let text: string;
  try {
    text = fs.readFileSync("/proc/stat", "utf8");
  } catch {
    return null;
  }
  let idle = 0;
  let total = 0;
  for (const line of text.split("\n")) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (m === null || !cpus.includes(Number(m[1]))) continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal (guest* already inside user)
    const fields = f.slice(0, 8);
    total += fields.reduce((s, x) => s + x, 0);
    idle += (f[3] ?? 0) + (f[4] ?? 0);
  }
  return total > 0 ? { idle, total } : null;
}


/**
 * The start-of-run check every bench reports: how busy `cpus` were over the last second (a
 * share, null when /proc/stat is unreadable) and the sentence that says so.
 */
export async function idleAtStart(cpus: readonly number[]): Promise<{ busy: number | null; line: string }> {
  const busy = await cpuBusy(cpus, 1000);
  const line =
    busy === null
      ? "idle check at start: /proc/stat unreadable, not checked"
      : busy > 0.1
        ? `CPUs ${cpus.join(",")} were ${(busy * 100).toFixed(0)} % busy in the second before the start: something else is running, the figures are not from a quiet machine`
        : `CPUs ${cpus.join(",")} idle at start (${(busy * 100).toFixed(1)} % busy over 1 s)`;
  return { busy, line };
}

/**
 * Samples a short-lived child's CPU every 100 ms; stop() gives its CPU use as a
 * share of one CPU between the first and last reading. Sampling is needed
 * because the child is reaped as soon as it exits, taking its final stat along.
 */
export function sampleCpu(pid: number): { stop(): number | null } {
  let first: CpuTime | null = null;
  let last: CpuTime | null = null;
  const timer = setInterval(() => {
    const c = readCpu(pid);
    if (c === null) return;
    first ??= c;
    last = c;
  }, 100);
  return {
    stop(): number | null {
      clearInterval(timer);
      const f = first as CpuTime | null;
      const l = last as CpuTime | null;
      if (f === null || l === null || l.at - f.at < 500) return null;
      return (l.user + l.sys - f.user - f.sys) / ((l.at - f.at) / 1000);
    },
  };
}
