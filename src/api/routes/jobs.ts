import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  migrationRefusals,
  type PlacementContext,
  planEvacuation,
  rankHosts,
} from '../../core/placement/index.ts';
import type { MigrationRequest } from '../../jobs/migrate.ts';
import { JobConflict, type JobSystem, type JobView } from '../../jobs/queue.ts';
import type { MaintenanceBook } from '../../store/maintenance.ts';
import { type MigrationPolicyLimits, policyRefusals } from '../auth/policy-limits.ts';
import { decide } from '../auth/rbac.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError, DeniedError } from '../errors.ts';
import { errorSchema, NAME_PATTERN, nameParam } from '../schemas.ts';

export interface JobDeps {
  jobs: JobSystem;
  maintenance: MaintenanceBook;
  placement: PlacementContext & { haPriorityOf(vm: string): number };
  /** What a role below operator may set in a migration's `policy` (config api.vmAdminMigrationPolicy). */
  policyLimits: MigrationPolicyLimits;
}

const policySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    maxDowntimeMs: { type: 'integer', minimum: 1, maximum: 60_000 },
    bandwidthMiBs: { type: 'integer', minimum: 0, maximum: 100_000 },
    autoConverge: { type: 'boolean' },
    postCopyAfterIterations: { type: 'integer', minimum: 0, maximum: 1000 },
    postCopyAfterMs: { type: 'integer', minimum: 0, maximum: 3_600_000 },
    timeoutMs: { type: 'integer', minimum: 1_000, maximum: 86_400_000 },
  },
} as const;

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^mig-[0-9a-f-]{36}$' } },
} as const;

function requester(req: FastifyRequest) {
  const p = req.principal!;
  return { id: p.id, name: p.name };
}

/** The job, if the principal may see it (a vm-admin sees its VMs' jobs only, others get 404). */
async function visibleJob(req: FastifyRequest, j: JobDeps, id: string): Promise<JobView> {
  const job = await j.jobs.get(id);
  if (!job) throw new ApiError(404, 'not_found', `no job "${id}"`);
  req.auditTarget = job.vm;
  if (decide(req.principal!, 'job.read', job.vm) === 'hide')
    throw new DeniedError(404, 'not_found', `no job "${id}"`);
  return job;
}

