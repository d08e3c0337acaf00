import type { FastifyInstance } from 'fastify';
import { renderHtml, renderJson, renderMarkdown } from '../../drills/report/index.ts';
import { DrillError, type DrillSystem, RUNNABLE_SCENARIOS } from '../../drills/runner.ts';
import { decide } from '../auth/rbac.ts';
import { ApiError, DeniedError } from '../errors.ts';
import { errorResponses, NAME_PATTERN } from '../schemas.ts';

/** A drill's report (docs/drills.md); its parts are described there, not here. */
const reportSchema = {
  type: 'object',
  required: ['id', 'scenario', 'startedAt', 'endedAt', 'vms', 'tier', 'moves', 'summary'],
  properties: {
    format: { type: 'string', description: 'the report format version (?format=json only)' },
    id: { type: 'string' },
    scenario: { type: 'string' },
    startedAt: { type: 'number' },
    endedAt: { type: 'number' },
    vms: { type: 'array', items: { type: 'string' } },
    tier: { type: 'object', additionalProperties: true },
    parameters: { type: 'object', additionalProperties: true },
    moves: { type: 'array', items: { type: 'object', additionalProperties: true } },
    rtt: { type: 'array', items: { type: 'object', additionalProperties: true } },
    outages: { type: 'array', items: { type: 'object', additionalProperties: true } },
    failover: { type: ['object', 'null'], additionalProperties: true },
    summary: { type: 'object', additionalProperties: true },
  },
} as const;

const drillProperties = {
  id: { type: 'string' },
  scenario: { type: 'string' },
  vm: { type: 'string' },
  count: { type: 'integer' },
  status: { type: 'string', enum: ['queued', 'running', 'passed', 'failed', 'error'] },
  createdAt: { type: 'number' },
  requestedBy: { type: 'string' },
  movesDone: { type: 'integer' },
  error: { type: ['string', 'null'] },
} as const;
const drillRequired = [
  'id',
  'scenario',
  'vm',
  'count',
  'status',
  'createdAt',
  'requestedBy',
  'movesDone',
  'error',
];

const drillSchema = {
  type: 'object',
  required: [...drillRequired, 'report'],
  properties: { ...drillProperties, report: { ...reportSchema, type: ['object', 'null'] } },
} as const;

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^drill-[0-9a-f-]{36}$' } },
} as const;

export function drillRoutes(app: FastifyInstance, drills: DrillSystem, timeZone: string): void {
  app.post(
    '/v1/drills',
    {
      config: { action: 'drill.run' },
      schema: {
        tags: ['drills'],
        operationId: 'runDrill',
        summary:
          'Run a drill (202 with its record); each move is measured by the probes and judged against the tier',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['scenario', 'vm'],
          properties: {
            scenario: { type: 'string', enum: [...RUNNABLE_SCENARIOS] },
            vm: { type: 'string', pattern: NAME_PATTERN },
            count: { type: 'integer', minimum: 1, maximum: 1000, description: 'default 10; host-failure: 1' },
            to: { type: 'string', pattern: NAME_PATTERN },
            pauseMs: { type: 'integer', minimum: 0, maximum: 600_000, default: 1000 },
          },
        },
        response: { 202: { description: 'The drill, queued', ...drillSchema }, ...errorResponses },
      },
    },
    async (req, reply) => {
      const body = req.body as {
        scenario: (typeof RUNNABLE_SCENARIOS)[number];
        vm: string;
        count?: number;
        to?: string;
        pauseMs: number;
      };
      const b = { ...body, count: body.count ?? (body.scenario === 'host-failure' ? 1 : 10) };
      req.auditTarget = b.vm;
      if (decide(req.principal!, 'vm.migrate', b.vm) !== 'allow')
        throw new DeniedError(404, 'not_found', `no VM named "${b.vm}"`);
      try {
        const p = req.principal!;
        return reply
          .status(202)
          .send(await drills.enqueue({ ...b, requestedBy: { id: p.id, name: p.name } }));
      } catch (e) {
        if (e instanceof DrillError) throw new ApiError(409, 'refused', e.message);
        throw e;
      }
    },
  );

  app.get(
    '/v1/drills',
    {
      config: { action: 'drill.read' },
      schema: {
        tags: ['drills'],
        operationId: 'listDrills',
        summary: 'Drill records, newest first (without their reports)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        },
        response: {
          200: {
            description: 'The drills',
            type: 'object',
            required: ['drills'],
            properties: {
              drills: {
                type: 'array',
                items: {
                  type: 'object',
                  required: drillRequired,
                  properties: {
                    ...drillProperties,
                    summary: {
                      type: ['object', 'null'],
                      additionalProperties: true,
                      description: "The report's overall verdict once the drill ended (null before)",
                    },
                  },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => ({ drills: await drills.list((req.query as { limit: number }).limit) }),
  );

  app.get(
    '/v1/drills/:id',
    {
      config: { action: 'drill.read' },
      schema: {
        tags: ['drills'],
        operationId: 'getDrill',
        summary: 'The drill and, once it ended, its report; ?format=md or html for the rendered report',
        params: idParam,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            format: { type: 'string', enum: ['record', 'json', 'md', 'html'], default: 'record' },
          },
        },
        response: {
          200: {
            description: 'format=record: the drill; json: its report; md, html: the rendered report',
            content: {
              'application/json': { schema: { anyOf: [drillSchema, reportSchema] } },
              'text/markdown': { schema: { type: 'string' } },
              'text/html': { schema: { type: 'string' } },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const { format } = req.query as { format: 'record' | 'json' | 'md' | 'html' };
      const d = await drills.get(id);
      if (!d) throw new ApiError(404, 'not_found', `no drill "${id}"`);
      if (format === 'record') return d;
      if (!d.report)
        throw new ApiError(
          409,
          'conflict',
          `drill ${id} is ${d.status}; it has no report${d.error ? `: ${d.error}` : ''}`,
        );
      if (format === 'json') return reply.type('application/json').send(renderJson(d.report));
      if (format === 'md')
        return reply.type('text/markdown; charset=utf-8').send(renderMarkdown(d.report, { timeZone }));
      return reply.type('text/html; charset=utf-8').send(renderHtml(d.report, { timeZone }));
    },
  );
}
