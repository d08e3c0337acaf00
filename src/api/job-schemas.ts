import { POWER_KINDS } from '../jobs/power.ts';
import { requesterSchema } from './schemas.ts';

/**
 * Jobs as the API shows them (src/jobs/views.ts): one object for every kind, `kind` saying
 * which of the kind-specific fields are there. Also the answer of a maintenance request.
 */

const nullable = (type: string) => ({ type: [type, 'null'] }) as const;

const progressSchema = {
  type: ['object', 'null'],
  description: "A migration's progress while it runs (null for other kinds and before it starts)",
  required: [
    'phase',
    'percent',
    'dataTotalBytes',
    'dataProcessedBytes',
    'dataRemainingBytes',
    'iteration',
    'dirtyRateBytesPerSec',
    'elapsedMs',
  ],
  properties: {
    phase: {
      type: 'string',
      enum: ['queued', 'checking', 'waiting-for-slot', 'migrating', 'post-copy', 'measuring', 'done'],
    },
    percent: { type: 'number' },
    dataTotalBytes: { type: 'number' },
    dataProcessedBytes: { type: 'number' },
    dataRemainingBytes: { type: 'number' },
    iteration: { type: 'number' },
    dirtyRateBytesPerSec: { type: 'number' },
    elapsedMs: { type: 'number' },
  },
} as const;

const probeWindowSchema = {
  type: 'object',
  description: 'What one probe agent saw of the VM during the move (agents may add fields)',
  additionalProperties: true,
  required: ['probe', 'site', 'sent', 'lost', 'lossRate', 'outageMs'],
  properties: {
    probe: { type: 'string' },
    site: { type: 'string' },
    sent: { type: 'number' },
    lost: { type: 'number' },
    lossRate: { type: 'number' },
    rttMinMs: nullable('number'),
    rttMaxMs: nullable('number'),
    rttAvgMs: nullable('number'),
    outageMs: { type: 'number' },
  },
} as const;

const migrationResultSchema = {
  type: 'object',
  title: 'migration result',
  required: ['outcome', 'reason', 'vm', 'from', 'to', 'host', 'checks', 'finishedAt', 'postCopy', 'probe'],
  properties: {
    outcome: { type: 'string', enum: ['succeeded', 'failed', 'aborted', 'cancelled', 'refused'] },
    reason: nullable('string'),
    vm: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    host: { ...nullable('string'), description: 'where the VM runs now, as libvirt reports it' },
    checks: {
      type: 'array',
      items: {
        type: 'object',
        required: ['check', 'ok', 'detail'],
        properties: {
          check: { type: 'string', description: 'placement, cpu, storage, networks, …' },
          ok: { type: 'boolean' },
          detail: { type: 'string' },
          disk: { type: 'string', description: "storage checks: the disk's target dev (vda)" },
          copy: { type: 'boolean', description: 'storage checks: the disk is copied to the destination' },
        },
      },
    },
    startedAt: nullable('number'),
    finishedAt: { type: 'number' },
    checkMs: nullable('number'),
    totalMs: nullable('number'),
    libvirtDowntimeMs: nullable('number'),
    dataTransferredBytes: nullable('number'),
    iterations: nullable('number'),
    postCopy: { type: 'boolean' },
    settings: {
      type: ['object', 'null'],
      description:
        'What the move ran with: the migration defaults, the cross-site (WAN) rule for a move between sites, and the request overrides',
      properties: {
        bandwidthMiBs: { type: 'number', description: 'cap in MiB/s; 0: none' },
        compression: { type: 'array', items: { type: 'string' } },
        parallelConnections: { type: 'number', description: '0: one connection' },
        maxDowntimeMs: { type: 'number', description: 'the limit at the start of the move' },
        maxDowntimeSteps: {
          type: 'array',
          items: {
            type: 'object',
            properties: { afterIterations: { type: 'number' }, maxDowntimeMs: { type: 'number' } },
          },
        },
        autoConverge: { type: 'boolean' },
        postCopyAfterIterations: { type: 'number' },
        postCopyAfterMs: { type: 'number' },
        timeoutMs: { type: 'number' },
        crossSite: {
          type: ['object', 'null'],
          description: 'null for a move within one site',
          properties: {
            fromSite: { type: 'string' },
            toSite: { type: 'string' },
            rule: {
              ...nullable('string'),
              description: 'the rule that applied (migration.crossSite[N]); null: none fit',
            },
          },
        },
      },
    },
    probe: { type: 'array', items: probeWindowSchema },
    session: {
      type: ['object', 'null'],
      description: 'A TCP session kept open through the move, when one was checked',
      properties: {
        survived: { type: 'boolean' },
        heartbeats: { type: 'number' },
        echoed: { type: 'number' },
        longestGapMs: { type: 'number' },
        reason: { type: 'string' },
      },
    },
    downtimeRaises: {
      type: 'array',
      description: 'each raise of the switch-over limit (migration.maxDowntimeSteps)',
      items: {
        type: 'object',
        properties: {
          iteration: { type: 'number' },
          maxDowntimeMs: { type: 'number' },
          afterMs: { type: 'number', description: 'since the move started' },
        },
      },
    },
    sessionUnchecked: {
      ...nullable('string'),
      description: 'why no TCP session was checked although the policy asks for one (it could not connect)',
    },
    guestResets: {
      type: 'number',
      description:
        "resets of the guest on the destination (libvirt's reboot event) from the start of the move until its probe window closed",
    },
    reconciled: { type: 'boolean', description: 'finished by reconciling with libvirt after a restart' },
  },
} as const;