export function jobRoutes(app: FastifyInstance, d: ApiDeps, j: JobDeps): void {
  app.post(
    '/v1/vms/:name/migrate',
    {
      config: { action: 'vm.migrate', vmParam: 'name' },
      schema: {
        tags: ['jobs'],
        summary: 'Live-migrate a VM (peer-to-peer); 202 with the job',
        params: nameParam,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            to: { type: 'string', pattern: NAME_PATTERN, description: 'default: the best host of its site' },
            copyStorage: { type: 'boolean', default: false },
            policy: policySchema,
          },
        },
        response: { '4xx': errorSchema },
      },
    },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      const body = (req.body ?? {}) as {
        to?: string;
        copyStorage?: boolean;
        policy?: MigrationRequest['policy'];
      };
      const overreach = body.policy ? policyRefusals(req.principal!, body.policy, j.policyLimits) : [];
      if (overreach.length > 0)
        throw new DeniedError(403, 'forbidden', `role ${req.principal!.role}: ${overreach.join('; ')}`);
      const snap = d.snapshot();
      const vm = snap.vms.get(name);
      if (!vm) throw new ApiError(404, 'not_found', `no VM named "${name}"`);
      let to = body.to;
      if (to === undefined) {
        const site = snap.hosts.get(vm.host)?.site;
        const best = rankHosts(snap, vm, j.placement, site ? { sites: [site] } : {}).find((v) => v.feasible);
        if (!best) throw new ApiError(409, 'refused', `no host in site ${site} can take ${name}`);
        to = best.host;
      }
      const refusals = migrationRefusals(snap, name, to, j.placement);
      if (refusals.length > 0) throw new ApiError(409, 'refused', refusals.join('; '));
      try {
        const job = await j.jobs.enqueueMigration({
          vm: name,
          from: vm.host,
          to,
          copyStorage: body.copyStorage ?? false,
          requestedBy: requester(req),
          reason: 'api',
          ...(body.policy ? { policy: body.policy } : {}),
        });
        return reply.status(202).send(job);
      } catch (e) {
        if (e instanceof JobConflict) throw new ApiError(409, 'conflict', e.message);
        throw e;
      }
    },
  );

  app.get(
    '/v1/jobs',
    {
      config: { action: 'job.read' },
      schema: {
        tags: ['jobs'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            vm: { type: 'string', pattern: NAME_PATTERN },
            reason: { type: 'string', maxLength: 100 },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
      },
    },
    async (req) => {
      const q = req.query as { vm?: string; reason?: string; limit: number };
      const all = await j.jobs.list(1000);
      const jobs = all
        .filter((job) => decide(req.principal!, 'job.read', job.vm) === 'allow')
        .filter(
          (job) =>
            (q.vm === undefined || job.vm === q.vm) && (q.reason === undefined || job.reason === q.reason),
        )
        .slice(0, q.limit);
      return { jobs };
    },
  );

  app.get(
    '/v1/jobs/:id',
    {
      config: { action: 'job.read' },
      schema: { tags: ['jobs'], params: idParam, response: { '4xx': errorSchema } },
    },
    async (req) => visibleJob(req, j, (req.params as { id: string }).id),
  );

  app.delete(
    '/v1/jobs/:id',
    {
      // The hook checks that the role may cancel jobs at all; the handler, on the job's VM.
      config: { action: 'job.cancel', vmFromHandler: true },
      schema: {
        tags: ['jobs'],
        summary:
          'Cancel: a waiting job ends as cancelled, a running migration is aborted (the VM stays on the source)',
        params: idParam,
        response: { '4xx': errorSchema },
      },
    },
    async (req, reply) => {
      const job = await visibleJob(req, j, (req.params as { id: string }).id);
      if (decide(req.principal!, 'job.cancel', job.vm) !== 'allow')
        throw new DeniedError(403, 'forbidden', `role ${req.principal!.role} may not job.cancel`);
      if (job.state !== 'waiting' && job.state !== 'active')
        throw new ApiError(409, 'conflict', `job ${job.id} has already finished (${job.state})`);
      return reply.status(202).send(await j.jobs.cancel(job.id));
    },
  );

  app.post(
    '/v1/hosts/:name/maintenance',
    {
      config: { action: 'host.maintenance' },
      schema: {
        tags: ['hosts'],
        summary:
          'Enter maintenance (evacuate every VM, all or nothing) or exit it (optionally moving VMs back)',
        params: nameParam,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['action'],
          properties: {
            action: { type: 'string', enum: ['enter', 'exit'] },
            moveBack: { type: 'boolean', default: false },
            anySite: { type: 'boolean', default: false },
          },
        },
        response: { '4xx': errorSchema },
      },
    },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      const body = req.body as { action: 'enter' | 'exit'; moveBack: boolean; anySite: boolean };
      const r = await maintenance(d, j, name, body, requester(req));
      return reply.status(202).send(r);
    },
  );
}

/** Shared by the API and scheduled maintenance windows. */
export async function maintenance(
  d: Pick<ApiDeps, 'snapshot'>,
  j: JobDeps,
  host: string,
  o: { action: 'enter' | 'exit'; moveBack?: boolean; anySite?: boolean },
  requestedBy: { id: string; name: string },
): Promise<{ host: string; maintenance: boolean; jobs: JobView[]; plan?: unknown }> {
  const snap = d.snapshot();
  if (!snap.hosts.has(host)) throw new ApiError(404, 'not_found', `no host named "${host}"`);
  if (o.action === 'enter') {
    const plan = planEvacuation(snap, host, j.placement, { anySite: o.anySite ?? false });
    if (!plan.ok)
      throw new ApiError(
        409,
        'refused',
        `cannot evacuate ${host}, nothing was moved: ${plan.refused.map((r) => `${r.vm}: ${r.reasons.join('; ')}`).join(' | ')}`,
      );
    await j.maintenance.enter(
      host,
      plan.moves.map((m) => ({ vm: m.vm, to: m.to })),
    );
    const jobs: JobView[] = [];
    for (const m of plan.moves)
      jobs.push(
        await j.jobs.enqueueMigration({
          vm: m.vm,
          from: host,
          to: m.to,
          copyStorage: 'auto',
          requestedBy,
          reason: `maintenance:${host}`,
        }),
      );
    return { host, maintenance: true, jobs, plan };
  }
  const evacuated = await j.maintenance.exit(host);
  const jobs: JobView[] = [];
  if (o.moveBack) {
    const now = d.snapshot();
    for (const e of evacuated) {
      const vm = now.vms.get(e.vm);
      if (vm?.state !== 'running' || vm.host === host) continue;
      jobs.push(
        await j.jobs.enqueueMigration({
          vm: e.vm,
          from: vm.host,
          to: host,
          copyStorage: 'auto',
          requestedBy,
          reason: `return:${host}`,
        }),
      );
    }
  }
  return { host, maintenance: false, jobs };
}
