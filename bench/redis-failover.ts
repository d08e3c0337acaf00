// bench:redis-failover — kill -9 of the Redis primary in the middle of a host evacuation,
// BENCH_ROUNDS (3) times. Each round: a fresh Redis primary, replica and three sentinels
// (down-after 1 s) and a keizokud configured with redis.sentinels; maintenance of the host the
// guests are on (one move at a time), the primary killed once one move has finished; the time
// from the kill to the next progress of the evacuation read back through keizokud's API (sent
// bytes of a move beyond the kill's, or a move ending). The guests alternate h1 -> h2 -> h1.
// Prints one JSON object on the last line.
import { createVm, downLab, readState } from '../lab/index.ts';
import { startKeizokud } from '../test/support/keizokud.ts';
import { qemuCopies } from '../test/support/qemu.ts';
import { startSentinelGroup } from '../test/support/redis.ts';
import { evacuateAcrossRedisFailover } from '../test/support/redis-failover.ts';
import { upFreeLab } from './free-lab.ts';
import { median } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const VMS = ['rf1', 'rf2', 'rf3', 'rf4'];
const CONFIG = { migration: { perHostConcurrency: 1, progressIntervalMs: 200 } };

async function main() {
  const id = await upFreeLab({ hosts: 3, sites: 2 });
  try {
    await Promise.all(VMS.map((name) => createVm(id, { name, host: 'h1' })));
    const lab = readState(id)!;
    const toProgress: number[] = [];
    const promotion: number[] = [];
    let lostJobs = 0;
    let twoHosts = 0;
    let from = 'h1';
    for (let round = 0; round < ROUNDS; round++) {
      const group = await startSentinelGroup();
      let kz: Awaited<ReturnType<typeof startKeizokud>> | undefined;
      try {
        kz = await startKeizokud(lab, group.target, CONFIG);
        const token = await kz.token('admin');
        for (let i = 0; i < 150; i++) {
          const vms = (await kz.request('GET', '/v1/vms', token)).body.vms as {
            name: string;
            host: string;
          }[];
          if (VMS.every((vm) => vms.some((v) => v.name === vm && v.host === from))) break;
          await new Promise((r) => setTimeout(r, 200));
        }
        const run = await evacuateAcrossRedisFailover({ kz, token, group, host: from, vms: VMS });
        toProgress.push(run.failoverToProgressMs);
        promotion.push(run.promotionMs);
        lostJobs += run.moves.filter((m) => m.state !== 'succeeded').length;
        twoHosts += VMS.filter((vm) => qemuCopies(vm) !== 1).length;
        console.error(
          `round ${round + 1}: promotion ${run.promotionMs} ms, kill to progress ${run.failoverToProgressMs} ms, ` +
            `${run.moves.length} moves ${run.moves.map((m) => m.state).join(',')}`,
        );
        const exit = await kz.request('POST', `/v1/hosts/${from}/maintenance`, token, { action: 'exit' });
        if (exit.status !== 202) throw new Error(`maintenance exit answered ${exit.status}`);
        from = from === 'h1' ? 'h2' : 'h1';
      } finally {
        await kz?.stop();
        await group.stop();
      }
    }
    console.log(
      JSON.stringify({
        rounds: ROUNDS,
        scope: `${VMS.length} TCG guests evacuated one move at a time within one site; Redis primary + replica + 3 sentinels on loopback, down-after 1000 ms, quorum 2`,
        redis_failover_to_progress_ms: median(toProgress),
        redis_failover_to_progress_max_ms: Math.max(...toProgress),
        redis_promotion_ms: median(promotion),
        moves_not_succeeded: lostJobs,
        vms_not_on_one_host: twoHosts,
      }),
    );
  } finally {
    await downLab(id);
  }
}

await main();
