import type { RunningKeizokud } from './keizokud.ts';
import { qemuCopies } from './qemu.ts';
import type { SentinelGroup } from './redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// biome-ignore lint/suspicious/noExplicitAny: job views as the API answers them
type JobBody = any;

export interface FailoverEvacuation {
  /** The evacuation's parent job and its moves, as they ended. */
  parent: JobBody;
  moves: JobBody[];
  /** Moves that had finished, and bytes each had sent, when the primary was killed. */
  finishedAtKill: number;
  killedPort: number;
  promotedPort: number;
  /** kill -9 of the primary to every sentinel naming the replica. */
  promotionMs: number;
  /**
   * kill -9 of the primary to the first progress of the evacuation read back through keizokud
   * (a move's sent bytes beyond what they were at the kill, or a move ending): keizokud wrote
   * it to the promoted replica.
   */
  failoverToProgressMs: number;
  /** The most QEMU processes seen at once per VM while it all ran (a live move has two). */
  maxQemuCopies: Record<string, number>;
  /** API answers that were not 200 while Redis failed over (they are retried). */
  failedReads: number;
}

/**
 * Puts `host` in maintenance through keizokud, kills the Sentinel group's primary (kill -9)
 * once one move has finished and another has not, and follows the evacuation to its end.
 * Polls every 100 ms; throws if it has not ended within `timeoutMs`.
 */
export async function evacuateAcrossRedisFailover(o: {
  kz: RunningKeizokud;
  token: string;
  group: SentinelGroup;
  host: string;
  vms: readonly string[];
  timeoutMs?: number;
}): Promise<FailoverEvacuation> {
  const { kz, token, group } = o;
  const enter = await kz.request('POST', `/v1/hosts/${o.host}/maintenance`, token, { action: 'enter' });
  if (enter.status !== 202)
    throw new Error(`maintenance enter answered ${enter.status}: ${JSON.stringify(enter.body)}`);
  const ids: string[] = enter.body.jobs.map((j: { id: string }) => j.id);
  const parentId: string = enter.body.job;
  const maxQemuCopies = Object.fromEntries(o.vms.map((vm) => [vm, 0]));
  const latest = new Map<string, JobBody>();
  const finished = (j: JobBody | undefined) =>
    j !== undefined && j.state !== 'waiting' && j.state !== 'active';
  const sent = (j: JobBody | undefined) => Number(j?.progress?.dataProcessedBytes ?? 0);
  let failedReads = 0;
  let kill: { port: number; at: number; finished: Set<string>; sent: Map<string, number> } | null = null;
  let promotion: Promise<{ port: number; at: number }> | null = null;
  let progressAt: number | null = null;
  const deadline = performance.now() + (o.timeoutMs ?? 240_000);
  for (;;) {
    for (const vm of o.vms) maxQemuCopies[vm] = Math.max(maxQemuCopies[vm]!, qemuCopies(vm));
    for (const id of ids) {
      const r = await kz.request('GET', `/v1/jobs/${id}`, token).catch(() => null);
      if (r?.status !== 200) {
        failedReads++;
        continue;
      }
      latest.set(id, r.body);
      if (kill && progressAt === null) {
        const newlyDone = finished(r.body) && !kill.finished.has(id);
        if (newlyDone || sent(r.body) > (kill.sent.get(id) ?? 0)) progressAt = performance.now();
      }
    }
    const done = ids.filter((id) => finished(latest.get(id)));
    if (!kill && done.length >= 1 && done.length < ids.length) {
      const sentNow = new Map(ids.map((id) => [id, sent(latest.get(id))]));
      const k = await group.killPrimary();
      kill = { port: k.port, at: k.at, finished: new Set(done), sent: sentNow };
      promotion = group.awaitPromotion(k.port).then((port) => ({ port, at: performance.now() }));
    }
    if (done.length === ids.length) {
      if (!kill)
        throw new Error(`every move of ${o.host} ended before the primary could be killed in the middle`);
      const parent = await kz.request('GET', `/v1/jobs/${parentId}`, token).catch(() => null);
      if (parent?.status === 200 && finished(parent.body)) {
        const promoted = await promotion!;
        if (progressAt === null) throw new Error('the evacuation ended without progress after the kill');
        return {
          parent: parent.body,
          moves: ids.map((id) => latest.get(id)),
          finishedAtKill: kill.finished.size,
          killedPort: kill.port,
          promotedPort: promoted.port,
          promotionMs: Math.round(promoted.at - kill.at),
          failoverToProgressMs: Math.round(progressAt - kill.at),
          maxQemuCopies,
          failedReads,
        };
      }
    }
    if (performance.now() > deadline)
      throw new Error(
        `the evacuation of ${o.host} did not end: ${ids.map((id) => `${id} ${latest.get(id)?.state}`).join(', ')}`,
      );
    await sleep(100);
  }
}
