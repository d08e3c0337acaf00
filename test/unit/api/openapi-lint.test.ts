import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lintDocument, operationsOf } from '../../support/openapi.ts';
import { fullApi } from './full-api.ts';

/** The published document (GET /v1/openapi.json of every route group) as a client relies on it. */

let app: FastifyInstance;
// biome-ignore lint/suspicious/noExplicitAny: JSON
let doc: any;
beforeAll(async () => {
  app = await fullApi();
  const r = await app.inject({ method: 'GET', url: '/v1/openapi.json' });
  expect(r.statusCode).toBe(200);
  doc = r.json();
});
afterAll(() => app.close());

const REDOCLY = join(import.meta.dirname, '../../../node_modules/.bin/redocly');

describe('the OpenAPI document', () => {
  it('gives every operation an operationId, a summary, a success response with a schema and its error responses; it has servers and every $ref resolves', () => {
    expect(operationsOf(doc).length).toBeGreaterThanOrEqual(26);
    expect(lintDocument(doc)).toEqual([]);
  });

  it('documents the 202 job of POST /v1/vms/{name}/migrate and the 202 of start, shutdown and destroy', () => {
    const migrate = doc.paths['/v1/vms/{name}/migrate'].post.responses['202'];
    expect(migrate.content['application/json'].schema.required).toEqual(
      expect.arrayContaining(['id', 'kind', 'vm', 'state', 'decisionId', 'result']),
    );
    for (const a of ['start', 'shutdown', 'destroy'])
      expect(
        doc.paths[`/v1/vms/{name}/${a}`].post.responses['202'].content['application/json'].schema.required,
      ).toEqual(['vm', 'host', 'action', 'job', 'decision', 'state']);
  });

  it('the lint finds what is missing (an operation without id, summary or responses; a dangling $ref; no servers)', () => {
    const bad = {
      openapi: '3.0.3',
      info: { title: 't', version: '1' },
      paths: {
        '/v1/x/{id}': {
          get: { responses: { '200': { description: 'Default Response' } } },
          post: {
            operationId: 'a b',
            summary: 's',
            responses: { '4XX': { $ref: '#/components/responses/nope' } },
          },
        },
      },
    };
    expect(lintDocument(bad)).toEqual([
      'document: no servers',
      'info: no license',
      'GET /v1/x/{id}: no operationId',
      'GET /v1/x/{id}: no summary',
      'GET /v1/x/{id}: 200 has no description',
      'GET /v1/x/{id}: 200 has no schema',
      'GET /v1/x/{id}: no 4xx response',
      'GET /v1/x/{id}: no 5xx response',
      'GET /v1/x/{id}: path parameter id is not declared',
      'POST /v1/x/{id}: operationId "a b" is not URL-safe',
      'POST /v1/x/{id}: no success response',
      'POST /v1/x/{id}: no 5xx response',
      'POST /v1/x/{id}: path parameter id is not declared',
      '$ref #/components/responses/nope does not resolve',
    ]);
  });

  it('passes `redocly lint` with the recommended rules, warnings included', () => {
    const dir = mkdtempSync(join(tmpdir(), 'openapi-'));
    try {
      const file = join(dir, 'openapi.json');
      writeFileSync(file, JSON.stringify(doc));
      const r = spawnSync(REDOCLY, ['lint', '--extends', 'recommended', '--max-problems', '200', file], {
        encoding: 'utf8',
      });
      const out = `${r.stdout}${r.stderr}`;
      expect(out).not.toMatch(/\d+ (errors?|warnings?)/);
      expect(out).toMatch(/Your API description is valid/);
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
