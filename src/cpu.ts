// cpu.ts: which CPUs vw may use (from sched_getaffinity, via the addon) and which it will use.
import { ConfigError } from "./errors";
import { native } from "./native";

/** Parses a Linux cpulist ("0-3,6") into sorted, unique CPU ids. */
export function parseCpuList(text: string): number[] {
  const cpus = new Set<number>();
  for (const part of text.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new ConfigError(`--cpus: "${text}" is not a CPU list; write it like 0-3,6`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new ConfigError(`--cpus: range ${part.trim()} runs backwards; write ${hi}-${lo}`);
    if (hi >= 4096) throw new ConfigError(`--cpus: CPU ${hi} is beyond any machine; see \`nproc\``);
    for (let c = lo; c <= hi; c++) cpus.add(c);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** Formats CPU ids back as a compact cpulist: [0,1,2,5] → "0-2,5". */
export function formatCpuList(cpus: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j] + 1) j++;
    parts.push(i === j ? `${cpus[i]}` : `${cpus[i]}-${cpus[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** The CPUs this process may run on: taskset and cgroup cpusets are respected. */
export function allowedCpus(): number[] {
  const r = native().allowedCpus();
  if (!Array.isArray(r)) throw new Error(`sched_getaffinity failed: ${r.message}`);
  return r;
}

/**
 * Chooses one CPU per worker: the --cpus list (which must lie inside the allowed set), or
 * every allowed CPU; --workers N then takes the first N.
 */
export function selectCpus(allowed: readonly number[], cpus: string | undefined, workers: number | undefined): number[] {
  let chosen = [...allowed];
  if (cpus !== undefined) {
    chosen = parseCpuList(cpus);
    const outside = chosen.filter((c) => !allowed.includes(c));
    if (outside.length > 0) {
      throw new ConfigError(
        `--cpus: CPU ${formatCpuList(outside)} is not allowed for this process; allowed: ${formatCpuList(allowed)}`,
      );
    }
  }
  if (workers !== undefined) {
    if (workers > chosen.length) {
      throw new ConfigError(
        `--workers ${workers}: only ${chosen.length} CPU(s) to pin to (${formatCpuList(chosen)}); one worker per CPU, so use --workers ${chosen.length} or fewer`,
      );
    }
    chosen = chosen.slice(0, workers);
  }
  return chosen;
}
