import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatExplanation, formatRecommendations } from '../../../src/cli/commands/drs.ts';
import { bearer } from '../api/fakes.ts';
import { fullApi, REC_ID } from '../api/full-api.ts';

// The CLI's text for what the routes answer (the real DRS reconciler in manual mode behind them).

let app: FastifyInstance;
beforeAll(async () => {
  app = await fullApi();
});
afterAll(() => app.close());
const get = async (url: string) =>
  (await app.inject({ method: 'GET', url, headers: bearer('admin') })).json();

describe('keizoku drs output', () => {
  it('recommendations: mode, the last plan, and one row per move with gain, threshold and reason', async () => {
    const lines = formatRecommendations(await get('/v1/drs/recommendations')).split('\n');
    expect(lines[0]).toMatch(
      /^mode manual, aggressiveness 5; last plan 1970-01-01T00:00:00\.001Z, imbalance 0\.5/,
    );
    expect(lines[1]).toMatch(/^ID\s+VM\s+FROM\s+TO\s+GAIN\s+NEEDS\s+WHY$/);
    expect(lines[2]).toMatch(
      new RegExp(`^${REC_ID}\\s+vm1\\s+h1\\s+h2\\s+1\\.13\\s+0\\.10\\s+rebalance: h1 at 100 %`),
    );
  });

  it('explain: demand, verdict with its reason, the best move, and every other host', async () => {
    const text = formatExplanation(await get('/v1/drs/explain/vm1'));
    expect(text).toContain('vm1 on h1, DRS mode manual');
    expect(text).toContain('  demand: 1 of 1 vCPUs (short 1, long 1); contention 0');
    expect(text).toContain('  verdict: moved');
    expect(text).toMatch(
      /best move: -> h2, gain 1\.134 \(contention 0\.2 \+ imbalance 0\.984 - cost 0\.05\), needs 0\.1/,
    );
    expect(text).toMatch(/ {4}h2\s+feasible\s+0\.92\s+cpuIdleMeasured 0\.90/);
  });
});
