/**
 * How late this machine runs one step right now: the worst lateness of `n` timers of `ms` each,
 * each followed by `roundTrip` (a Redis PING, a metrics scrape). Timing bounds in tests add a
 * multiple of this, measured in the same run, instead of a fixed slack that a busy machine
 * outgrows.
 */
export async function measureLagMs(ms: number, roundTrip: () => Promise<unknown>, n = 5): Promise<number> {
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, ms));
    await roundTrip();
    worst = Math.max(worst, performance.now() - t0 - ms);
  }
  return Math.round(worst);
}
