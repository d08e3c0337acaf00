import { describe, expect, it } from 'vitest';
import { metricsRoute } from '../../../src/api/routes/metrics.ts';
import { api, bearer } from './fakes.ts';

describe('/metrics on the API listener (F7)', () => {
  it('F7: /metrics on the API listener needs a token whose role may read metrics', async () => {
    const { app } = await api();
    metricsRoute(app, async () => 'keizoku_vm_memory_bytes{vm="tax-01"} 1\n', 'text/plain; version=0.0.4');
    const get = (headers: Record<string, string> = {}) =>
      app.inject({ method: 'GET', url: '/metrics', headers });
    const anonymous = await get();
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.body).not.toContain('tax-01');
    const status: Record<string, number> = {};
    for (const who of ['admin', 'operator', 'viewer', 'owner', 'probe'])
      status[who] = (await get(bearer(who))).statusCode;
    expect(status).toEqual({ admin: 200, operator: 200, viewer: 200, owner: 403, probe: 403 });
    expect((await get(bearer('viewer'))).body).toContain('keizoku_vm_memory_bytes');
  });
});
