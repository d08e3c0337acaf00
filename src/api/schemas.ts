/** JSON schemas shared by routes (also what the OpenAPI document shows). */

export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';

export const nameParam = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: NAME_PATTERN } },
} as const;

export const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const;

const nullableNumber = { type: ['number', 'null'] } as const;

export const policySchema = {
  type: ['object', 'null'],
  properties: {
    tier: { type: 'string' },
    limits: { type: ['string', 'null'] },
    haPriority: { type: 'integer' },
    homeSite: { type: ['string', 'null'] },
    source: { type: 'string' },
  },
} as const;

export const vmSchema = {
  type: 'object',
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
