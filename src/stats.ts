// stats.ts: reads the workers' counter slots straight from the memory the addon shares (no call
// into native code per read). Field names and offsets come from the addon's own list.
import { native } from "./native";

export type Counters = Record<string, number>;

export class StatsReader {
  private readonly views: BigUint64Array[];
  private readonly offsets: [string, number][];

  constructor(block: ArrayBuffer, workers: number) {
    const layout = native().statsLayout();
    this.offsets = Object.entries(layout.fields).map(([name, off]) => [name, off / 8]);
    this.views = [];
    for (let i = 0; i < workers; i++) {
      this.views.push(new BigUint64Array(block, i * layout.slotBytes, layout.slotBytes / 8));
    }
  }

  /** Every counter of every worker, now. Values are exact below 2^53. */
  snapshot(): Counters[] {
    return this.views.map((v) => {
      const c: Counters = {};
      for (const [name, idx] of this.offsets) c[name] = Number(v[idx]);
      return c;
    });
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
