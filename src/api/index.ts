import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { ApiConfig } from '../config/index.ts';
import type { TokenStore } from './auth/tokens.ts';
import type { ApiDeps } from './deps.ts';
import { auditRoutes } from './routes/audit.ts';
import { hostRoutes } from './routes/hosts.ts';
import { probeRoutes } from './routes/probes.ts';
import { vmRoutes } from './routes/vms.ts';
import { createApi } from './server.ts';

export { ROLES, type Role } from './auth/rbac.ts';
export { TokenError, TokenStore } from './auth/tokens.ts';
export type { ApiDeps, PolicyOverride, VmPolicyView } from './deps.ts';

/** Route groups added by other parts of keizokud (jobs, drills) register through this. */
export type RouteGroup = (app: FastifyInstance) => void;

/** The whole API, ready to listen. */
export async function buildApi(
  config: ApiConfig,
  tokens: TokenStore,
  deps: ApiDeps,
  extra: RouteGroup[] = [],
  /** The daemon's logger: 5xx errors go there (never headers nor tokens). */
  log?: FastifyBaseLogger,
): Promise<FastifyInstance> {
  const app = await createApi({
    ...(log ? { logger: log } : {}),
    tokens,
    audit: deps.audit,
    bodyLimitBytes: config.bodyLimitBytes,
    rateLimitPerMinute: config.rateLimitPerMinute,
    ...(config.tls ? { tls: config.tls } : {}),
  });
  hostRoutes(app, deps);
  vmRoutes(app, deps);
  auditRoutes(app, deps);
  probeRoutes(app, deps);
  for (const group of extra) group(app);
  return app;
}
