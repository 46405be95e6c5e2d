import { describe, expect, it } from "vitest";
import {
  addBuckets,
  countAtLeast,
  latencyBucketBounds,
  latencyBucketCount,
  latencyBucketOf,
  latencyPercentiles,
  latencyQuantile,
} from "../src/bus/latencyBuckets.js";

/** A histogram of these latencies (ms). */
const histogramOf = (latencies: number[]) => {
  const buckets = new Array<number>(latencyBucketCount).fill(0);
  for (const ms of latencies) buckets[latencyBucketOf(ms)]! += 1;
  return buckets;
};

describe("latency histogram", () => {
  it("buckets as herald_latency_bucket does: 0 under 1 ms, three a doubling, the last from ~3.3 hours", () => {
    expect([0, 0.999, 1, 1.25, 1.26, 2, 3, 8, 1500].map(latencyBucketOf)).toEqual([
      0, 0, 1, 1, 2, 4, 5, 10, 32,
    ]);
    expect(latencyBucketOf(2 ** (70 / 3))).toBe(71);
    expect(latencyBucketOf(86_400_000)).toBe(71);
    expect(latencyBucketBounds(0)).toEqual({ lowerMs: 0, upperMs: 1 });
    expect(latencyBucketBounds(4)).toEqual({ lowerMs: 2, upperMs: 2 ** (4 / 3) });
    expect(latencyBucketBounds(71).upperMs).toBe(Number.POSITIVE_INFINITY);
    // Every latency lies within its bucket's bounds.
    for (const ms of [0.5, 1, 7, 99.9, 1000, 12_345, 600_000]) {
      const { lowerMs, upperMs } = latencyBucketBounds(latencyBucketOf(ms));
      expect(ms).toBeGreaterThanOrEqual(lowerMs);
      expect(ms).toBeLessThan(upperMs);
    }
  });

  it("reads percentiles within one bucket (≤ ~26 %) of the exact figures, never above the max", () => {
    // 1..1000 ms: exact p50 = 500, p95 = 950, p99 = 990 (nearest rank).
    const latencies = Array.from({ length: 1000 }, (_, i) => i + 1);
    const { p50, p95, p99 } = latencyPercentiles(histogramOf(latencies), 1000);
    for (const [read, exact] of [
      [p50, 500],
      [p95, 950],
      [p99, 990],
    ] as const) {
      expect(read! / exact).toBeGreaterThan(1 / 2 ** (1 / 3));
      expect(read! / exact).toBeLessThan(2 ** (1 / 3));
    }
    // The reported value is the bucket's geometric midpoint: 500 ms is in [2^(26/3), 2^9) = [406, 512).
    expect(p50).toBeCloseTo(2 ** (26.5 / 3), 6);
    expect(p99).toBeLessThanOrEqual(1000);
  });

  it("picks the bucket where the cumulative count reaches the rank, and clamps to the max seen", () => {
    // 90 fast deliveries (3 ms), 10 slow ones (5,000 ms).
    const buckets = histogramOf([...new Array(90).fill(3), ...new Array(10).fill(5000)]);
    expect(latencyQuantile(buckets, 0.5)).toBeCloseTo(2 ** (4.5 / 3), 6);
    expect(latencyQuantile(buckets, 0.9)).toBeCloseTo(2 ** (4.5 / 3), 6); // rank 90 is the last fast one
    expect(latencyQuantile(buckets, 0.91)).toBeCloseTo(2 ** (36.5 / 3), 6);
    // One delivery of 4,100 ms: its bucket's midpoint (~4,598) is above what was seen, so the max is reported.
    expect(latencyPercentiles(histogramOf([4100]), 4100)).toEqual({ p50: 4100, p95: 4100, p99: 4100 });
    // Under 1 ms: 0.5 ms, or the max when smaller.
    expect(latencyQuantile(histogramOf([0.2]), 0.5)).toBe(0.5);
    expect(latencyQuantile(histogramOf([0.2]), 0.5, 0.2)).toBe(0.2);
    // The last bucket has no upper bound: its value is the max.
    expect(latencyQuantile(histogramOf([20_000_000]), 0.99, 20_000_000)).toBe(20_000_000);
    // Nothing counted: no percentile.
    expect(latencyPercentiles(histogramOf([]), null)).toEqual({ p50: null, p95: null, p99: null });
  });

  it("counts slow deliveries by whole buckets, and adds histograms", () => {
    const buckets = histogramOf([10, 900, 1000, 1100, 5000]);
    // 1,000 ms is in [1024 / 2^(1/3), 1024) ≈ [813, 1024): that bucket starts below the threshold, so 900,
    // 1,000 (and any other in it) are not counted; 1,100 and 5,000 are.
    expect(countAtLeast(buckets, 1000)).toBe(2);
    expect(countAtLeast(buckets, 1)).toBe(5);
    expect(addBuckets([1, 2], [3, 4, 5])).toEqual([4, 6, 5]);
  });
});
