// metrics-model.ts: what /metrics says, as data: each worker counter of the shared stats block
// in the Prometheus family, labels and HELP its line in native/worker/stats.h declares (base units,
// `_total` on counters, one family with labels instead of a name per status class or system
// call kind), and the latency histogram. Pure: metrics.ts turns the families into text.
import type { Counters, LatencyCounts } from "./stats";
import type { StatsCounter } from "../native";
import type { ThreadSample } from "./procfs";
import type { WorkerIdentity } from "./sampler";

export type MetricType = "counter" | "gauge" | "histogram";

/** One time series: label values (the `worker` label included) and its value now. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** One histogram series: cumulative counts per upper bound (seconds; the last +Inf), sum, count. */
export interface HistogramSample {
  labels: Record<string, string>;
  /** [upper bound in seconds, requests at or under it], ascending, ending with Infinity */
  buckets: [number, number][];
  sum: number;
  count: number;
}

/** One metric family, as `# HELP`, `# TYPE` and its samples (histograms: `histograms`). */
export interface Family {
  name: string;
  help: string;
  type: MetricType;
  labelNames: string[];
  samples: Sample[];
  histograms?: HistogramSample[];
}

/** Where one worker counter goes: a family, the extra labels its series carries, a unit scale. */
export interface FieldMetric {
  family: string;
  type: "counter" | "gauge";
  help: string;
  /** Labels besides `worker` that tell this counter from the family's other series. */
  labels?: Record<string, string>;
  /** Multiplies the raw value into the family's base unit (1e-6 for microseconds to seconds). */
  scale?: number;
}

/**
 * A counter's metric, from its entry in native/worker/stats.h (`StatsCounter`): the family, labels
 * and HELP it declares, µs scaled to seconds; "internal" for counters that only feed another
 * family (the blocking engine's ended connection threads fold into vw_cpu_seconds_total and
 * vw_context_switches_total; sys_total is the sum of vw_syscalls_total over its kinds).
 */
export function fieldMetric(c: StatsCounter): FieldMetric | "internal" {
  if (c.kind === "internal" || c.metric === "") return "internal";
  const eq = c.label.indexOf("=");
  return {
    family: c.metric,
    type: c.kind,
    help: c.help,
    ...(eq > 0 ? { labels: { [c.label.slice(0, eq)]: c.label.slice(eq + 1) } } : {}),
    ...(c.unit === "us" ? { scale: 1e-6 } : {}),
  };
}

/** Adds a sample to the family `m.family`, creating the family on first use (order kept). */
function add(families: Map<string, Family>, m: Omit<FieldMetric, "scale" | "labels">, labels: Record<string, string>, value: number): void {
  let f = families.get(m.family);
  if (!f) {
    f = { name: m.family, help: m.help, type: m.type, labelNames: Object.keys(labels), samples: [] };
    families.set(m.family, f);
  }
  f.samples.push({ labels, value });
}

/**
 * The per-worker families: every counter of every worker (`snapshot[i]` belongs to
 * `workers[i]`), plus CPU seconds and context switches of each worker's threads (`threads[i]`,
 * from /proc and the counters of ended connection threads).
 */
export function workerFamilies(
  meta: readonly StatsCounter[],
  snapshot: readonly Counters[],
  workers: readonly WorkerIdentity[],
  threads: readonly ThreadSample[],
): Family[] {
  const families = new Map<string, Family>();
  snapshot.forEach((counters, i) => {
    const worker = String(workers[i]?.id ?? i);
    for (const c of meta) {
      const m = fieldMetric(c);
      if (m === "internal") continue;
      add(families, m, { worker, ...m.labels }, (counters[c.name] ?? 0) * (m.scale ?? 1));
    }
  });
  const cpu = { family: "vw_cpu_seconds_total", type: "counter" as const, help: "CPU time of the worker's threads (the worker; --engine blocking's connection threads; --sqpoll's kernel thread), by mode." };
  const cs = {
    family: "vw_context_switches_total",
    type: "counter" as const,
    help: "Context switches of the worker's threads (same threads as vw_cpu_seconds_total): kind=\"voluntary\" (it blocked) or \"involuntary\" (it was preempted).",
  };
  threads.forEach((t, i) => {
    const worker = String(workers[i]?.id ?? i);
    add(families, cpu, { worker, mode: "user" }, t.userSec);
    add(families, cpu, { worker, mode: "system" }, t.sysSec);
    add(families, cs, { worker, kind: "voluntary" }, t.csVoluntary);
    add(families, cs, { worker, kind: "involuntary" }, t.csInvoluntary);
  });
  return [...families.values()];
}

/**
 * vw_request_duration_seconds: each worker's server-side latency histogram (`latency[i]`
 * belongs to `workers[i]`; `boundsNs` the buckets' upper bounds, the last Infinity), cumulative
 * as Prometheus histograms are.
 */
export function latencyFamily(latency: readonly LatencyCounts[], boundsNs: readonly number[], workers: readonly WorkerIdentity[]): Family {
  const histograms = latency.map((h, i): HistogramSample => {
    let cum = 0;
    const buckets = h.buckets.map((n, b): [number, number] => [boundsNs[b] / 1e9, (cum += n)]);
    return { labels: { worker: String(workers[i]?.id ?? i) }, buckets, sum: h.sumNs / 1e9, count: cum };
  });
  return {
    name: "vw_request_duration_seconds",
    help:
      "Server-side latency: the time from the read that brought a request's bytes to the write (io_uring: the send queued) that offered its response to the kernel, in seconds. Counts every request answered.",
    type: "histogram",
    labelNames: ["worker"],
    samples: [],
    histograms,
  };
}

/** A family of one unlabelled sample (or one sample with the given labels). */
export function single(name: string, type: "counter" | "gauge", help: string, value: number, labels: Record<string, string> = {}): Family {
  return { name, help, type, labelNames: Object.keys(labels), samples: [{ labels, value }] };
}
