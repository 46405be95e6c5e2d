/**
 * The delivery latency histogram of `delivery_rollups.latency_buckets` (migration 0030's
 * `herald_latency_bucket`): 72 buckets, bucket 0 under 1 ms, then three a doubling — bucket k ≥ 1 holds
 * [2^((k-1)/3), 2^(k/3)) ms — and the last (71) everything from 2^(70/3) ms (≈ 3.3 hours) on.
 *
 * Resolution: a bucket's upper bound is 2^(1/3) ≈ 1.26 times its lower bound, so a percentile read from the
 * histogram is known to within one bucket, ≤ ~26 % of its value; reported as the bucket's geometric
 * midpoint, it is within ~12 % of the exact figure (clamped to the largest latency seen, which the rollups
 * keep exactly). Under 1 ms everything is one bucket, reported as 0.5 ms.
 */

export const latencyBucketCount = 72;

/**
 * The bucket of a latency, as the database's `herald_latency_bucket` computes it. The 1e-9 puts a value on
 * a bucket's edge in the bucket it starts whichever way the logarithm rounds (2 ** (2 / 3) gives 1.99…96
 * here), so that both sides agree.
 */
export function latencyBucketOf(ms: number): number {
  if (!(ms >= 1)) return 0;
  return Math.min(latencyBucketCount - 1, 1 + Math.floor(Math.log2(ms) * 3 + 1e-9));
}

/** Bucket k's bounds in ms: [lowerMs, upperMs), `upperMs` infinite for the last. */
export function latencyBucketBounds(k: number): { lowerMs: number; upperMs: number } {
  if (k <= 0) return { lowerMs: 0, upperMs: 1 };
  return {
    lowerMs: 2 ** ((k - 1) / 3),
    upperMs: k >= latencyBucketCount - 1 ? Number.POSITIVE_INFINITY : 2 ** (k / 3),
  };
}

/** The value reported for a latency in bucket k: its geometric midpoint (0.5 ms for bucket 0). */
function representativeMs(k: number, maxMs: number | null): number {
  if (k <= 0) return maxMs === null ? 0.5 : Math.min(0.5, maxMs);
  const { lowerMs, upperMs } = latencyBucketBounds(k);
  const mid = upperMs === Number.POSITIVE_INFINITY ? (maxMs ?? lowerMs) : Math.sqrt(lowerMs * upperMs);
  return maxMs === null ? mid : Math.min(mid, maxMs);
}

/**
 * The `q` quantile (0 < q ≤ 1) of the latencies counted in `buckets` (nearest rank: the bucket where the
 * cumulative count reaches ⌈q·n⌉), as that bucket's representative value, never above `maxMs` (the largest
 * latency seen). Null when nothing was counted.
 */
export function latencyQuantile(buckets: readonly number[], q: number, maxMs: number | null = null) {
  const total = buckets.reduce((sum, n) => sum + n, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let k = 0; k < buckets.length; k++) {
    seen += buckets[k]!;
    if (seen >= rank) return representativeMs(k, maxMs);
  }
  return representativeMs(buckets.length - 1, maxMs);
}

/** p50, p95 and p99 of a histogram (see `latencyQuantile`). */
export function latencyPercentiles(buckets: readonly number[], maxMs: number | null = null) {
  return {
    p50: latencyQuantile(buckets, 0.5, maxMs),
    p95: latencyQuantile(buckets, 0.95, maxMs),
    p99: latencyQuantile(buckets, 0.99, maxMs),
  };
}

/**
 * How many latencies are in buckets that start at `thresholdMs` or later: the deliveries certainly slower
 * than the threshold. Approximate by up to one bucket: those in the bucket holding the threshold are not
 * counted.
 */
export function countAtLeast(buckets: readonly number[], thresholdMs: number): number {
  let n = 0;
  for (let k = 0; k < buckets.length; k++) {
    if (latencyBucketBounds(k).lowerMs >= thresholdMs) n += buckets[k]!;
  }
  return n;
}

/** Element-wise sum of histograms (missing buckets count 0). */
export function addBuckets(a: readonly number[], b: readonly number[]): number[] {
  return Array.from({ length: Math.max(a.length, b.length) }, (_, k) => (a[k] ?? 0) + (b[k] ?? 0));
}
