import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, labKeizokudConfig } from '../../lab/index.ts';
import { FencedError, LeaderLease } from '../../src/store/lease.ts';
import { Store, StoreCorruptError } from '../../src/store/store.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { measureLagMs } from '../support/lag.ts';
import { recordChild } from '../support/process.ts';
import { startRedis } from '../support/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const once = <T>(e: NodeJS.EventEmitter, name: string) => new Promise<T>((r) => e.once(name, r));

describe('leader lease with a fencing token (real Redis)', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  const clients: Redis[] = [];
  const client = () => {
    const c = new Redis(redis.url);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await redis?.stop();
  });

  it('elects one replica, hands over on release, and refuses the paused old leader', async () => {
    const prefix = 'keizoku:t1:';
    const pausedClock = 0;
    // Replica A's clock is ours to stop: a paused process does not notice time passing.
    const a = new LeaderLease(client(), {
      prefix,
      replicaId: 'a',
      leaseMs: 1_000,
      renewMs: 200,
      now: () => pausedClock,
    });
    const b = new LeaderLease(client(), { prefix, replicaId: 'b', leaseMs: 1_000, renewMs: 200 });
    a.start();
    const tokenA = await once<number>(a, 'elected');
    b.start();
    // A renewal step on this machine right now (timer, then one Redis round trip): the slack
    // the bounds below allow beyond the lease's own times.
    const lagMs = await measureLagMs(100, () => clients[0]!.ping());
    expect(a.isLeader).toBe(true);
    expect(b.isLeader).toBe(false);
    await a.fencedSet(`${prefix}probe`, 'from a');

    // A stops renewing (paused) but still believes it leads: its clock stands still.
    await a.stop(false);
    const t0 = Date.now();
    const tokenB = await once<number>(b, 'elected');
    const takeoverMs = Date.now() - t0;
    console.log(`takeover after a paused leader: ${takeoverMs} ms (lease 1000, renew 200, lag ${lagMs} ms)`);
    expect(tokenB).toBeGreaterThan(tokenA);
    // B waits for A's lease to lapse in Redis (A renewed at most 200 ms before it paused)...
    expect(takeoverMs).toBeGreaterThan(1_000 - 200 - lagMs);
    // ...and takes it at its next attempt after that, not later: lease + renew + the lag.
    expect(takeoverMs, `lag ${lagMs} ms`).toBeLessThan(1_000 + 200 + 4 * lagMs + 100);
    expect(a.currentToken).toBe(tokenA); // A comes back thinking it still leads...
    const refused = await a.fencedSet(`${prefix}probe`, 'from stale a').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(FencedError); // ...and Redis refuses its token
    expect(a.isLeader).toBe(false); // so A deposes itself
    await b.fencedSet(`${prefix}probe`, 'from b');
    expect(await client().get(`${prefix}probe`)).toBe('from b');

    // A graceful stop releases at once.
    const c = new LeaderLease(client(), { prefix, replicaId: 'c', leaseMs: 1_000, renewMs: 100 });
    c.start();
    const t1 = Date.now();
    await b.stop(true);
    await once(c, 'elected');
    const releasedMs = Date.now() - t1;
    console.log(`takeover after a release: ${releasedMs} ms (renew 100, lag ${lagMs} ms)`);
    // Released, not expired: C is elected at its next attempt, far sooner than the 1 s lease.
    expect(releasedMs, `lag ${lagMs} ms`).toBeLessThan(100 + 4 * lagMs + 100);
    await c.stop();
  });
});

