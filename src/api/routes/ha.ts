import type { FastifyInstance } from 'fastify';
import { unprotectedOn, whatIf } from '../../core/ha/admission.ts';
import type { HaState } from '../../core/ha/machine.ts';
import type { FailoverPlacement } from '../../core/ha/restart-plan.ts';
import type { ClusterSnapshot } from '../../core/model.ts';
import type { HaPause, HaStore } from '../../store/ha.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, haPauseSchema, NAME_PATTERN, nameParam } from '../schemas.ts';

/**
 * Automatic failover on the API: its state (the pause, each host's phase, VMs in error), the
 * pause for planned network work (it expires by itself), and what a failure of given hosts
 * would restart where, planned now by the same planner the failover runs.
 */

export interface HaDeps {
  store: Pick<HaStore, 'loadState' | 'pause' | 'resume' | 'paused' | 'requestClear'>;
  /** The failover's own placement: haPriorityOf is null for a VM whose tier has no failover. */
  placement: FailoverPlacement;
  anySite?: boolean;
  toleratedHostFailures: number;
}

const nullablePause = { ...haPauseSchema, type: ['object', 'null'] } as const;

const stringList = { type: 'array', items: { type: 'string' } } as const;

const haHostSchema = {
  type: 'object',
  required: ['name', 'health', 'phase', 'since', 'fenceAttempt', 'pending', 'restarting'],
  properties: {
    name: { type: 'string' },
    health: { type: 'string', description: "the health model's judgement now" },
    phase: {
      type: ['string', 'null'],
      enum: ['ok', 'suspect', 'declared-down', 'fencing', 'fenced', 'recovering', 'done', null],
      description: 'null: the failover loop has not seen the host yet',
    },
    since: { type: ['number', 'null'] },
    fenceAttempt: { type: 'integer' },
    pending: { ...stringList, description: 'HA VMs still to place (refused ones wait here)' },
    restarting: {
      type: 'array',
      items: {
        type: 'object',
        required: ['vm', 'to'],
        properties: { vm: { type: 'string' }, to: { type: 'string' } },
      },
    },
  },
} as const;

const pauseOut = (p: HaPause) => ({ until: p.until, since: p.since, by: p.by, reason: p.reason });

function statusView(snap: ClusterSnapshot, state: HaState | null) {
  const names = [...new Set([...snap.hosts.keys(), ...Object.keys(state?.hosts ?? {})])].sort();
  return {
    hosts: names.map((name) => {
      const h = state?.hosts[name];
      return {
        name,
        health: snap.hosts.get(name)?.health ?? h?.health ?? 'unknown',
        phase: h?.phase ?? null,
        since: h?.since ?? null,
        fenceAttempt: h?.attempt ?? 0,
        pending: [...(h?.pending ?? [])].sort(),
        restarting: Object.entries(h?.inFlight ?? {})
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([vm, to]) => ({ vm, to })),
      };
    }),
    vmsInError: Object.entries(state?.vms ?? {})
      .filter(([, v]) => v.phase === 'error')
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([vm, v]) => ({ vm, host: v.host, restarts: v.restarts.length, relocated: v.relocated })),
  };
}

