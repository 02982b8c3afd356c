// latency.ts: figures from the workers' server-side latency histograms (native/worker/stats.h): the
// difference of two readings, their sum over workers, and quantiles, the way Prometheus's
// histogram_quantile() estimates them (linear within the bucket that holds the rank).
import type { LatencyCounts } from "./stats";

/** b − a, bucket by bucket: the requests of an interval. */
export function latencyDelta(a: LatencyCounts, b: LatencyCounts): LatencyCounts {
  return { buckets: b.buckets.map((n, i) => n - (a.buckets[i] ?? 0)), sumNs: b.sumNs - a.sumNs };
}

/** The histograms of several workers added up. */
export function latencySum(hs: readonly LatencyCounts[]): LatencyCounts {
  const buckets: number[] = [];
  let sumNs = 0;
  for (const h of hs) {
    h.buckets.forEach((n, i) => (buckets[i] = (buckets[i] ?? 0) + n));
    sumNs += h.sumNs;
  }
  return { buckets, sumNs };
}

/**
 * The q-quantile (0 < q < 1) of a histogram, µs, or null when it counts nothing. `boundsNs` are
 * the buckets' upper bounds (the last Infinity). Within a bucket the rank is placed linearly
 * between its lower and upper bound; a rank in the last bucket reports that bucket's lower
 * bound (it has no upper one), as histogram_quantile() does.
 */
export function latencyQuantileUs(h: LatencyCounts, boundsNs: readonly number[], q: number): number | null {
  const total = h.buckets.reduce((s, n) => s + n, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < h.buckets.length; i++) {
    const n = h.buckets[i];
    if (n > 0 && seen + n >= rank) {
      const lo = i === 0 ? 0 : boundsNs[i - 1];
      const hi = boundsNs[i];
      if (!Number.isFinite(hi)) return lo / 1000;
      return (lo + ((hi - lo) * (rank - seen)) / n) / 1000;
    }
    seen += n;
  }
  return boundsNs[boundsNs.length - 2] / 1000;
}
