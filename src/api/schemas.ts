/**
 * JSON schemas shared by routes: they validate requests and are what the OpenAPI document
 * shows. Response schemas describe what the handlers return (the API serialises with
 * JSON.stringify, so a schema never drops or reshapes a field); the contract tests check
 * every response against them, so they stay true.
 */

export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';

export const nameParam = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: NAME_PATTERN } },
} as const;

export const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'e.g. invalid_request, not_found, conflict, rate_limited' },
        message: { type: 'string', description: 'what is wrong and where; never a stack trace' },
      },
    },
  },
} as const;

/** The error answers every route may give (the auth hook, limits and the audit apply to all). */
export const errorResponses = {
  '4xx': {
    ...errorSchema,
    description:
      'Refused: 400 invalid request, 401 no or unknown token, 403 the role may not, 404 not found (or hidden from the role), 409 the state does not allow it, 413 body too large, 415 not JSON, 429 rate limited',
  },
  '5xx': {
    ...errorSchema,
    description:
      'Failed: 500 audit_failed (done, but not audited) or internal, 502 libvirt failed, 503 audit_unavailable (nothing done) or host not connected',
  },
} as const;

/** The automatic failover pause (store/ha.ts HaPause). */
export const haPauseSchema = {
  type: 'object',
  required: ['until', 'since', 'by', 'reason'],
  properties: {
    until: { type: 'number', description: 'when the pause ends by itself (ms since the epoch)' },
    since: { type: 'number' },
    by: { type: 'string', description: 'who paused' },
    reason: { type: ['string', 'null'] },
  },
} as const;

/** The principal a job, decision or drill was requested by. */
export const requesterSchema = {
  type: 'object',
  required: ['id', 'name'],
  properties: { id: { type: 'string' }, name: { type: 'string' } },
} as const;

const nullableNumber = { type: ['number', 'null'] } as const;

export const policySchema = {
  type: ['object', 'null'],
  description: 'The tier, limits and HA priority in force (null: the VM has no tier)',
  required: ['tier', 'limits', 'haPriority', 'homeSite', 'recoverySite', 'source'],
  properties: {
    tier: { type: 'string' },
    limits: { type: ['string', 'null'] },
    haPriority: { type: 'integer' },
    homeSite: { type: ['string', 'null'] },
    recoverySite: {
      type: ['string', 'null'],
      description: "where the tier's cross-site mechanisms take the VM (vms[].recoverySite)",
    },
    source: { type: 'string', enum: ['config', 'override'] },
  },
} as const;

export const vmSchema = {
  type: 'object',
  required: [
    'name',
    'uuid',
    'host',
    'site',
    'state',
    'vcpus',
    'memoryMiB',
    'cpuUsage',
    'addresses',
    'labels',
    'policy',
  ],
  properties: {
    name: { type: 'string' },
    uuid: { type: 'string' },
    host: { type: 'string' },
    site: { type: ['string', 'null'] },
    state: { type: 'string' },
    vcpus: { type: 'integer' },
    memoryMiB: { type: 'integer' },
    cpuUsage: nullableNumber,
    addresses: { type: 'array', items: { type: 'string' } },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    policy: policySchema,
    /** Present while the VM is active on more than one host: each copy with its state. */
    conflict: {
      type: 'array',
      items: { type: 'object', properties: { host: { type: 'string' }, state: { type: 'string' } } },
    },
  },
} as const;

export const hostSchema = {
  type: 'object',
  required: [
    'name',
    'site',
    'health',
    'healthSince',
    'evidence',
    'maintenance',
    'cpus',
    'memoryMiB',
    'cpuUtilisation',
    'memoryUsedMiB',
    'observedAt',
    'vms',
  ],
  properties: {
    name: { type: 'string' },
    site: { type: 'string' },
    health: { type: 'string' },
    healthSince: nullableNumber,
    evidence: {
      type: ['object', 'null'],
      properties: {
        connected: { type: 'boolean' },
        lastCallAgeMs: nullableNumber,
        icmp: { type: ['boolean', 'null'] },
        witnessesUp: { type: 'integer' },
        witnessesDown: { type: 'integer' },
        fenced: { type: 'boolean' },
      },
    },
    maintenance: { type: 'boolean' },
    cpus: { type: 'integer' },
    memoryMiB: { type: 'integer' },
    cpuUtilisation: nullableNumber,
    memoryUsedMiB: nullableNumber,
    observedAt: nullableNumber,
    vms: { type: 'array', items: { type: 'string' } },
    /** For a host that is not up: the VMs its last successful observation listed. */
    lastKnownVms: { type: 'array', items: { type: 'string' } },
  },
} as const;