describe('store on Redis', () => {
  it('round-trips state and names the key of a corrupted value', async () => {
    const redis = await startRedis();
    const r = new Redis(redis.url);
    try {
      const lease = new LeaderLease(r, {
        prefix: 'keizoku:s:',
        replicaId: 'x',
        leaseMs: 1_000,
        renewMs: 200,
      });
      lease.start();
      await once(lease, 'elected');
      const store = new Store(r, 'keizoku:s:', lease);
      await store.putDesired('vm1', { tier: 'core', limits: null, homeSite: 'dc1', haPriority: 900 });
      expect(await store.getDesired('vm1')).toEqual({
        tier: 'core',
        limits: null,
        homeSite: 'dc1',
        haPriority: 900,
      });
      expect(await store.recordPlacement('vm1', 'h1', 1)).toBe(true);
      expect(await store.recordPlacement('vm1', 'h1', 2)).toBe(false);
      expect(await store.recordPlacement('vm1', 'h2', 3)).toBe(true);
      expect((await store.history('vm1')).map((e) => [e.kind, e.from, e.to])).toEqual([
        ['placed', null, 'h1'],
        ['moved', 'h1', 'h2'],
      ]);
      expect(await store.listVms()).toEqual(['vm1']);
      await r.set('keizoku:s:vm:vm1:desired', '{"tier": 7}');
      await expect(store.getDesired('vm1')).rejects.toThrow(/keizoku:s:vm:vm1:desired: tier: /);
      await r.set('keizoku:s:vm:vm1:desired', 'not json');
      await expect(store.getDesired('vm1')).rejects.toBeInstanceOf(StoreCorruptError);
      await lease.stop();
    } finally {
      r.disconnect();
      await redis.stop();
    }
  });
});

describe('two keizokud replicas', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let dir: string;
  const replicas: ChildProcess[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'keizokud-ha-'));
  });
  afterAll(async () => {
    for (const r of replicas) if (r.exitCode === null && r.signalCode === null) r.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    await redis?.stop();
  });

  async function start(name: string): Promise<{ proc: ChildProcess; leader: () => Promise<number | null> }> {
    const lab = sharedLab();
    const port = await freePort();
    const config = labKeizokudConfig(lab, {
      redisUrl: redis.url,
      metricsPort: port,
      apiPort: await freePort(),
      extra: { leader: { leaseMs: 2_000, renewMs: 500 } },
    });
    writeFileSync(join(dir, `${name}.yaml`), JSON.stringify(config));
    const proc = spawn('node', ['bin/keizokud.mjs', '--config', join(dir, `${name}.yaml`)], {
      stdio: 'ignore',
    });
    recordChild(proc.pid, 'keizokud');
    replicas.push(proc);
    const leader = async () => {
      const t = await fetch(`http://127.0.0.1:${port}/metrics`).then(
        (r) => r.text(),
        () => null,
      );
      const m = t?.match(/^keizoku_leader (\d+)$/m);
      return m ? Number(m[1]) : null;
    };
    return { proc, leader };
  }

  it('the other replica takes the lease within lease + renew after kill -9 of the leader', async () => {
    const first = await start('r1');
    for (let i = 0; i < 100 && (await first.leader()) !== 1; i++) await sleep(100);
    expect(await first.leader()).toBe(1);
    const second = await start('r2');
    for (let i = 0; i < 100 && (await second.leader()) === null; i++) await sleep(100);
    await sleep(1_000);
    expect(await second.leader()).toBe(0);
    // One renewal step of the second replica as this test sees it (timer, then a scrape).
    const lagMs = await measureLagMs(100, () => second.leader());
    const killedAt = Date.now();
    first.proc.kill('SIGKILL');
    while ((await second.leader()) !== 1 && Date.now() - killedAt < 10_000) await sleep(50);
    const takeoverMs = Date.now() - killedAt;
    console.log(`takeover after kill -9: ${takeoverMs} ms (lease 2000 ms, renew 500 ms, lag ${lagMs} ms)`);
    expect(await second.leader()).toBe(1);
    // Not while the killed leader's lease was still valid, and at the next attempt after it
    // lapsed: lease + renew + the lag of this run (the scrape loop polls every 50 ms).
    expect(takeoverMs).toBeGreaterThan(2_000 - 500 - lagMs);
    expect(takeoverMs, `lag ${lagMs} ms`).toBeLessThan(2_000 + 500 + 50 + 4 * lagMs + 100);
  });
});
