import type { FastifyInstance } from 'fastify';
import type { DrsMode } from '../../config/index.ts';
import type { MoveScore } from '../../core/drs/index.ts';
import { JobConflict, SubmitRefused } from '../../jobs/queue.ts';
import type { DrsLoop, DrsRecommendation } from '../../loops/drs.ts';
import { ApiError } from '../errors.ts';
import { jobSchema } from '../job-schemas.ts';
import { errorResponses, NAME_PATTERN } from '../schemas.ts';
import { candidateSchema } from './decisions.ts';

/** DRS on the API: the manual-mode recommendations, applying one, and why a VM stays or moves. */

export interface DrsDeps {
  drs: Pick<DrsLoop, 'recommendations' | 'recommendation' | 'apply' | 'explain' | 'lastPlan'>;
  mode: DrsMode;
  aggressiveness: number;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

const MOVE_FIELDS = [
  'contentionRemovedVcpus',
  'imbalanceRemovedVcpus',
  'costVcpus',
  'gainVcpus',
  'thresholdVcpus',
  'copySeconds',
  'expectedDowntimeMs',
  'placementScore',
] as const;

const moveScoreSchema = {
  type: 'object',
  description: 'A candidate move as the planner judged it (vCPUs, so that benefit and cost compare)',
  required: ['vm', 'from', 'to', 'reversal', ...MOVE_FIELDS],
  properties: {
    vm: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    reversal: { type: 'boolean', description: 'it would move the VM back to a host it left recently' },
    ...Object.fromEntries(MOVE_FIELDS.map((f) => [f, { type: 'number' }])),
  },
} as const;

const moveView = (s: MoveScore) => ({
  vm: s.vm,
  from: s.from,
  to: s.to,
  reversal: s.reversal,
  ...Object.fromEntries(MOVE_FIELDS.map((f) => [f, round3(s[f])])),
});

const recommendationSchema = {
  type: 'object',
  required: ['id', 'vm', 'from', 'to', 'reason', 'createdAt', 'plannedAt', 'score'],
  properties: {
    id: { type: 'string' },
    vm: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    reason: { type: 'string' },
    createdAt: { type: 'number', description: 'first planned (ms since the epoch)' },
    plannedAt: { type: 'number', description: 'last planned' },
    score: moveScoreSchema,
  },
} as const;

const recommendationView = (r: DrsRecommendation) => ({
  id: r.id,
  vm: r.vm,
  from: r.from,
  to: r.to,
  reason: r.reason,
  createdAt: r.createdAt,
  plannedAt: r.plannedAt,
  score: moveView(r.score),
});

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^rec-[0-9a-f-]{36}$' } },
} as const;

const vmParam = {
  type: 'object',
  required: ['vm'],
  properties: { vm: { type: 'string', pattern: NAME_PATTERN } },
} as const;

