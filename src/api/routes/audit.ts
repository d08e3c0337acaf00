import type { FastifyInstance } from 'fastify';
import type { AuditOutcome } from '../../store/audit.ts';
import type { ApiDeps } from '../deps.ts';

export function auditRoutes(app: FastifyInstance, d: ApiDeps): void {
  app.get(
    '/v1/audit',
    {
      config: { action: 'audit.read' },
      schema: {
        tags: ['audit'],
        summary: 'Audit entries, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            since: { type: 'integer', minimum: 0, maximum: 9_999_999_999_999, description: 'epoch ms' },
            until: { type: 'integer', minimum: 0, maximum: 9_999_999_999_999, description: 'epoch ms' },
            actor: { type: 'string', maxLength: 100 },
            action: { type: 'string', maxLength: 100 },
            target: { type: 'string', maxLength: 100 },
            outcome: { type: 'string', enum: ['received', 'succeeded', 'failed', 'denied', 'rejected'] },
            limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 100 },
          },
        },
      },
    },
    async (req) => {
      const q = req.query as {
        since?: number;
        until?: number;
        actor?: string;
        action?: string;
        target?: string;
        outcome?: AuditOutcome;
        limit: number;
      };
      const entries = await d.audit.query({
        ...(q.since !== undefined ? { sinceMs: q.since } : {}),
        ...(q.until !== undefined ? { untilMs: q.until } : {}),
        ...(q.actor !== undefined ? { actor: q.actor } : {}),
        ...(q.action !== undefined ? { action: q.action } : {}),
        ...(q.target !== undefined ? { target: q.target } : {}),
        ...(q.outcome !== undefined ? { outcome: q.outcome } : {}),
        limit: q.limit,
      });
      return { entries };
    },
  );
}
