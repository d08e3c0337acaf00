/** Summaries the benchmarks print (NaN for no values: printed as null in JSON). */
export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : Number.NaN;
};

/** 95th percentile by nearest rank. */
export const p95 = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil(xs.length * 0.95) - 1)] ?? Number.NaN;

/** One decimal. */
export const r1 = (x: number): number => Math.round(x * 10) / 10;
