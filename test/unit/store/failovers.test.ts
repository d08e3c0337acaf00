import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailoverStore } from '../../../src/store/failovers.ts';
import { startRedis } from '../../support/redis.ts';
import { failoverFixture } from '../api/failover-fixture.ts';

/** Failover records on a real redis-server: replaced in place, listed newest first, bounded. */

let server: Awaited<ReturnType<typeof startRedis>>;
let redis: Redis;
beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

const rec = (host: string, at: number) => ({
  ...failoverFixture(),
  id: `fo-${host}-${at}`,
  host,
  detectedAt: at,
});

describe('FailoverStore', () => {
  it('replaces a record in place, lists newest first (one host only on request) and keeps the newest max', async () => {
    const s = new FailoverStore(redis, 'kz-fo:', { max: 3 });
    await s.put([rec('h1', 1), rec('h2', 2)]);
    await s.put([{ ...rec('h1', 1), status: 'open' }]);
    expect((await s.get('fo-h1-1'))?.status).toBe('open');
    await s.put([rec('h1', 3), rec('h2', 4)]);
    expect((await s.list()).map((r) => r.id)).toEqual(['fo-h2-4', 'fo-h1-3', 'fo-h2-2']);
    expect(await s.get('fo-h1-1')).toBeNull();
    expect((await s.list({ host: 'h1' })).map((r) => r.id)).toEqual(['fo-h1-3']);
    expect((await s.list({ limit: 1 })).map((r) => r.id)).toEqual(['fo-h2-4']);
    expect(await s.get('fo-h9-9')).toBeNull();
  });
});
