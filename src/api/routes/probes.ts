import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type OutageReport, ProbeBook } from '../../store/probe-book.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError, DeniedError } from '../errors.ts';
import { errorResponses, NAME_PATTERN } from '../schemas.ts';

/**
 * keizoku-probe agents register here (so that jobs can ask them for a measurement window) and
 * push the outages they saw (kept for availability, 稼働率). A probe token speaks for one agent:
 * its name and site come from the token, never from the body. Storage: store/probe-book.ts.
 */

export type { OutageEvent, ProbeRegistration } from '../../store/probe-book.ts';

/** The book the probe and tier routes share. */
export function probeBookOf(d: ApiDeps): ProbeBook {
  return d.probeBook ?? new ProbeBook(d.redis, d.prefix);
}

/** The agent a request speaks for: a probe token's binding, or what an admin names in the body. */
function agentOf(req: FastifyRequest, body: { name?: string; site?: string }, field: string) {
  const p = req.principal!;
  if (p.role === 'probe') {
    if (!p.probe)
      throw new DeniedError(
        403,
        'forbidden',
        'this probe token is bound to no agent: create one with keizokud token create --role probe --probe-name NAME --site SITE',
      );
    return p.probe;
  }
  if (!body.name || !body.site)
    throw new ApiError(400, 'invalid_request', `body: ${field} and site are required with a ${p.role} token`);
  return { name: body.name, site: body.site };
}

/** `::ffff:10.0.0.1` is 10.0.0.1; IPv6 in its compressed form. */
function normaliseIp(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return v4[1]!;
  return isIP(ip) === 6 ? new URL(`http://[${ip}]`).hostname.slice(1, -1) : ip;
}

const URL_RE = /^(https?):\/\/(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?\/?$/;

/**
 * The origin a registration may name: http(s), an IP literal equal to the request's source
 * address (an unspecified 0.0.0.0 or [::] stands for it), a port, no path, query, fragment or
 * user. Anything else would let a token send keizokud's window requests elsewhere.
 */
export function registrationOrigin(raw: string, sourceIp: string): string {
  const m = URL_RE.exec(raw);
  if (!m)
    throw new ApiError(
      400,
      'invalid_request',
      `body.url: expected http://ADDRESS:PORT with the agent's IP address and nothing after the port, got "${raw.slice(0, 100)}"`,
    );
  const source = normaliseIp(sourceIp);
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  if (isIP(host) === 0)
    throw new ApiError(400, 'invalid_request', `body.url: "${m[2]}" is not an IP address`);
  const unspecified = host === '0.0.0.0' || normaliseIp(host) === '::';
  if (!unspecified && normaliseIp(host) !== source)
    throw new DeniedError(
      403,
      'forbidden',
      `body.url: an agent registers its own address; ${m[2]} is not ${source}, where this request came from`,
    );
  const shown = isIP(source) === 6 ? `[${source}]` : source;
  return new URL(`${m[1]}://${shown}${m[3] ? `:${m[3]}` : ''}`).origin;
}

export function probeRoutes(app: FastifyInstance, d: ApiDeps): void {
  const book = probeBookOf(d);

  app.post(
    '/v1/probes',
    {
      // Every agent registers every 10 s: counted (probeRegistrations), not audited.
      config: { action: 'probe.report', audit: false },
      schema: {
        tags: ['probes'],
        operationId: 'registerProbe',
        summary: 'A probe agent registers (every few seconds)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['url', 'intervalMs'],
          properties: {
            name: { type: 'string', pattern: NAME_PATTERN },
            site: { type: 'string', pattern: NAME_PATTERN },
            url: { type: 'string', maxLength: 200 },
            intervalMs: { type: 'integer', minimum: 1, maximum: 60_000 },
          },
        },
        response: {
          200: {
            description: 'Registered under the name and site of the token (or the body, for an admin)',
            type: 'object',
            required: ['registered', 'site', 'url'],
            properties: {
              registered: { type: 'string', description: "the agent's name" },
              site: { type: 'string' },
              url: { type: 'string', description: 'the origin keizokud asks for windows' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const b = req.body as { name?: string; site?: string; url: string; intervalMs: number };
      const agent = agentOf(req, b, 'name');
      const url = registrationOrigin(b.url, req.ip);
      await book.register({ name: agent.name, site: agent.site, url, intervalMs: b.intervalMs });
      d.probeRegistrations?.inc({ probe: agent.name });
      return { registered: agent.name, site: agent.site, url };
    },
  );

  app.get(
    '/v1/probes',
    {
      config: { action: 'host.read' },
      schema: {
        tags: ['probes'],
        operationId: 'listProbes',
        summary: 'Probe agents seen in the last minute',
        response: {
          200: {
            description: 'The live agents',
            type: 'object',
            required: ['probes'],
            properties: {
              probes: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['name', 'site', 'url', 'intervalMs', 'seenAt'],
                  properties: {
                    name: { type: 'string' },
                    site: { type: 'string' },
                    url: { type: 'string' },
                    intervalMs: { type: 'integer' },
                    seenAt: { type: 'number' },
                  },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async () => ({ probes: await book.live() }),
  );

  app.post(
    '/v1/probe/events',
    {
      config: { action: 'probe.report' },
      schema: {
        tags: ['probes'],
        operationId: 'reportProbeEvents',
        summary: 'Outages a probe saw',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['events'],
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
        response: {
          200: {
            description: 'What was kept, and each event refused with why',
            type: 'object',
            required: ['accepted', 'refused'],
            properties: {
              accepted: { type: 'integer' },
              refused: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['index', 'message'],
                  properties: { index: { type: 'integer' }, message: { type: 'string' } },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const b = req.body as { probe?: string; site?: string; events: OutageReport[] };
      const agent = agentOf(req, { name: b.probe, site: b.site }, 'probe');
      const now = Date.now();
      const taken: OutageReport[] = [];
      const refused: { index: number; message: string }[] = [];
      b.events.forEach((e, index) => {
        const why = book.check(e, now);
        if (why === null) taken.push(e);
        else refused.push({ index, message: `events[${index}].${why}` });
      });
      await book.addOutages(agent.name, agent.site, taken, now);
      return { accepted: taken.length, refused };
    },
  );
}
