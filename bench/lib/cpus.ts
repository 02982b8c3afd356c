// cpus.ts: which CPUs the server and the client get. The server takes the upper
// half of the CPUs we may run on, the client (wrk, perf, this script) the rest:
// on a 2-core box that is server CPU 1, client CPU 0.
import * as fs from "node:fs";
import * as os from "node:os";

export interface CpuPlan {
  allowed: number[];
  server: number[];
  client: number[];
}

export function parseCpuList(s: string): number[] {
  const out: number[] = [];
  for (const part of s.trim().split(",")) {
    if (part === "") continue;
    const [a, b] = part.split("-").map(Number);
    if (a === undefined || !Number.isInteger(a)) continue;
    const hi = b !== undefined && Number.isInteger(b) ? b : a;
    for (let c = a; c <= hi; c++) out.push(c);
  }
  return out;
}

export function allowedCpus(): number[] {
  try {
    const m = /^Cpus_allowed_list:\s*(.+)$/m.exec(fs.readFileSync("/proc/self/status", "utf8"));
    if (m !== null) {
      const list = parseCpuList(m[1]!);
      if (list.length > 0) return list;
    }
  } catch {
    // fall through
  }
  return Array.from({ length: os.availableParallelism() }, (_, i) => i);
}

export function planCpus(): CpuPlan {
  const allowed = allowedCpus();
  if (allowed.length < 2) return { allowed, server: allowed, client: allowed };
  const half = Math.floor(allowed.length / 2);
  return { allowed, client: allowed.slice(0, half), server: allowed.slice(half) };
}

export const cpuArg = (cpus: readonly number[]): string => cpus.join(",");
