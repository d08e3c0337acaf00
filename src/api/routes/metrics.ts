import type { FastifyInstance } from 'fastify';

/**
 * Prometheus /metrics on the API listener, when no separate `metrics.listen` is configured.
 * Its labels name every VM and host, so it needs a token whose role may read metrics (admin,
 * operator, viewer), as the Kubernetes API server puts /metrics behind authorisation.
 */
export function metricsRoute(app: FastifyInstance, serve: () => Promise<string>, contentType: string): void {
  app.get('/metrics', { config: { action: 'metrics.read' }, schema: { hide: true } }, async (_req, reply) =>
    reply.type(contentType).send(await serve()),
  );
}
