import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { api, bearer } from './fakes.ts';

function startRoute(app: FastifyInstance) {
  app.post('/v1/vms/:name/start', { config: { action: 'vm.start', vmParam: 'name' } }, async (_req, reply) =>
    reply.status(202).send({ started: true }),
  );
}

const post = (app: FastifyInstance, token: string, remoteAddress = '192.0.2.7') =>
  app.inject({ method: 'POST', url: '/v1/vms/vm1/start', headers: bearer(token), remoteAddress });

describe('rate limit before and after authentication (F6)', () => {
  it('F6: requests with bad tokens are limited by client address, 429 after the limit, each audited once', async () => {
    const { app, audit } = await api({ rateLimitPerMinute: 5 });
    startRoute(app);
    const statuses: number[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      // A new made-up token each time: the budget is the address's, not the header's.
      const r = await post(app, `kz_${String(i).padStart(12, '0')}_${'A'.repeat(43)}`);
      statuses.push(r.statusCode);
      ids.push(String(r.headers['x-request-id']));
    }
    expect(statuses).toEqual([...Array(5).fill(401), ...Array(7).fill(429)]);
    expect(audit.written.map((e) => e.requestId)).toEqual(ids);
    expect(new Set(audit.written.map((e) => e.outcome))).toEqual(new Set(['denied']));
    expect(audit.written.at(-1)).toMatchObject({ status: 429, actor: 'anonymous' });
    // Another address has its own budget.
    expect((await post(app, 'nope', '192.0.2.8')).statusCode).toBe(401);
  });

  it('F6: requests a role may not make count against the address too', async () => {
    const { app, audit } = await api({ rateLimitPerMinute: 5 });
    startRoute(app);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await post(app, 'viewer')).statusCode);
    expect(statuses).toEqual([...Array(5).fill(403), ...Array(3).fill(429)]);
    expect(audit.written.map((e) => e.outcome)).toEqual(Array(8).fill('denied'));
  });

  it('F6: a flood of bad tokens from an address leaves a valid token from it and the open routes alone', async () => {
    const { app } = await api({ rateLimitPerMinute: 5 });
    startRoute(app);
    for (let i = 0; i < 10; i++) await post(app, 'bad');
    expect((await post(app, 'bad')).statusCode).toBe(429);
    // Nor the open routes' own budget (readiness checks from a load balancer's address).
    const health = await app.inject({ method: 'GET', url: '/healthz', remoteAddress: '192.0.2.7' });
    expect(health.statusCode).toBe(200);
    const own: number[] = [];
    for (let i = 0; i < 7; i++) own.push((await post(app, 'operator')).statusCode);
    expect(own).toEqual([...Array(5).fill(202), 429, 429]);
    const limited = await post(app, 'operator');
    expect(limited.json().error).toEqual({
      code: 'rate_limited',
      message: expect.stringMatching(/^more than 5 requests a minute; retry in \d+ s$/),
    });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });
});
