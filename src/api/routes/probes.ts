import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.ts';
import { NAME_PATTERN } from '../schemas.ts';

/**
 * keizoku-probe agents register here (so that jobs can ask them for a measurement window) and
 * push the outages they saw (kept for availability, 稼働率).
 *   {prefix}probes    hash   name -> JSON ProbeRegistration
 *   {prefix}outages   stream JSON OutageEvent per entry
 */

export interface ProbeRegistration {
  name: string;
  site: string;
  url: string;
  intervalMs: number;
  seenAt: number;
}

export interface OutageEvent {
  probe: string;
  site: string;
  target: string;
  addresses: string[];
  startMs: number;
  endMs: number;
  outageMs: number;
  lost: number;
}

const OUTAGES_MAX = 1_000_000;

/** Registrations seen within the last minute. */
export async function liveProbes(
  d: Pick<ApiDeps, 'redis' | 'prefix'>,
  now = Date.now(),
): Promise<ProbeRegistration[]> {
  const all = await d.redis.hgetall(`${d.prefix}probes`);
  return Object.values(all)
    .map((raw) => JSON.parse(raw) as ProbeRegistration)
    .filter((p) => now - p.seenAt < 60_000)
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function probeRoutes(app: FastifyInstance, d: ApiDeps): void {
  app.post(
    '/v1/probes',
    {
      config: { action: 'probe.report' },
      schema: {
        tags: ['probes'],
        summary: 'A probe agent registers (every few seconds)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'site', 'url', 'intervalMs'],
          properties: {
            name: { type: 'string', pattern: NAME_PATTERN },
            site: { type: 'string', pattern: NAME_PATTERN },
            url: { type: 'string', pattern: '^https?://[^\\s]{1,200}$' },
            intervalMs: { type: 'integer', minimum: 1, maximum: 60_000 },
          },
        },
      },
    },
    async (req) => {
      const b = req.body as Omit<ProbeRegistration, 'seenAt'>;
      await d.redis.hset(`${d.prefix}probes`, b.name, JSON.stringify({ ...b, seenAt: Date.now() }));
      return { registered: b.name };
    },
  );

  app.get(
    '/v1/probes',
    {
      config: { action: 'host.read' },
      schema: { tags: ['probes'], summary: 'Probe agents seen in the last minute' },
    },
    async () => ({ probes: await liveProbes(d) }),
  );

  app.post(
    '/v1/probe/events',
    {
      config: { action: 'probe.report' },
      schema: {
        tags: ['probes'],
        summary: 'Outages a probe saw',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['probe', 'site', 'events'],
          properties: {
            probe: { type: 'string', pattern: NAME_PATTERN },
            site: { type: 'string', pattern: NAME_PATTERN },
            events: {
              type: 'array',
              maxItems: 1000,
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['target', 'addresses', 'startMs', 'endMs', 'outageMs', 'lost'],
                properties: {
                  target: { type: 'string', pattern: NAME_PATTERN },
                  addresses: { type: 'array', maxItems: 16, items: { type: 'string', maxLength: 64 } },
                  startMs: { type: 'integer', minimum: 0 },
                  endMs: { type: 'integer', minimum: 0 },
                  outageMs: { type: 'number', minimum: 0 },
                  lost: { type: 'integer', minimum: 0 },
                },
              },
            },
          },
        },
      },
    },
    async (req) => {
      const b = req.body as { probe: string; site: string; events: Omit<OutageEvent, 'probe' | 'site'>[] };
      const pipe = d.redis.pipeline();
      for (const e of b.events)
        pipe.xadd(
          `${d.prefix}outages`,
          'MAXLEN',
          '~',
          OUTAGES_MAX,
          '*',
          'e',
          JSON.stringify({ probe: b.probe, site: b.site, ...e }),
        );
      await pipe.exec();
      return { accepted: b.events.length };
    },
  );
}
