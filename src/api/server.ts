import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { AuditInput, AuditLog, AuditOutcome } from '../store/audit.ts';
import { type Action, decide, mayOnSomeVm, type Principal } from './auth/rbac.ts';
import type { TokenStore } from './auth/tokens.ts';
import { ApiError, DeniedError, errorBody, type FrameworkError } from './errors.ts';

/**
 * The REST API's frame: TLS (optionally mutual), bearer-token authentication, role checks
 * declared per route (`config.action`, and `config.vmParam` for routes on one VM), rate and
 * size limits, an OpenAPI document, and the audit of every mutating request: a `received`
 * entry before its handler runs (no entry, no action: 503), and exactly one outcome entry,
 * allowed or not, before the response leaves.
 */

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** Set when the request was refused for who made it (401/403, or a hidden 404). */
    auditDenied: boolean;
    /** The target a handler found itself (a job's VM), for the outcome entry. */
    auditTarget: string | null;
    /** The received entry is written, so the handler may act. */
    auditReceived: boolean;
    /** The outcome entry was tried: an error response sent after it does not write another. */
    auditOutcomeTried: boolean;
  }
  interface FastifyContextConfig {
    action?: Action;
    /** The route parameter that names the VM the action is on. */
    vmParam?: string;
    /**
     * The handler finds the VM (e.g. a job's) and checks `action` on it; the hook only checks
     * that the principal may do `action` on some VM.
     */
    vmFromHandler?: boolean;
    /** Routes open without a token (health, readiness, the OpenAPI document). */
    public?: boolean;
    /**
     * `false`: a success is routine, not an operator's action (a probe agent's registration every
     * few seconds), and is not audited (the route counts it in a metric); refusals still are.
     */
    audit?: false;
  }
}

/** What the API needs of the audit log (the store's AuditLog, or a fake in tests). */
export type AuditSink = Pick<AuditLog, 'record'>;

