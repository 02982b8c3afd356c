// perf.ts: syscalls and context switches of the server PID (all its threads)
// while wrk runs, from `perf stat -x,`. Optional: when perf cannot count
// (not installed, perf_event_paranoid, no tracefs) every figure is n/a.
import * as proc from "./proc";
import { sleep } from "./util";

const EVENTS = "raw_syscalls:sys_enter,context-switches";

export interface PerfCounts {
  syscalls: number | null;
  contextSwitches: number | null;
}

export function parsePerfCsv(text: string): PerfCounts {
  const r: PerfCounts = { syscalls: null, contextSwitches: null };
  for (const line of text.split("\n")) {
    const f = line.split(",");
    if (f.length < 3) continue;
    const v = Number(f[0]); // "<not counted>" / "<not supported>" -> NaN -> n/a
    if (!Number.isFinite(v)) continue;
    if (f[2] === "raw_syscalls:sys_enter") r.syscalls = v;
    else if (f[2] === "context-switches" || f[2] === "cs") r.contextSwitches = v;
  }
  return r;
}

/** null if perf can count here, else why not. */
export async function perfProblem(): Promise<string | null> {
  const r = await proc.run("perf", ["stat", "-e", EVENTS, "-x,", "--", "true"], 10_000).catch(() => null);
  if (r === null) return "perf not found";
  if (r.code !== 0) return `perf stat failed: ${r.out.trim().split("\n").slice(-1)[0] ?? ""}`;
  const c = parsePerfCsv(r.out);
  if (c.syscalls === null) return "perf cannot count raw_syscalls:sys_enter";
  return null;
}

export interface PerfSession {
  /** Stop counting (SIGINT makes perf print its totals) and parse them. */
  finish(): Promise<PerfCounts>;
}

/**
 * Attach to `pid` (all its threads; several PIDs are summed) now, pinned to the client CPUs
 * so perf never runs on the server's. Counting runs until finish().
 */
export async function attach(pid: number | readonly number[], clientCpus: string): Promise<PerfSession> {
  const pids = typeof pid === "number" ? String(pid) : pid.join(",");
  const child = proc.start("taskset", ["-c", clientCpus, "perf", "stat", "-e", EVENTS, "-x,", "-p", pids], {
    keepStdout: true,
  });
  // perf needs a moment to open its counters; the server is idle meanwhile, so
  // the head start adds nothing to the counts.
  await sleep(250);
  return {
    async finish(): Promise<PerfCounts> {
      proc.signal(child.pid, "SIGINT");
      await proc.waitBounded(child, 3000); // SIGTERM/SIGKILL if SIGINT was not enough
      return parsePerfCsv(child.output());
    },
  };
}
