// bench:sentinel-clients — what a Sentinel promotion does to many client connections made with
// keizokud's options (src/jobs/connection.ts): per round a primary, a replica and three
// sentinels, 20 connections, kill -9 of the primary, a write on each sent at once; then how
// many connections ended for good ("Connection is closed.") and when the writes landed.
// BENCH_FAILOVER_DETECTOR=1 runs with ioredis's +switch-master detector on, to compare.
// Prints one JSON object on the last line.
import { Redis } from 'ioredis';
import { redisOptions } from '../src/jobs/connection.ts';
import { startSentinelGroup } from '../test/support/redis.ts';
import { median } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 20);
const DETECTOR = process.env.BENCH_FAILOVER_DETECTOR === '1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let ended = 0;
let roundsWithEnded = 0;
const landed: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const group = await startSentinelGroup();
  const clients = Array.from({ length: CLIENTS }, () => {
    const c = new Redis({
      ...redisOptions(group.target),
      failoverDetector: DETECTOR,
      maxRetriesPerRequest: null,
    });
    c.on('error', () => undefined);
    return c;
  });
  try {
    await Promise.all(clients.map((c) => c.set('k', 'before')));
    const killed = await group.killPrimary();
    const writes = clients.map((c) =>
      c.set('k', 'after').then(
        () => landed.push(performance.now() - killed.at),
        () => undefined,
      ),
    );
    await group.awaitPromotion(killed.port);
    await Promise.race([Promise.all(writes), sleep(30_000)]);
    await sleep(2_000); // a connection that is going to end has done so by now
    const n = clients.filter((c) => c.status === 'end').length;
    ended += n;
    if (n) roundsWithEnded++;
    console.log(`round ${round + 1}: ${n} of ${CLIENTS} connections ended`);
  } finally {
    for (const c of clients) c.disconnect();
    await group.stop();
  }
}
console.log(
  JSON.stringify({
    rounds: ROUNDS,
    connections: ROUNDS * CLIENTS,
    failover_detector: DETECTOR,
    connections_ended: ended,
    rounds_with_ended_connections: roundsWithEnded,
    write_after_kill_ms_median: Math.round(median(landed)),
    writes_landed: landed.length,
  }),
);
process.exit(0);
