// stats.ts: reads the workers' counter slots straight from the memory the addon shares (no call
// into native code per read). Field names, offsets and what each counter is come from the
// addon's own list (native/worker/stats.h through statsLayout()).
import { native, type StatsCounter, type StatsLayout } from "../native";

export type Counters = Record<string, number>;

/** One worker's server-side latency histogram: per-bucket counts (not cumulative) and their sum, ns. */
export interface LatencyCounts {
  buckets: number[];
  sumNs: number;
}

export class StatsReader {
  private readonly views: BigUint64Array[];
  private readonly offsets: [string, number][];
  private readonly layout: StatsLayout;

  constructor(block: ArrayBuffer, workers: number) {
    this.layout = native().statsLayout();
    this.offsets = Object.entries(this.layout.fields).map(([name, off]) => [name, off / 8]);
    this.views = [];
    for (let i = 0; i < workers; i++) {
      this.views.push(new BigUint64Array(block, i * this.layout.slotBytes, this.layout.slotBytes / 8));
    }
  }

  /** What each counter is (kind, unit, Prometheus family and label, help), in native/worker/stats.h's order. */
  counters(): readonly StatsCounter[] {
    return this.layout.counters;
  }

  /** The latency buckets' upper bounds, ns, ascending; the last is Infinity. */
  latencyBoundsNs(): number[] {
    const { buckets, firstLog2 } = this.layout.latency;
    return Array.from({ length: buckets }, (_v, i) => (i === buckets - 1 ? Infinity : 2 ** (firstLog2 + i)));
  }

  /** Every counter of every worker, now. Values are exact below 2^53. */
  snapshot(): Counters[] {
    return this.views.map((v) => {
      const c: Counters = {};
      for (const [name, idx] of this.offsets) c[name] = Number(v[idx]);
      return c;
    });
  }

  /** Every worker's latency histogram, now. */
  latency(): LatencyCounts[] {
    const { offset, buckets, sumOffset } = this.layout.latency;
    return this.views.map((v) => ({
      buckets: Array.from({ length: buckets }, (_x, i) => Number(v[offset / 8 + i])),
      sumNs: Number(v[sumOffset / 8]),
    }));
  }

  /** One counter summed over the workers, read without building a snapshot (cheap to poll). */
  sum(field: string): number {
    const idx = this.offsets.find(([name]) => name === field)?.[1];
    if (idx === undefined) return 0;
    let n = 0;
    for (const v of this.views) n += Number(v[idx]);
    return n;
  }

  /** The sum over workers of every counter (the `cpu` field is meaningless summed). */
  totals(): Counters {
    const sum: Counters = {};
    for (const c of this.snapshot()) {
      for (const [k, v] of Object.entries(c)) sum[k] = (sum[k] ?? 0) + v;
    }
    return sum;
  }
}