export function haRoutes(app: FastifyInstance, d: ApiDeps, ha: HaDeps): void {
  app.get(
    '/v1/ha',
    {
      config: { action: 'ha.read' },
      schema: {
        tags: ['ha'],
        operationId: 'getHaStatus',
        summary: "Automatic failover's state: the pause, each host's phase, VMs in error",
        response: {
          200: {
            description: 'The failover state the leader last saved, with the hosts seen now',
            type: 'object',
            required: ['pause', 'toleratedHostFailures', 'hosts', 'vmsInError'],
            properties: {
              pause: { ...nullablePause, description: 'null: failover is not paused' },
              toleratedHostFailures: {
                type: 'integer',
                description: 'host failures a start must leave survivable (0: not checked)',
              },
              hosts: { type: 'array', items: haHostSchema },
              vmsInError: {
                type: 'array',
                description: 'VMs past their restart limit and relocation: an operator must clear them',
                items: {
                  type: 'object',
                  required: ['vm', 'host', 'restarts', 'relocated'],
                  properties: {
                    vm: { type: 'string' },
                    host: { type: 'string' },
                    restarts: { type: 'integer', description: 'in-place restarts in the last hour' },
                    relocated: { type: 'boolean' },
                  },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async () => {
      const [record, pause] = await Promise.all([ha.store.loadState(), ha.store.paused()]);
      return {
        pause: pause ? pauseOut(pause) : null,
        toleratedHostFailures: ha.toleratedHostFailures,
        ...statusView(d.snapshot(), record?.machine ?? null),
      };
    },
  );

  app.post(
    '/v1/ha/pause',
    {
      config: { action: 'ha.pause' },
      schema: {
        tags: ['ha'],
        operationId: 'pauseHa',
        summary:
          'Pause automatic failover for planned network work: no host is declared down or fenced until it ends',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['forSeconds'],
          properties: {
            forSeconds: { type: 'integer', minimum: 1, maximum: 86_400, description: 'at most a day' },
            reason: { type: 'string', minLength: 1, maxLength: 500 },
          },
        },
        response: { 200: { ...haPauseSchema, description: 'The pause now in force' }, ...errorResponses },
      },
    },
    async (req) => {
      const { forSeconds, reason } = req.body as { forSeconds: number; reason?: string };
      req.auditTarget = 'ha';
      const now = Date.now();
      const pause: HaPause = {
        until: now + forSeconds * 1000,
        since: now,
        by: req.principal!.name,
        reason: reason ?? null,
      };
      await ha.store.pause(pause);
      return pauseOut(pause);
    },
  );

  app.delete(
    '/v1/ha/pause',
    {
      config: { action: 'ha.resume' },
      schema: {
        tags: ['ha'],
        operationId: 'resumeHa',
        summary: 'End the failover pause now',
        response: {
          200: {
            description: 'Failover runs again (resumed is false when nothing was paused)',
            type: 'object',
            required: ['resumed', 'pause'],
            properties: {
              resumed: { type: 'boolean' },
              pause: { ...nullablePause, description: 'the pause that was ended' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      req.auditTarget = 'ha';
      const was = await ha.store.paused();
      const resumed = await ha.store.resume();
      return { resumed: resumed && was !== null, pause: was ? pauseOut(was) : null };
    },
  );

  app.post(
    '/v1/ha/vms/:name/clear',
    {
      config: { action: 'ha.clear', vmParam: 'name' },
      schema: {
        tags: ['ha'],
        operationId: 'clearHaVm',
        summary:
          'Clear a VM from failover error (its restart limit spent): the leader restarts it where it is, with a fresh limit',
        params: nameParam,
        response: {
          202: {
            description: "Queued for the leader's next failover pass",
            type: 'object',
            required: ['vm', 'host', 'restarts'],
            properties: {
              vm: { type: 'string' },
              host: { type: 'string', description: 'where it died last' },
              restarts: {
                type: 'integer',
                description: 'restarts in the last hour before it was put in error',
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      req.auditTarget = name;
      const v = (await ha.store.loadState())?.machine.vms[name];
      if (v?.phase !== 'error')
        throw new ApiError(
          409,
          'not_in_error',
          `VM "${name}" is not in failover error${v ? ` (it is ${v.phase})` : ''}: nothing to clear`,
        );
      await ha.store.requestClear(name);
      reply.code(202);
      return { vm: name, host: v.host, restarts: v.restarts.length };
    },
  );

  app.post(
    '/v1/ha/whatif',
    {
      config: { action: 'ha.read' },
      schema: {
        tags: ['ha'],
        operationId: 'haWhatIf',
        summary:
          'The restarts a failure of the given hosts would run now, in order, and what would fit nowhere',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['fail'],
          properties: {
            fail: {
              type: 'array',
              minItems: 1,
              maxItems: 64,
              uniqueItems: true,
              items: { type: 'string', pattern: NAME_PATTERN },
            },
          },
        },
        response: {
          200: {
            description: 'The plan (nothing is done)',
            type: 'object',
            required: ['fail', 'reason', 'ok', 'order', 'actions', 'refused', 'notRestarted'],
            properties: {
              fail: stringList,
              reason: { type: 'string' },
              ok: { type: 'boolean', description: 'false: some HA VM would fit nowhere' },
              order: { ...stringList, description: 'the HA VMs in restart order (tier, then priority)' },
              actions: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['vm', 'from', 'to', 'tier', 'priority'],
                  properties: {
                    vm: { type: 'string' },
                    from: { type: 'string' },
                    to: { type: 'string' },
                    tier: { type: ['string', 'null'] },
                    priority: { type: 'integer' },
                  },
                },
              },
              refused: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['vm', 'reasons'],
                  properties: { vm: { type: 'string' }, reasons: stringList },
                },
              },
              notRestarted: { ...stringList, description: 'VMs on those hosts whose tier has no failover' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const { fail } = req.body as { fail: string[] };
      req.auditTarget = 'ha';
      const snap = d.snapshot();
      const unknown = fail.filter((h) => !snap.hosts.has(h));
      if (unknown.length > 0)
        throw new ApiError(404, 'not_found', `no host named ${unknown.map((h) => `"${h}"`).join(', ')}`);
      const decision = whatIf(snap, fail, ha.placement, {
        id: 'dec-whatif',
        at: Date.now(),
        ref: 'whatif',
        requestedBy: { id: req.principal!.id, name: req.principal!.name },
        ...(ha.anySite ? { anySite: true } : {}),
      });
      return {
        fail: [...fail].sort(),
        reason: decision.reason,
        ok: decision.ok,
        order: decision.vms,
        actions: decision.actions.flatMap((a) =>
          a.kind === 'restart-elsewhere'
            ? [
                {
                  vm: a.vm,
                  from: a.from,
                  to: a.to,
                  tier: d.policyOf(a.vm)?.tier ?? null,
                  priority: ha.placement.haPriorityOf(a.vm) ?? 0,
                },
              ]
            : [],
        ),
        refused: decision.refused.map((r) => ({ vm: r.vm, reasons: r.reasons })),
        notRestarted: unprotectedOn(snap, fail, ha.placement),
      };
    },
  );
}
