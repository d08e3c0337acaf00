import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ApiDeps, TokenStore } from '../../../src/api/index.ts';
import { buildApi } from '../../../src/api/index.ts';
import type { ApiConfig } from '../../../src/config/index.ts';

const TOKEN = 'kz_0123456789abcdef0123456789abcdef0123456789abcdef';

async function apiLoggingTo(lines: string[]): Promise<FastifyInstance> {
  const log = pino({ base: { service: 'keizokud' } }, { write: (s: string) => lines.push(s) });
  const tokens = {
    verify: async (t: string) =>
      t === TOKEN ? { id: 't1', name: 'ops', role: 'admin', vms: [], allowMigrate: false } : null,
  } as unknown as TokenStore;
  const deps = { audit: { record: async () => undefined } } as unknown as ApiDeps;
  const config = { bodyLimitBytes: 65_536, rateLimitPerMinute: 1_000 } as ApiConfig;
  return buildApi(
    config,
    tokens,
    deps,
    [
      (app) =>
        app.get('/v1/boom', { config: { action: 'host.read' } }, async () => {
          throw new Error('redis said no');
        }),
    ],
    log,
  );
}

describe('API logging', () => {
  it("F22: a 5xx is logged with its error in the daemon's log, and no header or token is", async () => {
    const lines: string[] = [];
    const app = await apiLoggingTo(lines);
    const r = await app.inject({
      method: 'GET',
      url: '/v1/boom',
      headers: { authorization: `Bearer ${TOKEN}`, cookie: 'session=s3cret' },
    });
    await app.close();
    expect(r.statusCode).toBe(500);
    const logged = lines.join('');
    const failed = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'request failed');
    expect(failed).toMatchObject({ level: 50, service: 'keizokud', err: 'redis said no' });
    expect(logged).not.toContain(TOKEN);
    expect(logged).not.toContain('s3cret');
    expect(logged.toLowerCase()).not.toContain('authorization');
  });
});
