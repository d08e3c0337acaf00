import type { FastifyInstance } from 'fastify';
import type { HostSnapshot } from '../../core/model.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, hostSchema, nameParam } from '../schemas.ts';

function hostView(h: HostSnapshot) {
  return {
    name: h.name,
    site: h.site,
    health: h.health,
    healthSince: h.healthSince ?? null,
    evidence: h.evidence ?? null,
    maintenance: h.maintenance,
    cpus: h.cpus,
    memoryMiB: Math.round(h.memoryKiB / 1024),
    cpuUtilisation: h.cpuUtilisation,
    memoryUsedMiB: h.memoryUsedKiB === null ? null : Math.round(h.memoryUsedKiB / 1024),
    observedAt: h.observedAt,
    vms: [...h.vms].sort(),
    ...(h.lastKnownVms ? { lastKnownVms: [...h.lastKnownVms].sort() } : {}),
  };
}

export function hostRoutes(app: FastifyInstance, d: ApiDeps): void {
  app.get(
    '/v1/hosts',
    {
      config: { action: 'host.read' },
      schema: {
        tags: ['hosts'],
        operationId: 'listHosts',
        summary: 'Every host with its health, capacity and VMs',
        response: {
          200: {
            description: 'The hosts, by name',
            type: 'object',
            required: ['hosts'],
            properties: { hosts: { type: 'array', items: hostSchema } },
          },
          ...errorResponses,
        },
      },
    },
    async () => ({
      hosts: [...d.snapshot().hosts.values()].sort((a, b) => a.name.localeCompare(b.name)).map(hostView),
    }),
  );

  app.get(
    '/v1/hosts/:name',
    {
      config: { action: 'host.read' },
      schema: {
        tags: ['hosts'],
        operationId: 'getHost',
        summary: 'One host with its health evidence, capacity and VMs',
        params: nameParam,
        response: { 200: { description: 'The host', ...hostSchema }, ...errorResponses },
      },
    },
    async (req) => {
      const { name } = req.params as { name: string };
      const h = d.snapshot().hosts.get(name);
      if (!h) throw new ApiError(404, 'not_found', `no host named "${name}"`);
      return hostView(h);
    },
  );
}
