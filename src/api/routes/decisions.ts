import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { DecisionRecord } from '../../core/plan.ts';
import type { DecisionStore } from '../../store/decisions.ts';
import { decisionView, type JobFacts } from '../decision-view.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, nameParam, requesterSchema } from '../schemas.ts';

/** "Why did this VM move, and why there": stored decisions, joined with their jobs at read time. */

export interface DecisionDeps {
  decisions: Pick<DecisionStore, 'get' | 'forVm'>;
  /** The job system's lookup by id (null: no longer kept). */
  jobs: { get(id: string): Promise<JobFacts | null> };
}

const nullable = (type: string) => ({ type: [type, 'null'] }) as const;

const verdictSchema = {
  type: 'object',
  properties: {
    plugin: { type: 'string' },
    code: { type: 'string' },
    reason: { type: 'string' },
    redacted: { type: 'boolean' },
  },
} as const;

export const candidateSchema = {
  type: 'object',
  properties: {
    host: { type: 'string' },
    feasible: { type: 'boolean' },
    rejectedBy: { type: 'array', items: verdictSchema },
    scores: { type: 'object', additionalProperties: { type: 'number' } },
    score: { type: 'number' },
  },
} as const;

/** Every action kind's fields in one object (`kind` says which are present). */
const actionSchema = {
  type: 'object',
  properties: {
    kind: { type: 'string' },
    vm: { type: 'string' },
    host: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    copyStorage: { type: ['boolean', 'string'] },
    policy: { type: 'object', additionalProperties: true },
    quotaPercent: { type: 'number', description: 'raise-cpu-cap: the raised cap per vCPU, % of one CPU' },
    periodUs: { type: 'integer', description: 'raise-cpu-cap: the scheduler period' },
    holdMs: { type: 'integer', description: 'raise-cpu-cap: how long the raise holds unless renewed' },
  },
} as const;

export const decisionSchema = {
  type: 'object',
  required: [
    'id',
    'planner',
    'at',
    'reason',
    'ref',
    'requestedBy',
    'vms',
    'candidates',
    'actions',
    'ok',
    'refused',
    'jobs',
    'partial',
  ],
  properties: {
    id: { type: 'string' },
    planner: { type: 'string' },
    at: { type: 'number' },
    reason: { type: 'string' },
    ref: { type: 'string' },
    requestedBy: requesterSchema,
    vms: { type: 'array', items: { type: 'string' } },
    candidates: { type: 'object', additionalProperties: { type: 'array', items: candidateSchema } },
    actions: { type: 'array', items: actionSchema },
    ok: { type: 'boolean' },
    refused: {
      type: 'array',
      items: {
        type: 'object',
        properties: { vm: { type: 'string' }, reasons: { type: 'array', items: { type: 'string' } } },
      },
    },
    jobs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'vm', 'kind', 'state', 'outcome', 'reason', 'finishedAt', 'outageMs'],
        properties: {
          id: { type: 'string' },
          vm: nullable('string'),
          kind: { type: 'string' },
          state: { type: 'string' },
          outcome: nullable('string'),
          reason: nullable('string'),
          finishedAt: nullable('number'),
          outageMs: nullable('number'),
        },
      },
    },
    partial: { type: 'boolean' },
  },
} as const;

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^dec-[0-9a-f-]{36}$' } },
} as const;

async function view(req: FastifyRequest, d: ApiDeps, x: DecisionDeps, rec: DecisionRecord) {
  const jobs = new Map<string, JobFacts | null>();
  await Promise.all(
    rec.jobs.map(async (j) => {
      jobs.set(j.id, await x.jobs.get(j.id).catch(() => null));
    }),
  );
  return decisionView(rec, req.principal!, d.snapshot().vms.keys(), jobs);
}

export function decisionRoutes(app: FastifyInstance, d: ApiDeps, x: DecisionDeps): void {
  app.get(
    '/v1/decisions/:id',
    {
      config: { action: 'decision.read' },
      schema: {
        tags: ['decisions'],
        operationId: 'getDecision',
        summary: 'One decision: why, every host considered, its actions and their jobs',
        params: idParam,
        response: {
          200: { description: 'The decision as the principal may see it', ...decisionSchema },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string };
      const rec = await x.decisions.get(id);
      // A vm-admin with none of its VMs in the decision gets what a missing one gives.
      const v = rec ? await view(req, d, x, rec) : null;
      if (!v) throw new ApiError(404, 'not_found', `no decision "${id}"`);
      return v;
    },
  );

  app.get(
    '/v1/vms/:name/decisions',
    {
      config: { action: 'decision.read', vmParam: 'name' },
      schema: {
        tags: ['decisions', 'vms'],
        operationId: 'listVmDecisions',
        summary: 'The last decisions that touched the VM, newest first',
        params: nameParam,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'integer', minimum: 1, maximum: 50, default: 10 } },
        },
        response: {
          200: {
            description: 'The decisions, newest first',
            type: 'object',
            required: ['vm', 'decisions'],
            properties: { vm: { type: 'string' }, decisions: { type: 'array', items: decisionSchema } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const { name } = req.params as { name: string };
      const { limit } = req.query as { limit: number };
      const recs = await x.decisions.forVm(name, limit);
      const views = await Promise.all(recs.map((r) => view(req, d, x, r)));
      return { vm: name, decisions: views.filter((v) => v !== null) };
    },
  );
}
