import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type AdmissionPolicy, checkAdmission } from '../../core/ha/admission.ts';
import type { FailoverPlacement } from '../../core/ha/restart-plan.ts';
import type { ClusterSnapshot } from '../../core/model.ts';
import type { PowerKind } from '../../core/planners/power.ts';
import { submitPower } from '../../jobs/power-submit.ts';
import type { JobSystem } from '../../jobs/queue.ts';
import type { Store } from '../../store/store.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, nameParam } from '../schemas.ts';

/**
 * Start, shutdown and destroy: each is a decision of the power planner, submitted as a job
 * that runs under the VM's lock. A VM whose lock is held (a migration under way) answers 409
 * naming the job. The route waits a few seconds for the job, so that libvirt's answer comes
 * back in the response; a job still queued answers 202 with its id.
 */

export interface PowerDeps {
  jobs: JobSystem;
  store: Pick<Store, 'getPlacement'>;
  /** How long a request waits for its job before answering 202 with it. */
  waitMs?: number;
  /** HA admission control of starts (none, or toleratedHostFailures 0: starts are not checked). */
  admission?: { placement: FailoverPlacement; policy: AdmissionPolicy };
}

const actionResponse = {
  202: {
    description:
      "The action's job: finished (state succeeded) when libvirt answered within the wait, else still waiting or active",
    type: 'object',
    required: ['vm', 'host', 'action', 'job', 'decision', 'state'],
    properties: {
      vm: { type: 'string' },
      host: { type: 'string' },
      action: { type: 'string', enum: ['start', 'shutdown', 'destroy'] },
      job: { type: 'string', description: 'the job id (GET /v1/jobs/{id})' },
      decision: { type: 'string', description: 'the decision id (GET /v1/decisions/{id})' },
      state: {
        type: 'string',
        enum: ['waiting', 'active', 'succeeded', 'failed', 'aborted', 'cancelled', 'refused', 'unknown'],
      },
    },
  },
  ...errorResponses,
};

/** The refusal of starting `vm` on `host` by HA admission control, or null. */
function admitStart(
  snap: ClusterSnapshot,
  vm: string,
  host: string,
  a: NonNullable<PowerDeps['admission']>,
): string | null {
  const v = snap.vms.get(vm);
  if (!v) return null;
  return (
    checkAdmission(snap, { vm, host, vcpus: v.vcpus, memoryKiB: v.memoryKiB }, a.placement, a.policy)
      ?.reason ?? null
  );
}

/** Decides, submits and waits briefly; shared by the three routes. */
async function powerAction(d: ApiDeps, p: PowerDeps, req: FastifyRequest, kind: PowerKind) {
  const { name } = req.params as { name: string };
  if (!d.snapshot().vms.has(name)) throw new ApiError(404, 'not_found', `no VM named "${name}"`);
  const principal = req.principal!;
  const admission = p.admission;
  const r = await submitPower(
    {
      jobs: p.jobs,
      snapshot: () => d.snapshot(),
      lastPlacement: async (vm) => (await p.store.getPlacement(vm))?.host ?? null,
      ...(admission && (admission.policy.toleratedHostFailures ?? 0) > 0
        ? { admitStart: (snap, vm, host) => admitStart(snap, vm, host, admission) }
        : {}),
    },
    kind,
    name,
    { planner: 'operator', ref: 'api', requestedBy: { id: principal.id, name: principal.name } },
    p.waitMs ?? 10_000,
  );
  if (!r.ok) {
    if (r.why === 'failed') throw new ApiError(502, 'libvirt_error', r.reason);
    if (r.why === 'admission') throw new ApiError(409, 'admission_refused', r.reason);
    throw new ApiError(409, 'conflict', r.reason);
  }
  return { vm: r.vm, host: r.host, action: kind, job: r.job.id, decision: r.decision, state: r.job.state };
}

export function powerRoutes(app: FastifyInstance, d: ApiDeps, p: PowerDeps): void {
  app.post(
    '/v1/vms/:name/start',
    {
      config: { action: 'vm.start', vmParam: 'name' },
      schema: {
        tags: ['vms'],
        operationId: 'startVm',
        summary:
          'Start a VM that is shut off; refused unless every host that might run it is up, and (409 admission_refused) when it would break the host failures HA tolerates',
        params: nameParam,
        response: actionResponse,
      },
    },
    async (req, reply) => reply.status(202).send(await powerAction(d, p, req, 'start')),
  );

  app.post(
    '/v1/vms/:name/shutdown',
    {
      config: { action: 'vm.shutdown', vmParam: 'name' },
      schema: {
        tags: ['vms'],
        operationId: 'shutdownVm',
        summary: 'Ask the guest to shut down (ACPI power button)',
        params: nameParam,
        response: actionResponse,
      },
    },
    async (req, reply) => reply.status(202).send(await powerAction(d, p, req, 'shutdown')),
  );

  app.post(
    '/v1/vms/:name/destroy',
    {
      config: { action: 'vm.destroy', vmParam: 'name' },
      schema: {
        tags: ['vms'],
        operationId: 'destroyVm',
        summary: 'Power the VM off at once (its definition stays); needs {"confirm": true}',
        params: nameParam,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['confirm'],
          properties: { confirm: { type: 'boolean', const: true } },
        },
        response: actionResponse,
      },
    },
    async (req, reply) => reply.status(202).send(await powerAction(d, p, req, 'destroy')),
  );
}
