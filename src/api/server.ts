import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { AuditLog, AuditOutcome } from '../store/audit.ts';
import { type Action, decide, type Principal } from './auth/rbac.ts';
import type { TokenStore } from './auth/tokens.ts';
import { ApiError, errorBody, type FrameworkError } from './errors.ts';

/**
 * The REST API's frame: TLS (optionally mutual), bearer-token authentication, role checks
 * declared per route (`config.action`, and `config.vmParam` for routes on one VM), rate and
 * size limits, an OpenAPI document, and one audit entry for every mutating request, allowed
 * or not, written before the response leaves.
 */

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** Set when the request was refused for who made it (401/403, or a hidden 404). */
    auditDenied: boolean;
  }
  interface FastifyContextConfig {
    action?: Action;
    /** The route parameter that names the VM the action is on. */
    vmParam?: string;
    /** Routes open without a token (health, metrics). */
    public?: boolean;
    /**
     * `false`: a success is routine, not an operator's action (a probe agent's registration every
     * few seconds), and is not audited (the route counts it in a metric); refusals still are.
     */
    audit?: false;
  }
}

export interface ApiOptions {
  tokens: TokenStore;
  audit: AuditLog;
  bodyLimitBytes: number;
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

  await app.register(swagger, {
    openapi: {
      info: { title: 'keizoku API', version: '1' },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'kz_… API token' } },
      },
      security: [{ bearer: [] }],
    },
  });

  await app.register(rateLimit, {
    max: o.rateLimitPerMinute,
    timeWindow: 60_000,
    keyGenerator: (req) => {
      const auth = req.headers.authorization;
      return typeof auth === 'string' ? auth.slice(0, 20) : req.ip;
    },
    errorResponseBuilder: (_req, ctx) =>
      new ApiError(429, 'rate_limited', `more than ${ctx.max} requests a minute; retry in ${ctx.after}`),
  });

  app.addHook('onRequest', async (req) => {
    const cfg = req.routeOptions.config;
    if (cfg.public) return;
    const auth = req.headers.authorization;
    const m = typeof auth === 'string' ? /^Bearer (\S+)$/.exec(auth) : null;
    const principal = m ? await o.tokens.verify(m[1]!) : null;
    if (!principal) {
      req.auditDenied = true;
      throw new ApiError(
        401,
        'unauthenticated',
        m ? 'the token is unknown or revoked' : 'no bearer token given',
      );
    }
    req.principal = principal;
    if (!cfg.action) return;
    const vm = cfg.vmParam ? (req.params as Record<string, string>)[cfg.vmParam] : undefined;
    const d = decide(principal, cfg.action, vm);
    if (d === 'hide') {
      req.auditDenied = true;
      throw new ApiError(404, 'not_found', `no VM named "${vm}"`);
    }
    if (d === 'deny') {
      req.auditDenied = true;
      throw new ApiError(403, 'forbidden', `role ${principal.role} may not ${cfg.action}`);
    }
  });

  app.addHook('onSend', async (req, reply, payload) => {
    // The id the audit entry carries, so a client can find its request there.
    reply.header('x-request-id', req.id);
    if (!MUTATING.has(req.method)) return payload;
    if (req.routeOptions.config?.audit === false && !req.auditDenied && reply.statusCode < 400)
      return payload;
    await auditRequest(o.audit, req, reply, payload);
    return payload;
  });

  app.setErrorHandler((err: FrameworkError, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) req.log.error({ err: err.message }, 'request failed');
    reply.status(status).send(errorBody(err, status));
  });
  app.setNotFoundHandler({ preHandler: app.rateLimit ? app.rateLimit() : undefined }, async (req, reply) =>
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

async function auditRequest(
  audit: AuditLog,
  req: FastifyRequest,
  reply: FastifyReply,
  payload: unknown,
): Promise<void> {
  const status = reply.statusCode;
  const outcome: AuditOutcome = req.auditDenied
    ? 'denied'
    : status < 400
      ? 'succeeded'
      : status < 500
        ? 'rejected'
        : 'failed';
  const cfg = req.routeOptions?.config ?? {};
  const params = (req.params ?? {}) as Record<string, string>;
  const p = req.principal;
  let message: string | null = null;
  if (status >= 400 && typeof payload === 'string') {
    try {
      message = (JSON.parse(payload) as { error?: { message?: string } }).error?.message ?? null;
    } catch {
      message = null;
    }
  }
  await audit.record({
    actor: p?.id ?? 'anonymous',
    actorName: p?.name ?? 'anonymous',
    role: p?.role ?? null,
    action: cfg.action ?? `${req.method} ${safeUrl(req.routeOptions?.url ?? req.url)}`,
    target: cfg.vmParam ? (params[cfg.vmParam] ?? null) : (params.name ?? null),
    params: { body: typeof req.body === 'object' ? req.body : null, query: req.query ?? null },
    outcome,
    status,
    message,
    requestId: req.id,
    remote: req.ip,
  });
}
