/** Errors the API answers with: `{ error: { code, message } }`, never a stack trace. */

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A refusal for who is asking (403, or the 404 that hides a VM from a vm-admin): audited as
 * `denied`, wherever it is raised, the auth hook or a handler.
 */
export class DeniedError extends ApiError {
  override name = 'DeniedError';
}

export interface FrameworkError extends Error {
  statusCode?: number;
  code?: string;
  validation?: { instancePath?: string; message?: string; params?: Record<string, unknown> }[];
  validationContext?: string;
}

export function errorBody(err: FrameworkError, status: number): { error: { code: string; message: string } } {
  if (err instanceof ApiError) return { error: { code: err.code, message: err.message } };
  if (err.validation && err.validation.length > 0) {
    const v = err.validation[0]!;
    const where = `${err.validationContext ?? 'request'}${(v.instancePath ?? '').replaceAll('/', '.')}`;
    const extra = v.params?.additionalProperty
      ? ` ("${String(v.params.additionalProperty).slice(0, 60)}")`
      : '';
    return { error: { code: 'invalid_request', message: `${where}: ${v.message ?? 'invalid'}${extra}` } };
  }
  if (status >= 500) return { error: { code: 'internal', message: 'internal error (see keizokud log)' } };
  // Fastify's own 4xx (bad JSON, unsupported media type, body too large) carry clear messages.
  const code = (err.code ?? 'bad_request').replace(/^FST_ERR_/, '').toLowerCase();
  return { error: { code, message: err.message } };
}
