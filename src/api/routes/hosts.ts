import type { FastifyInstance } from 'fastify';
import type { HostSnapshot } from '../../core/model.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, haPauseSchema, hostSchema, nameParam } from '../schemas.ts';

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
            required: ['hosts', 'haPause'],
            properties: {
              hosts: { type: 'array', items: hostSchema },
              haPause: {
                ...haPauseSchema,
                type: ['object', 'null'],
                description: 'automatic failover is paused until then (null: it is not)',
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async () => {
      const pause = (await d.haPaused?.()) ?? null;
      return {
        hosts: [...d.snapshot().hosts.values()].sort((a, b) => a.name.localeCompare(b.name)).map(hostView),
        haPause: pause && { until: pause.until, since: pause.since, by: pause.by, reason: pause.reason },
      };
    },
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

  // An operator's word that a lost host is off (Pacemaker's `stonith_admin --confirm`, oVirt's
  // "confirm host has been rebooted"): for a host whose fence method is none, or whose fence
  // failed while someone pulled its power by hand. Refused while anything says it runs.
  app.post(
    '/v1/hosts/:name/confirm-off',
    {
      config: { action: 'host.confirm-off' },
      schema: {
        tags: ['hosts'],
        operationId: 'confirmHostOff',
        summary: 'Confirm that a lost host is powered off, so that its HA VMs restart elsewhere',
        params: nameParam,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['confirm'],
          properties: {
            confirm: { type: 'boolean', const: true },
            evidence: { type: 'string', maxLength: 500, description: 'how it was checked' },
          },
        },
        response: {
          202: {
            description: 'Recorded: the host is fenced from now on, until it answers again',
            type: 'object',
            required: ['host', 'health', 'fencedAt'],
            properties: {
              host: { type: 'string' },
              health: { type: 'string' },
              fencedAt: { type: 'integer' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      const { evidence } = req.body as { evidence?: string };
      const h = d.snapshot().hosts.get(name);
      if (!h) throw new ApiError(404, 'not_found', `no host named "${name}"`);
      if (!d.fences) throw new ApiError(409, 'refused', 'this controller keeps no fence records');
      if (h.health !== 'unreachable' && h.health !== 'down' && h.health !== 'fenced')
        throw new ApiError(
          409,
          'refused',
          `host ${name} is ${h.health}: ${h.health === 'partitioned' ? 'its management address or its VMs still answer' : 'the controller still reads it'}; only a host that is lost (unreachable or down) can be confirmed off`,
        );
      const at = Date.now();
      const who = req.principal?.name ?? 'operator';
      await d.fences.record({
        host: name,
        method: 'operator',
        at,
        evidence: evidence ? `confirmed off by ${who}: ${evidence}` : `confirmed off by ${who}`,
        ref: 'api',
      });
      return reply.status(202).send({ host: name, health: 'fenced', fencedAt: at });
    },
  );
}
