// vmstat.ts: machine-wide figures the way `vmstat 1` shows them, from /proc/stat:
// cs (context switches/s, the "ctxt" line), in (interrupts/s, first number of "intr"),
// us = user+nice, sy = system+irq+softirq, id, wa, st as % of all CPUs' time.
import * as fs from "node:fs";

export interface MachineCounters {
  at: number; // ms, monotonic
  /** aggregate "cpu" line: user nice system idle iowait irq softirq steal (ticks) */
  cpu: number[];
  ctxt: number;
  intr: number;
}

export interface MachineRates {
  seconds: number;
  cs: number; // per second
  in: number; // per second
  csTotal: number;
  inTotal: number;
  us: number; // %
  sy: number;
  id: number;
  wa: number;
  st: number;
}

export function readMachineCounters(): MachineCounters | null {
  let text: string;
  try {
    text = fs.readFileSync("/proc/stat", "utf8");
  } catch {
    return null;
  }
  const cpu = /^cpu\s+(.*)$/m.exec(text)?.[1]?.trim().split(/\s+/).slice(0, 8).map(Number);
  const ctxt = /^ctxt (\d+)/m.exec(text)?.[1];
  const intr = /^intr (\d+)/m.exec(text)?.[1];
  if (cpu === undefined || ctxt === undefined || intr === undefined) return null;
  return { at: performance.now(), cpu, ctxt: Number(ctxt), intr: Number(intr) };
}

export function machineDelta(a: MachineCounters, b: MachineCounters): MachineRates {
  const seconds = Math.max((b.at - a.at) / 1000, 1e-6);
  const d = b.cpu.map((v, i) => v - (a.cpu[i] ?? 0));
  const total = Math.max(d.reduce((s, x) => s + x, 0), 1);
  const pct = (...idx: number[]): number => (idx.reduce((s, i) => s + (d[i] ?? 0), 0) / total) * 100;
  const csTotal = b.ctxt - a.ctxt;
  const inTotal = b.intr - a.intr;
  return {
    seconds,
    cs: csTotal / seconds,
    in: inTotal / seconds,
    csTotal,
    inTotal,
    us: pct(0, 1),
    sy: pct(2, 5, 6),
    id: pct(3),
    wa: pct(4),
    st: pct(7),
  };
}

/** Samples every `intervalMs` (vmstat's rows) until stop(), which also gives the whole window. */
export function sampleMachine(intervalMs = 1000): { stop(): { rows: MachineRates[]; total: MachineRates | null } } {
  const first = readMachineCounters();
  let prev = first;
  const rows: MachineRates[] = [];
  const timer = setInterval(() => {
    const now = readMachineCounters();
    if (prev !== null && now !== null) rows.push(machineDelta(prev, now));
    prev = now;
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      const last = readMachineCounters();
      return { rows, total: first !== null && last !== null ? machineDelta(first, last) : null };
    },
  };
}
