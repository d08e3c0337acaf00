import { describe, expect, it } from 'vitest';
import { type JobHandle, runMigration } from '../../../src/jobs/migrate.ts';
import { fakeMove, movePorts, moveRequest, policy } from './fake-move.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A job handle that answers at once and counts its heartbeats. */
function handle() {
  const h = { beats: 0, progress: 0 };
  const job: JobHandle = {
    id: 'j',
    progress: async () => void h.progress++,
    heartbeat: async () => void h.beats++,
    cancelled: async () => false,
  };
  return { h, job };
}

const pause = (detail: number, domain = 'vm1') => ({
  kind: 'lifecycle',
  domain,
  uuid: 'u1',
  event: 'suspended',
  detail,
});

/**
 * A job-stats read of the source during the switch-over waits for libvirt's handover and holds
 * it up while the guest is paused: from the source's pause for the switch-over until the
 * migration call returns, the job reads no progress from libvirt (raw `virsh migrate` reads none
 * after the job started). Its own watch goes on: heartbeats, the cancel check, the timeout.
 */
describe('migration job during the switch-over', () => {
  it('reads no job stats from the pause for the switch-over on; heartbeats go on and the move succeeds', async () => {
    const f = fakeMove();
    const { h, job } = handle();
    const run = runMigration(moveRequest, job, movePorts(f), async () => true);
    while (f.statsReads.length < 3) await sleep(5);
    expect(h.progress).toBeGreaterThan(1);
    // Another VM's pause, or this VM paused by a user (detail 0), changes nothing.
    f.events.get('h1')!.emit('domain-event', pause(1, 'vm2'));
    f.events.get('h1')!.emit('domain-event', pause(0));
    await sleep(100);
    const before = f.statsReads.length;
    expect(before).toBeGreaterThan(4);
    f.events.get('h1')!.emit('domain-event', pause(1));
    await sleep(30);
    const reads = f.statsReads.length;
    const beats = h.beats;
    await sleep(200);
    expect(f.statsReads.length).toBe(reads);
    expect(h.beats).toBeGreaterThan(beats + 3);
    f.complete();
    expect(await run).toMatchObject({ outcome: 'succeeded', host: 'h2' });
    expect(f.events.get('h1')!.listenerCount('domain-event')).toBe(0);
  });

  it('a move past its timeout in the switch-over is still aborted; the VM stays on the source', async () => {
    const f = fakeMove();
    const { job } = handle();
    const run = runMigration(moveRequest, job, movePorts(f, policy({ timeoutMs: 300 })), async () => true);
    while (f.statsReads.length < 1) await sleep(5);
    f.events.get('h1')!.emit('domain-event', pause(1));
    const result = await run;
    expect(f.calls).toEqual(['migrate on h1', 'abort on h1']);
    expect(result).toMatchObject({ outcome: 'aborted', host: 'h1' });
  });
});

/**
 * A guest that resets on the destination right after the switch-over has lost its state even
 * though libvirt's move succeeded: libvirt's reboot event for it, from the start of the move
 * until its probe window closed, is counted in the result; another VM's reset is not.
 */
describe('migration job: a guest reset after the move', () => {
  const reboot = (domain = 'vm1') => ({ kind: 'reboot', domain, uuid: 'u1' });

  it('counts the destination reboot events of this VM until the probe window closes', async () => {
    const f = fakeMove();
    const { job } = handle();
    const run = runMigration(moveRequest, job, movePorts(f), async () => true);
    while (f.statsReads.length < 1) await sleep(5);
    f.events.get('h2')!.emit('domain-event', reboot('vm2'));
    f.events.get('h1')!.emit('domain-event', reboot());
    f.complete();
    await sleep(50);
    // After libvirt's call returned: the guest resets as it resumes there.
    f.events.get('h2')!.emit('domain-event', reboot());
    const result = await run;
    expect(result).toMatchObject({ outcome: 'succeeded', host: 'h2', guestResets: 1 });
    expect(f.events.get('h2')!.listenerCount('domain-event')).toBe(0);
  });

  it('a move without a reset records none', async () => {
    const f = fakeMove();
    const { job } = handle();
    const run = runMigration(moveRequest, job, movePorts(f), async () => true);
    while (f.statsReads.length < 1) await sleep(5);
    f.complete();
    expect(await run).toMatchObject({ outcome: 'succeeded', guestResets: 0 });
  });
});
