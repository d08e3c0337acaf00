import type { FastifyInstance } from 'fastify';
import type { ClusterSnapshot, VmConflict, VmSnapshot } from '../../core/model.ts';
import { scopeMatcher } from '../auth/rbac.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, nameParam, policySchema, vmSchema } from '../schemas.ts';

const KiB_PER_MiB = 1024;

/** Each snapshot's conflicts by VM, built once (a partition may put many VMs in conflict). */
const conflictIndex = new WeakMap<ClusterSnapshot, ReadonlyMap<string, VmConflict>>();
function conflictOf(snap: ClusterSnapshot, vm: string): VmConflict | undefined {
  if (!snap.conflicts?.length) return undefined;
  let index = conflictIndex.get(snap);
  if (!index) {
    index = new Map(snap.conflicts.map((c) => [c.vm, c]));
    conflictIndex.set(snap, index);
  }
  return index.get(vm);
}

/** Each snapshot's VMs in name order, sorted once (a list of 20,000 sorted them on every request). */
const sortedIndex = new WeakMap<ClusterSnapshot, readonly VmSnapshot[]>();
function vmsByName(snap: ClusterSnapshot): readonly VmSnapshot[] {
  let sorted = sortedIndex.get(snap);
  if (!sorted) {
    sorted = [...snap.vms.values()].sort((a, b) => a.name.localeCompare(b.name));
    sortedIndex.set(snap, sorted);
  }
  return sorted;
}

/** One VM as the API shows it; `snap` is the snapshot `vm` came from (one per request). */
export function vmView(d: ApiDeps, snap: ClusterSnapshot, vm: VmSnapshot) {
  const host = snap.hosts.get(vm.host);
  const conflict = conflictOf(snap, vm.name);
  return {
    name: vm.name,
    uuid: vm.uuid,
    host: vm.host,
    site: host?.site ?? null,
    state: vm.state,
    vcpus: vm.vcpus,
    memoryMiB: Math.round(vm.memoryKiB / KiB_PER_MiB),
    cpuUsage: vm.cpuUsage,
    addresses: [...d.addressesOf(vm.name)],
    labels: { ...d.labelsOf?.(vm.name) },
    policy: d.policyOf(vm.name),
    ...(conflict ? { conflict: conflict.copies } : {}),
  };
}

function findVm(d: ApiDeps, name: string, snap = d.snapshot()): VmSnapshot {
  const vm = snap.vms.get(name);
  if (!vm) throw new ApiError(404, 'not_found', `no VM named "${name}"`);
  return vm;
}

export function vmRoutes(app: FastifyInstance, d: ApiDeps): void {
  app.get(
    '/v1/vms',
    {
      config: { action: 'vm.read' },
      schema: {
        tags: ['vms'],
        operationId: 'listVms',
        summary: 'Every VM the principal may see',
        response: {
          200: {
            description: 'The VMs, by name',
            type: 'object',
            required: ['vms'],
            properties: { vms: { type: 'array', items: vmSchema } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      // One snapshot and one compiled scope per request: the list is linear in the VMs.
      const snap = d.snapshot();
      const visible = scopeMatcher(req.principal!);
      const vms = vmsByName(snap)
        .filter((vm) => visible(vm.name))
        .map((vm) => vmView(d, snap, vm));
      return { vms };
    },
  );

  app.get(
    '/v1/vms/:name',
    {
      config: { action: 'vm.read', vmParam: 'name' },
      schema: {
        tags: ['vms'],
        operationId: 'getVm',
        summary: 'One VM with its last 20 moves',
        params: nameParam,
        response: {
          200: {
            description: 'The VM',
            type: 'object',
            required: [...vmSchema.required, 'history'],
            properties: {
              ...vmSchema.properties,
              history: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['id', 'at', 'kind', 'from', 'to', 'detail', 'jobId', 'decisionId'],
                  properties: {
                    id: { type: 'string' },
                    at: { type: 'number' },
                    kind: { type: 'string' },
                    from: { type: ['string', 'null'] },
                    to: { type: ['string', 'null'] },
                    detail: { type: 'string' },
                    jobId: { type: ['string', 'null'] },
                    decisionId: { type: ['string', 'null'] },
                  },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const { name } = req.params as { name: string };
      const snap = d.snapshot();
      const vm = findVm(d, name, snap);
      const history = await d.store.history(name, 20).catch(() => []);
      return { ...vmView(d, snap, vm), history };
    },
  );

  app.put(
    '/v1/vms/:name/policy',
    {
      config: { action: 'vm.policy', vmParam: 'name' },
      schema: {
        tags: ['vms'],
        operationId: 'setVmPolicy',
        summary: 'Override the tier, limits profile or HA priority the config gives the VM ({} clears)',
        params: nameParam,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            tier: { type: 'string', minLength: 1, maxLength: 63 },
            limits: { type: ['string', 'null'], minLength: 1, maxLength: 63 },
            haPriority: { type: 'integer', minimum: 0, maximum: 1000 },
          },
        },
        response: {
          200: {
            description: 'The policy now in force',
            type: 'object',
            required: ['vm', 'policy'],
            properties: { vm: { type: 'string' }, policy: policySchema },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const { name } = req.params as { name: string };
      findVm(d, name);
      const body = req.body as { tier?: string; limits?: string | null; haPriority?: number };
      if (body.tier !== undefined && !d.tierIds.includes(body.tier))
        throw new ApiError(
          400,
          'invalid_request',
          `body.tier: unknown tier "${body.tier}" (one of ${d.tierIds.join(', ')})`,
        );
      if (typeof body.limits === 'string' && !d.limitsProfiles.includes(body.limits))
        throw new ApiError(
          400,
          'invalid_request',
          `body.limits: unknown limits profile "${body.limits}" (one of ${d.limitsProfiles.join(', ')})`,
        );
      if (d.policyOf(name) === null && body.tier === undefined && Object.keys(body).length > 0)
        throw new ApiError(
          400,
          'invalid_request',
          `body.tier: VM "${name}" has no tier in the config; give one`,
        );
      await d.setPolicy(name, Object.keys(body).length === 0 ? null : body);
      return { vm: name, policy: d.policyOf(name) };
    },
  );
}
