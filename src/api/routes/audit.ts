import type { FastifyInstance } from 'fastify';
import type { AuditOutcome } from '../../store/audit.ts';
import type { ApiDeps } from '../deps.ts';
import { errorResponses } from '../schemas.ts';

const auditEntrySchema = {
  type: 'object',
  required: ['time', 'actor', 'actorName', 'role', 'action', 'target', 'outcome', 'status', 'message'],
  properties: {
    time: { type: 'string', description: 'ISO 8601' },
    actor: { type: 'string', description: 'token id, anonymous, controller or local:<unix user>' },
    actorName: { type: 'string' },
    role: { type: ['string', 'null'] },
    action: { type: 'string' },
    target: { type: ['string', 'null'] },
    params: { description: 'the request (path, body, query) with secret-looking values replaced' },
    outcome: { type: 'string', enum: ['received', 'succeeded', 'failed', 'denied', 'rejected'] },
    status: { type: ['integer', 'null'] },
    message: { type: ['string', 'null'] },
    requestId: { type: ['string', 'null'] },
    remote: { type: ['string', 'null'] },
  },
} as const;

export function auditRoutes(app: FastifyInstance, d: ApiDeps): void {
  app.get(
    '/v1/audit',
    {
      config: { action: 'audit.read' },
      schema: {
        tags: ['audit'],
        operationId: 'listAudit',
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
        response: {
          200: {
            description: 'The matching entries',
            type: 'object',
            required: ['entries'],
            properties: { entries: { type: 'array', items: auditEntrySchema } },
          },
          ...errorResponses,
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
