/** Percentiles of samples and of Prometheus histograms. */

/** Nearest-rank quantile (q in 0..1) of unsorted samples; NaN when empty. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** Cumulative bucket counts by upper bound (seconds; +Inf as Infinity), summed over label sets. */
export type Buckets = Map<number, number>;

/**
 * The `<name>_bucket` series of a Prometheus text exposition, summed over every label set but `le`,
 * or over those that carry `label` (such as `kind="request"`).
 */
export function parseHistogram(text: string, name: string, label?: string): Buckets {
  const out: Buckets = new Map();
  const prefix = `${name}_bucket{`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix) || (label !== undefined && !line.includes(label))) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    out.set(bound, (out.get(bound) ?? 0) + value);
  }
  return out;
}

/** after − before, bucket by bucket: the observations of one run. */
export function diffBuckets(after: Buckets, before: Buckets): Buckets {
  const out: Buckets = new Map();
  for (const [bound, n] of after) out.set(bound, n - (before.get(bound) ?? 0));
  return out;
}

/**
 * A quantile from cumulative buckets, interpolated linearly inside the bucket
 * that holds it (as PromQL's histogram_quantile does); null without observations.
 * The answer is only as fine as the buckets around it.
 */
export function histogramQuantile(b: Buckets, q: number): number | null {
  const sorted = [...b].sort((x, y) => x[0] - y[0]);
  const total = sorted.length === 0 ? 0 : sorted[sorted.length - 1][1];
  if (total <= 0) return null;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const [bound, count] of sorted) {
    if (count >= rank) {
      if (!Number.isFinite(bound)) return prevBound;
      const inBucket = count - prevCount;
      return inBucket <= 0 ? bound : prevBound + ((bound - prevBound) * (rank - prevCount)) / inBucket;
    }
    prevBound = bound;
    prevCount = count;
  }
  return prevBound;
}

export function round(v: number | null | undefined, digits = 0): number | null {
  if (v === null || v === undefined || !Number.isFinite(v)) return null;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