export function drsRoutes(app: FastifyInstance, d: DrsDeps): void {
  app.get(
    '/v1/drs/recommendations',
    {
      config: { action: 'recommendation.read' },
      schema: {
        tags: ['drs'],
        operationId: 'listDrsRecommendations',
        summary: 'The moves DRS recommends for VMs in manual mode, with the state of its last plan',
        response: {
          200: {
            description: 'The recommendations (empty on a replica that is not the leader)',
            type: 'object',
            required: [
              'mode',
              'aggressiveness',
              'plannedAt',
              'imbalance',
              'contentionVcpus',
              'recommendations',
            ],
            properties: {
              mode: { type: 'string', enum: ['off', 'manual', 'automatic'] },
              aggressiveness: { type: 'integer' },
              plannedAt: { type: ['number', 'null'], description: 'the last plan (null: none yet)' },
              imbalance: { type: ['number', 'null'], description: "std dev of the hosts' utilisation" },
              contentionVcpus: { type: ['number', 'null'], description: "demand above the hosts' CPUs" },
              recommendations: { type: 'array', items: recommendationSchema },
            },
          },
          ...errorResponses,
        },
      },
    },
    async () => {
      const plan = d.drs.lastPlan;
      return {
        mode: d.mode,
        aggressiveness: d.aggressiveness,
        plannedAt: plan?.decision.at ?? null,
        imbalance: plan ? round3(plan.imbalanceBefore) : null,
        contentionVcpus: plan ? round3(plan.contentionBeforeVcpus) : null,
        recommendations: d.drs.recommendations().map(recommendationView),
      };
    },
  );

  app.post(
    '/v1/drs/recommendations/:id/apply',
    {
      config: { action: 'recommendation.apply' },
      schema: {
        tags: ['drs'],
        operationId: 'applyDrsRecommendation',
        summary: "Run a recommended move now, as the caller's decision (planner drs); 202 with the job",
        params: idParam,
        response: {
          202: { ...jobSchema, description: 'The migration job, queued' },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const rec = d.drs.recommendation(id);
      if (!rec)
        throw new ApiError(404, 'not_found', `no recommendation "${id}" (a later plan may have dropped it)`);
      req.auditTarget = rec.vm;
      try {
        const submitted = await d.drs.apply(id, { id: req.principal!.id, name: req.principal!.name });
        if (!submitted) throw new ApiError(404, 'not_found', `no recommendation "${id}"`);
        return reply.status(202).send(submitted.jobs[0]);
      } catch (e) {
        if (e instanceof JobConflict || e instanceof SubmitRefused)
          throw new ApiError(409, 'conflict', e.message);
        throw e;
      }
    },
  );

  app.get(
    '/v1/drs/explain/:vm',
    {
      config: { action: 'recommendation.read', vmParam: 'vm' },
      schema: {
        tags: ['drs'],
        operationId: 'explainDrs',
        summary:
          "Why DRS moves a VM or leaves it: its demand, the best move's score, and every host's verdict",
        params: vmParam,
        response: {
          200: {
            description: 'The planner on the VM now',
            type: 'object',
            required: ['vm', 'host', 'mode', 'explanation', 'hosts'],
            properties: {
              vm: { type: 'string' },
              host: { type: 'string' },
              mode: {
                type: 'string',
                enum: ['off', 'manual', 'automatic'],
                description: 'off also when its tier lacks drs',
              },
              explanation: {
                type: ['object', 'null'],
                description: 'null: its host is under target, so DRS did not look at it',
                required: ['verdict', 'reasons', 'contentionVcpus', 'demand', 'best'],
                properties: {
                  verdict: { type: 'string', enum: ['moved', 'cap-raised', 'stays', 'not-eligible'] },
                  reasons: { type: 'array', items: { type: 'string' } },
                  contentionVcpus: { type: 'number' },
                  demand: {
                    type: 'object',
                    required: ['vcpus', 'short', 'long', 'planned', 'burst'],
                    properties: {
                      vcpus: { type: 'number' },
                      short: { type: 'number', description: 'mean over the short window, vCPUs' },
                      long: { type: 'number', description: 'mean over the long window' },
                      planned: { type: 'number', description: 'what the planner counts' },
                      burst: { type: 'boolean' },
                    },
                  },
                  best: { ...moveScoreSchema, type: ['object', 'null'] },
                },
              },
              hosts: {
                type: 'array',
                description: 'Every other host with the filters that rejected it, or its drs-profile scores',
                items: candidateSchema,
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const { vm } = req.params as { vm: string };
      const e = d.drs.explain(vm, Date.now());
      if (!e) throw new ApiError(404, 'not_found', `no VM named "${vm}"`);
      const x = e.explanation;
      return {
        vm: e.vm,
        host: e.host,
        mode: e.mode,
        explanation: x
          ? {
              verdict: x.verdict,
              reasons: x.reasons,
              contentionVcpus: round3(x.contentionVcpus),
              demand: {
                vcpus: x.demand.vcpus,
                short: round3(x.demand.short),
                long: round3(x.demand.long),
                planned: round3(x.demand.planned),
                burst: x.demand.burst,
              },
              best: x.best ? moveView(x.best) : null,
            }
          : null,
        hosts: e.hosts.filter((h) => h.host !== e.host),
      };
    },
  );
}
