import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { PlacementContext } from '../../core/placement/index.ts';
import { planMigration } from '../../core/planners/migrate.ts';
import type { Evacuations } from '../../jobs/evacuate.ts';
import type { MigrationRequest } from '../../jobs/migrate.ts';
import { JobConflict, type JobSystem, type JobView, SubmitRefused } from '../../jobs/queue.ts';
import { type MigrationPolicyLimits, policyRefusals } from '../auth/policy-limits.ts';
import { decide } from '../auth/rbac.ts';
import { sentenceFor } from '../decision-view.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError, DeniedError } from '../errors.ts';
import { jobSchema, maintenanceAnswerSchema } from '../job-schemas.ts';
import { errorResponses, NAME_PATTERN, nameParam } from '../schemas.ts';

export interface JobDeps {
  jobs: JobSystem;
  evacuations: Evacuations;
  placement: PlacementContext;
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
  properties: {
    id: { type: 'string', pattern: '^(mig|start|shutdown|destroy|define|undefine|evac)-[0-9a-f-]{36}$' },
  },
} as const;

function requester(req: FastifyRequest) {
  const p = req.principal!;
  return { id: p.id, name: p.name };
}

/** Whether the principal may see the job: a VM's jobs by the VM's scope, a host's evacuation as host.read. */
function mayRead(req: FastifyRequest, job: JobView): 'allow' | 'deny' | 'hide' {
  const p = req.principal!;
  if (job.vm === null) return decide(p, 'host.read') === 'allow' ? 'allow' : 'hide';
  return decide(p, 'job.read', job.vm);
}

/** The job, if the principal may see it (a vm-admin sees its VMs' jobs only, others get 404). */
async function visibleJob(req: FastifyRequest, j: JobDeps, id: string): Promise<JobView> {
  const job = await j.jobs.get(id);
  if (!job) throw new ApiError(404, 'not_found', `no job "${id}"`);
  req.auditTarget = job.vm ?? job.host;
  if (mayRead(req, job) === 'hide') throw new DeniedError(404, 'not_found', `no job "${id}"`);
  return job;
}

export function jobRoutes(app: FastifyInstance, d: ApiDeps, j: JobDeps): void {
  app.post(
    '/v1/vms/:name/migrate',
    {
      config: { action: 'vm.migrate', vmParam: 'name' },
      schema: {
        tags: ['jobs'],
        operationId: 'migrateVm',
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
        response: {
          202: { ...jobSchema, description: 'The migration job, queued' },
          ...errorResponses,
        },
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
      if (!snap.vms.has(name)) throw new ApiError(404, 'not_found', `no VM named "${name}"`);
      const decision = planMigration(
        snap,
        name,
        {
          ...(body.to !== undefined ? { to: body.to } : {}),
          copyStorage: body.copyStorage ?? false,
          ...(body.policy ? { policy: body.policy } : {}),
        },
        j.placement,
        {
          id: `dec-${randomUUID()}`,
          at: Date.now(),
          planner: 'operator',
          ref: 'api',
          requestedBy: requester(req),
        },
      );
      // A refusal quotes placement verdicts, which may name other VMs (F28).
      const say = sentenceFor(req.principal!, snap.vms.keys());
      if (!decision.ok)
        throw new ApiError(409, 'refused', say(decision.refused.flatMap((r) => r.reasons).join('; ')));
      try {
        const { jobs } = await j.jobs.submit(decision);
        return reply.status(202).send(jobs[0]);
      } catch (e) {
        if (e instanceof JobConflict || e instanceof SubmitRefused)
          throw new ApiError(409, 'conflict', say(e.message));
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
        operationId: 'listJobs',
        summary: 'Jobs of every kind the principal may see, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            vm: { type: 'string', pattern: NAME_PATTERN },
            reason: { type: 'string', maxLength: 100 },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
        response: {
          200: {
            description: 'The jobs',
            type: 'object',
            required: ['jobs'],
            properties: { jobs: { type: 'array', items: jobSchema } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const q = req.query as { vm?: string; reason?: string; limit: number };
      // Only as many as asked for, in the caller's scope and filters (F13).
      const jobs = await j.jobs.list(
        q.limit,
        (job) =>
          mayRead(req, job) === 'allow' &&
          (q.vm === undefined || job.vm === q.vm) &&
          (q.reason === undefined || job.reason === q.reason),
      );
      return { jobs };
    },
  );

  app.get(
    '/v1/jobs/:id',
    {
      config: { action: 'job.read' },
      schema: {
        tags: ['jobs'],
        operationId: 'getJob',
        summary: 'One job: its state, progress and result',
        params: idParam,
        response: { 200: { ...jobSchema, description: 'The job' }, ...errorResponses },
      },
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
        operationId: 'cancelJob',
        summary:
          'Cancel: a waiting job ends as cancelled, a running migration is aborted (the VM stays on the source)',
        params: idParam,
        response: {
          202: { ...jobSchema, description: 'The job as it is after the cancel was asked' },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const job = await visibleJob(req, j, (req.params as { id: string }).id);
      const may =
        job.vm === null
          ? decide(req.principal!, 'host.maintenance')
          : decide(req.principal!, 'job.cancel', job.vm);
      if (may !== 'allow')
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
        operationId: 'setHostMaintenance',
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
        response: {
          202: { description: 'Marked, with the moves queued', ...maintenanceAnswerSchema },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      const body = req.body as { action: 'enter' | 'exit'; moveBack: boolean; anySite: boolean };
      if (!d.snapshot().hosts.has(name)) throw new ApiError(404, 'not_found', `no host named "${name}"`);
      try {
        const r =
          body.action === 'enter'
            ? await j.evacuations.enter(name, { anySite: body.anySite }, requester(req), 'api')
            : await j.evacuations.exit(name, { moveBack: body.moveBack }, requester(req), 'api');
        return reply.status(202).send(r);
      } catch (e) {
        if (e instanceof SubmitRefused) throw new ApiError(409, 'refused', e.message);
        if (e instanceof JobConflict) throw new ApiError(409, 'conflict', e.message);
        throw e;
      }
    },
  );
}