const actionResultSchema = {
  type: 'object',
  title: 'power action result',
  required: ['outcome', 'reason', 'vm', 'host', 'finishedAt'],
  properties: {
    outcome: { type: 'string', enum: ['succeeded', 'failed', 'refused', 'cancelled'] },
    reason: nullable('string'),
    vm: { type: 'string' },
    host: { type: 'string' },
    startedAt: { type: 'number', description: "when the run began, after the VM's lock was taken" },
    finishedAt: { type: 'number' },
  },
} as const;

const evacuationResultSchema = {
  type: 'object',
  title: 'evacuation result',
  required: ['outcome', 'reason', 'moved', 'notMoved', 'finishedAt'],
  properties: {
    outcome: { type: 'string', enum: ['succeeded', 'failed'] },
    reason: nullable('string'),
    moved: { type: 'array', items: { type: 'string' } },
    notMoved: {
      type: 'array',
      items: {
        type: 'object',
        required: ['vm', 'reason'],
        properties: { vm: { type: 'string' }, reason: { type: 'string' } },
      },
    },
    finishedAt: { type: 'number' },
  },
} as const;

export const jobSchema = {
  type: 'object',
  description:
    'A job: a migration, a power action (start, shutdown, destroy, define, undefine) or the parent job of a maintenance enter or exit (evacuate)',
  required: [
    'id',
    'kind',
    'vm',
    'reason',
    'requestedBy',
    'state',
    'createdAt',
    'decisionId',
    'progress',
    'result',
  ],
  properties: {
    id: {
      type: 'string',
      description: 'mig-<uuid>, evac-<uuid>, or a power job: <kind>-<uuid> (start-, raise-cpu-cap-, …)',
    },
    // Every kind the job system runs: a DRS cap raise and a restart elsewhere are power jobs too.
    kind: { type: 'string', enum: ['migrate', ...POWER_KINDS, 'evacuate'] },
    vm: { ...nullable('string'), description: 'null for an evacuation' },
    host: { type: 'string', description: "power actions and evacuations: the VM's or the evacuated host" },
    from: { type: 'string', description: 'migrations and power actions' },
    to: { type: 'string', description: 'migrations and power actions' },
    action: { type: 'string', enum: ['enter', 'exit'], description: 'evacuations' },
    jobs: { type: 'array', items: { type: 'string' }, description: "evacuations: their moves' job ids" },
    reason: { type: 'string', description: 'why the job exists (api, schedule, maintenance, drill, …)' },
    requestedBy: requesterSchema,
    state: {
      type: 'string',
      enum: ['waiting', 'active', 'succeeded', 'failed', 'aborted', 'cancelled', 'refused', 'unknown'],
    },
    createdAt: { type: 'number' },
    decisionId: { ...nullable('string'), description: 'the decision the job carries out' },
    progress: progressSchema,
    result: {
      description: 'Once the job ended: its outcome (null before)',
      anyOf: [migrationResultSchema, actionResultSchema, evacuationResultSchema, { type: 'null' }],
    },
  },
} as const;

export const maintenanceAnswerSchema = {
  type: 'object',
  required: ['host', 'maintenance', 'jobs', 'job', 'decision'],
  properties: {
    host: { type: 'string' },
    maintenance: { type: 'boolean', description: 'whether the host is marked in maintenance now' },
    jobs: { type: 'array', items: jobSchema, description: 'the moves' },
    job: {
      ...nullable('string'),
      description: 'the evac- parent job that owns the moves (null: nothing moves)',
    },
    decision: { type: 'string' },
    plan: {
      type: 'object',
      required: ['host', 'ok', 'moves'],
      properties: {
        host: { type: 'string' },
        ok: { type: 'boolean' },
        moves: {
          type: 'array',
          items: {
            type: 'object',
            required: ['vm', 'to', 'score'],
            properties: { vm: { type: 'string' }, to: { type: 'string' }, score: { type: 'number' } },
          },
        },
      },
    },
  },
} as const;