export interface ApiOptions {
  tokens: Pick<TokenStore, 'verify'>;
  audit: AuditSink;
  bodyLimitBytes: number;
  /** Per token; and per client address for requests without a valid token or refused for who sent them. */
  rateLimitPerMinute: number;
  tls?: { certFile: string; keyFile: string; clientCaFile?: string };
  /** Where request errors are logged; per-request lines are off (the audit log has those). */
  logger?: FastifyBaseLogger;
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export async function createApi(o: ApiOptions): Promise<FastifyInstance> {
  const https = o.tls
    ? {
        cert: readFileSync(o.tls.certFile),
        key: readFileSync(o.tls.keyFile),
        ...(o.tls.clientCaFile
          ? { ca: readFileSync(o.tls.clientCaFile), requestCert: true, rejectUnauthorized: true }
          : {}),
      }
    : null;
  const app = Fastify({
    ...(https ? { https } : {}),
    ...(o.logger
      ? { loggerInstance: o.logger, logController: new LogController({ disableRequestLogging: true }) }
      : { logger: false }),
    bodyLimit: o.bodyLimitBytes,
    routerOptions: { maxParamLength: 200 },
    genReqId: () => randomUUID(),
    // Unknown fields are errors, not silently dropped.
    ajv: { customOptions: { removeAdditional: false, allErrors: false } },
  }) as unknown as FastifyInstance;

  app.decorateRequest('principal', null);
  app.decorateRequest('auditDenied', false);
  app.decorateRequest('auditTarget', null);
  app.decorateRequest('auditReceived', false);
  app.decorateRequest('auditOutcomeTried', false);

  // Handlers' answers are sent as they are: a response schema documents them (and the
  // contract tests hold it to them) but never drops or coerces a field on the way out.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'keizoku API',
        version: '1',
        description:
          'keizokud: the VMs, hosts, jobs, decisions, drills, schedules, tiers, DRS, failover and audit log of a keizoku cluster. Errors are {"error": {"code", "message"}}; every response has an x-request-id header. See docs/api.md.',
        license: { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' },
      },
      // Relative: the keizokud that serves this document (its api.listen, over TLS when configured).
      servers: [{ url: '/', description: 'the keizokud that serves this document' }],
      tags: [
        { name: 'hosts', description: 'Hypervisor hosts: health, capacity, maintenance' },
        { name: 'vms', description: 'VMs: state, policy, start, shutdown, destroy' },
        { name: 'jobs', description: 'Migrations, power actions and evacuations, run under the VM lock' },
        { name: 'decisions', description: 'Why a VM moved, and why there' },
        { name: 'schedules', description: 'VM schedules, maintenance windows and scheduled drills' },
        { name: 'drills', description: 'BCP drills measured by the probes, with reports' },
        { name: 'tiers', description: 'Tier compliance and monthly availability' },
        { name: 'drs', description: 'Load rebalancing: recommendations, applying them, explanations' },
        { name: 'ha', description: 'Automatic failover: state, pause, what-if plans' },
        { name: 'probes', description: 'keizoku-probe agents: registration and outage reports' },
        { name: 'audit', description: 'The audit log of every mutating request' },
      ],
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'kz_… API token' } },
      },
      security: [{ bearer: [] }],
    },
  });

  // The limiter is called from the auth hook below, not hooked onto each route: Fastify runs
  // app hooks before route hooks, so a route's limiter would never see a request the auth
  // hook refused. An allowed request counts against its token's budget; a request with no
  // valid token, or refused for who sent it, against its client address (an IPv6 /64),
  // whatever token it shows. Public routes have a budget per address of their own, so that a
  // flood of bad tokens does not fail the readiness checks sent from the same address.
  await app.register(rateLimit, { global: false, max: o.rateLimitPerMinute, timeWindow: 60_000 });
  const byToken = app.createRateLimit({ keyGenerator: (req) => `token:${req.principal?.id}` });
  const byAddress = app.createRateLimit({ keyGenerator: (req) => `addr:${normalizeIP(req.ip)}` });
  const byPublic = app.createRateLimit({ keyGenerator: (req) => `public:${normalizeIP(req.ip)}` });
  const charge = async (req: FastifyRequest, reply: FastifyReply, limiter: typeof byToken) => {
    const r = await limiter(req);
    if (r.isAllowed || !r.isExceeded) return;
    reply.header('retry-after', r.ttlInSeconds);
    throw new ApiError(
      429,
      'rate_limited',
      `more than ${r.max} requests a minute; retry in ${r.ttlInSeconds} s`,
    );
  };
  const refuse = async (req: FastifyRequest, reply: FastifyReply, e: ApiError) => {
    req.auditDenied = true;
    await charge(req, reply, byAddress);
    throw e;
  };

  app.addHook('onRequest', async (req, reply) => {
    const cfg = req.routeOptions.config;
    if (cfg.public) return charge(req, reply, byPublic);
    const auth = req.headers.authorization;
    const m = typeof auth === 'string' ? /^Bearer (\S+)$/.exec(auth) : null;
    const principal = m ? await o.tokens.verify(m[1]!) : null;
    if (!principal)
      return refuse(
        req,
        reply,
        new DeniedError(
          401,
          'unauthenticated',
          m ? 'the token is unknown or revoked' : 'no bearer token given',
        ),
      );
    req.principal = principal;
    if (cfg.action) {
      const vm = cfg.vmParam ? (req.params as Record<string, string>)[cfg.vmParam] : undefined;
      const d = cfg.vmFromHandler
        ? mayOnSomeVm(principal, cfg.action)
          ? 'allow'
          : 'deny'
        : decide(principal, cfg.action, vm);
      if (d === 'hide') return refuse(req, reply, new DeniedError(404, 'not_found', `no VM named "${vm}"`));
      if (d === 'deny')
        return refuse(
          req,
          reply,
          new DeniedError(403, 'forbidden', `role ${principal.role} may not ${cfg.action}`),
        );
    }
    await charge(req, reply, byToken);
  });

  // Stage one of the audit: the request is recorded before anything acts on it.
  app.addHook('preHandler', async (req) => {
    if (!MUTATING.has(req.method) || req.is404 || req.routeOptions.config?.audit === false) return;
    try {
      await o.audit.record(entryOf(req, 'received', null, null));
    } catch (e) {
      req.log.error({ err: (e as Error).message, requestId: req.id }, 'audit log not written');
      throw new ApiError(503, 'audit_unavailable', 'the audit log cannot be written, so nothing was done');
    }
    req.auditReceived = true;
  });

  // Stage two: the outcome, once per request.
  app.addHook('onSend', async (req, reply, payload) => {
    // The id the audit entries carry, so a client can find its request there.
    reply.header('x-request-id', req.id);
    if (!MUTATING.has(req.method) || req.auditOutcomeTried) return payload;
    if (req.routeOptions.config?.audit === false && !req.auditDenied && reply.statusCode < 400)
      return payload;
    req.auditOutcomeTried = true;
    try {
      await o.audit.record(outcomeOf(req, reply, payload));
      return payload;
    } catch (e) {
      req.log.error({ err: (e as Error).message, requestId: req.id }, 'audit outcome not written');
      // A refusal or a failure stands as it is: nothing was done. A success must not look like one.
      if (reply.statusCode >= 400) return payload;
      reply.code(500).type('application/json; charset=utf-8');
      const err = new ApiError(
        500,
        'audit_failed',
        'the request was carried out but its outcome could not be written to the audit log; check the state before retrying',
      );
      return JSON.stringify(errorBody(err, 500));
    }
  });

  app.setErrorHandler((err: FrameworkError, req, reply) => {
    const status = err.statusCode ?? 500;
    if (err instanceof DeniedError) req.auditDenied = true;
    if (status >= 500) req.log.error({ err: err.message }, 'request failed');
    reply.status(status).send(errorBody(err, status));
  });
  app.setNotFoundHandler(async (req, reply) =>
    reply
      .status(404)
      .send({ error: { code: 'not_found', message: `no route ${req.method} ${safeUrl(req.url)}` } }),
  );

  app.get('/v1/openapi.json', { config: { public: true }, schema: { hide: true } }, async () =>
    app.swagger(),
  );
  app.get('/healthz', { config: { public: true }, schema: { hide: true } }, async () => ({ status: 'ok' }));
  return app;
}

