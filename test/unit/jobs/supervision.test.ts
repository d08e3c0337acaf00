import { describe, expect, it } from 'vitest';
import { type JobHandle, runMigration } from '../../../src/jobs/migrate.ts';
import { fakeMove, movePorts, moveRequest, never, policy } from './fake-move.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * F14: while libvirt moves the VM, the job's Redis calls (heartbeat, progress, the cancel
 * check) may hang or throw (Redis paused, restarting, gone). The move is still watched.
 */
describe('migration supervision while Redis is away (F14)', () => {
  /** Redis answers until `goneAfter` calls of the heartbeat, then hangs or throws. */
  const fading = (how: 'hang' | 'throw', cancelled = () => false): JobHandle => {
    let beats = 0;
    const gone = () => beats > 2;
    const call = <T>(v: T) =>
      !gone()
        ? Promise.resolve(v)
        : how === 'hang'
          ? never<T>()
          : Promise.reject(new Error('Connection is closed.'));
    return {
      id: 'j',
      progress: () => call(undefined),
      heartbeat: () => {
        beats++;
        return call(undefined);
      },
      cancelled: () => call(cancelled()),
    };
  };

  for (const how of ['hang', 'throw'] as const)
    it(`F14: the timeout is enforced while the job's Redis calls ${how}; libvirt's job is aborted and the VM stays on the source`, async () => {
      const f = fakeMove();
      const result = await runMigration(
        moveRequest,
        fading(how),
        movePorts(f, policy({ timeoutMs: 300 })),
        async () => true,
      );
      expect(f.calls).toEqual(['migrate on h1', 'abort on h1']);
      expect(result).toMatchObject({ outcome: 'aborted', host: 'h1' });
      expect(result.reason).toBe('timed out after 300 ms; vm1 runs on h1');
    });

  it('F14: a move that completes while Redis is away ends succeeded, where libvirt put the VM', async () => {
    const f = fakeMove();
    const run = runMigration(moveRequest, fading('hang'), movePorts(f), async () => true);
    await sleep(200);
    f.complete();
    const result = await run;
    expect(result).toMatchObject({ outcome: 'succeeded', host: 'h2' });
    expect(f.calls).toEqual(['migrate on h1']);
  });

  it('F14: the post-copy switch happens while Redis is away', async () => {
    const f = fakeMove();
    const run = runMigration(
      moveRequest,
      fading('hang'),
      movePorts(f, policy({ postCopyAfterMs: 150 })),
      async () => true,
    );
    await sleep(500);
    expect(f.calls).toEqual(['migrate on h1', 'post-copy on h1']);
    f.complete();
    expect(await run).toMatchObject({ outcome: 'succeeded', postCopy: true, host: 'h2' });
  });

  it('F14: a cancel seen once Redis answers again aborts the move', async () => {
    let cancel = false;
    let down = true;
    const f = fakeMove();
    const job: JobHandle = {
      id: 'j',
      progress: async () => undefined,
      heartbeat: async () => undefined,
      cancelled: async () => {
        if (down) throw new Error('Connection is closed.');
        return cancel;
      },
    };
    down = false;
    const run = runMigration(moveRequest, job, movePorts(f), async () => true);
    await sleep(100);
    down = true;
    cancel = true;
    await sleep(200);
    expect(f.calls).toEqual(['migrate on h1']);
    down = false;
    const result = await run;
    expect(result.outcome).toBe('cancelled');
    expect(f.calls).toEqual(['migrate on h1', 'abort on h1']);
  });
});
