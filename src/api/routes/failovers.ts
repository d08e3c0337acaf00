import type { FastifyInstance } from 'fastify';
import type { FailoverRecord } from '../../core/ha/timeline.ts';
import type { FailoverStore } from '../../store/failovers.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, NAME_PATTERN } from '../schemas.ts';

/**
 * The failover records on the API (core/ha/timeline.ts): one per host failure, written by the
 * leader's ha loop as the failover goes on; the list gives each one's outcome, one record its
 * whole timeline with every VM's placement, restart job, first probe reply and RTO.
 */

export interface FailoverDeps {
  store: Pick<FailoverStore, 'list' | 'get'>;
}

const num = { type: 'number' } as const;
const nullableNum = { type: ['number', 'null'] } as const;
const nullableStr = { type: ['string', 'null'] } as const;
const str = { type: 'string' } as const;
const STATUS = { type: 'string', enum: ['open', 'done', 'incomplete'] } as const;
const BASIS = {
  type: 'string',
  enum: ['last-seen-up', 'first-failed-evidence'],
  description:
    "what the RTO counts from: the host's last successful read or ICMP reply, or (never seen up) the first time it was seen not up",
} as const;

/** An object with exactly these properties, all required. */
function closed<P extends Record<string, object>>(properties: P) {
  return {
    type: 'object',
    additionalProperties: false,
    required: Object.keys(properties) as (keyof P & string)[],
    properties,
  } as const;
}

const vmSchema = closed({
  vm: str,
  tier: nullableStr,
  priority: { type: ['integer', 'null'], description: 'HA priority (higher restarts first)' },
  from: str,
  status: {
    type: 'string',
    enum: ['waiting', 'restarting', 'running', 'answering', 'not-answering', 'skipped'],
    description: 'skipped: not restarted by this failover (already running elsewhere, or restarted in place)',
  },
  to: { ...nullableStr, description: 'the host it was (last) placed on' },
  placedAt: nullableNum,
  decision: { ...nullableStr, description: 'the failover decision (GET /v1/decisions/{id})' },
  reason: nullableStr,
  job: { ...nullableStr, description: 'the restart job (GET /v1/jobs/{id})' },
  submittedAt: nullableNum,
  startedAt: { ...nullableNum, description: 'the restart job began' },
  endedAt: { ...nullableNum, description: 'the restart job ended' },
  runningAt: { ...nullableNum, description: 'libvirt reported it running on `to`' },
  failed: {
    type: 'array',
    description: 'earlier placements whose restart failed',
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['to', 'job', 'error'],
      properties: { to: str, job: nullableStr, error: str },
    },
  },
  answeringAt: { ...nullableNum, description: "the probe's first reply after the restart" },
  rtoMs: { ...nullableNum, description: 'answeringAt - failureAt' },
  probe: {
    type: ['object', 'null'],
    additionalProperties: false,
    description: 'the outage the probe saw (通信断): first lost probe to first reply',
    required: ['probe', 'outageStartMs', 'outageEndMs', 'outageMs', 'lost'],
    properties: {
      probe: str,
      outageStartMs: num,
      outageEndMs: num,
      outageMs: num,
      lost: { type: 'integer' },
    },
  },
  note: nullableStr,
});

const recordSchema = closed({
  id: str,
  host: str,
  status: STATUS,
  failureAt: { ...num, description: 'the failure the RTO counts from (failureBasis says which)' },
  failureBasis: BASIS,
  lastSeenUpAt: nullableNum,
  detectedAt: { ...num, description: 'the failover first saw the host not up' },
  declaredDownAt: {
    ...nullableNum,
    description: 'null: fenced without a declaration (an operator or a drill)',
  },
  declaredEvidence: nullableStr,
  fence: {
    type: 'object',
    additionalProperties: false,
    required: ['method', 'attempts', 'startedAt', 'confirmedAt', 'evidence', 'ref', 'errors'],
    properties: {
      method: str,
      attempts: { type: 'integer', description: 'fences the failover ran (0: recorded by someone else)' },
      startedAt: nullableNum,
      confirmedAt: { ...nullableNum, description: 'power confirmed off' },
      evidence: nullableStr,
      ref: {
        ...nullableStr,
        description: 'who recorded the fence when it was not the failover (drill:ID, operator)',
      },
      errors: { type: 'array', items: str },
    },
  },
  recoveringAt: nullableNum,
  recoveredAt: { ...nullableNum, description: 'every VM placed and running' },
  endedAt: nullableNum,
  reason: nullableStr,
  vms: { type: 'array', items: vmSchema },
  events: {
    type: 'array',
    description: 'the timeline, oldest first',
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['at', 'kind', 'text'],
      properties: { at: num, kind: str, vm: str, text: str },
    },
  },
});

const summarySchema = closed({
  id: str,
  host: str,
  status: STATUS,
  failureAt: num,
  detectedAt: num,
  fencedAt: nullableNum,
  endedAt: nullableNum,
  vms: { type: 'integer', description: 'HA VMs the failover had to restart' },
  answering: { type: 'integer', description: 'of which the probe saw answer again' },
  rtoMaxMs: { ...nullableNum, description: 'the longest RTO of those' },
  reason: nullableStr,
});

export function failoverSummary(r: FailoverRecord) {
  const rtos = r.vms.flatMap((v) => (v.rtoMs === null ? [] : [v.rtoMs]));
  return {
    id: r.id,
    host: r.host,
    status: r.status,
    failureAt: r.failureAt,
    detectedAt: r.detectedAt,
    fencedAt: r.fence.confirmedAt,
    endedAt: r.endedAt,
    vms: r.vms.filter((v) => v.status !== 'skipped').length,
    answering: r.vms.filter((v) => v.status === 'answering').length,
    rtoMaxMs: rtos.length > 0 ? Math.max(...rtos) : null,
    reason: r.reason,
  };
}

export function failoverRoutes(app: FastifyInstance, f: FailoverDeps): void {
  app.get(
    '/v1/ha/failovers',
    {
      config: { action: 'ha.read' },
      schema: {
        tags: ['ha'],
        operationId: 'listFailovers',
        summary: 'Failover records, newest first: one per host failure, with its outcome and longest RTO',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
            host: { type: 'string', pattern: NAME_PATTERN, description: 'only this host' },
          },
        },
        response: {
          200: {
            description: 'The newest records (the store keeps 500)',
            type: 'object',
            required: ['failovers'],
            properties: { failovers: { type: 'array', items: summarySchema } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const q = req.query as { limit: number; host?: string };
      const list = await f.store.list({ limit: q.limit, ...(q.host ? { host: q.host } : {}) });
      return { failovers: list.map(failoverSummary) };
    },
  );

  app.get(
    '/v1/ha/failovers/:id',
    {
      config: { action: 'ha.read' },
      schema: {
        tags: ['ha'],
        operationId: 'getFailover',
        summary:
          'One failover: detected, declared down, fenced, and per VM placed, started, answering, with its RTO and the probe outage',
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', pattern: '^fo-[A-Za-z0-9._-]{1,64}-[0-9]{1,16}$' } },
        },
        response: { 200: { ...recordSchema, description: 'The failover record' }, ...errorResponses },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string };
      const r = await f.store.get(id);
      if (!r) throw new ApiError(404, 'not_found', `no failover "${id}"`);
      return r;
    },
  );
}