function safeUrl(url: string): string {
  return url.length > 200 ? `${url.slice(0, 200)}…` : url;
}

function entryOf(
  req: FastifyRequest,
  outcome: AuditOutcome,
  status: number | null,
  message: string | null,
): AuditInput {
  const cfg = req.routeOptions?.config ?? {};
  const params = (req.params ?? {}) as Record<string, string>;
  const p = req.principal;
  return {
    actor: p?.id ?? 'anonymous',
    actorName: p?.name ?? 'anonymous',
    role: p?.role ?? null,
    action: cfg.action ?? `${req.method} ${safeUrl(req.routeOptions?.url ?? req.url)}`,
    target: req.auditTarget ?? (cfg.vmParam ? params[cfg.vmParam] : params.name) ?? null,
    params: {
      path: Object.keys(params).length > 0 ? params : null,
      body: typeof req.body === 'object' ? req.body : null,
      query: req.query ?? null,
    },
    outcome,
    status,
    message,
    requestId: req.id,
    remote: req.ip,
  };
}

function outcomeOf(req: FastifyRequest, reply: FastifyReply, payload: unknown): AuditInput {
  const status = reply.statusCode;
  const outcome: AuditOutcome = req.auditDenied
    ? 'denied'
    : status < 400
      ? 'succeeded'
      : status < 500
        ? 'rejected'
        : 'failed';
  let message: string | null = null;
  if (status >= 400 && typeof payload === 'string') {
    try {
      message = (JSON.parse(payload) as { error?: { message?: string } }).error?.message ?? null;
    } catch {
      message = null;
    }
  }
  return entryOf(req, outcome, status, message);
}
