import { z } from 'zod';
import type { ConfigIssue } from './errors.ts';
import { name, positiveInt, text } from './fields.ts';

/**
 * Schemas of the shipped policy data: `policies/tiers.yaml` (the BCP tiers and the data
 * classes of the national guideline) and `policies/limits.yaml` (named resource-limit profiles).
 */

/**
 * What keizoku does for a VM of a tier; a tier names the mechanisms it relies on, and only
 * those may act on its VMs. The cross-site ones say whether and how a VM may leave its home
 * site: moved live, restarted, or rebalanced by DRS onto its recovery site (vms[].recoverySite).
 */
export const MECHANISMS = [
  'resource-limits',
  'failover',
  'live-migration',
  'drs',
  'cross-site-live-migration',
  'cross-site-failover',
  /** DRS may move a VM of the tier to its recovery site (not built yet: a tier listing it is not met). */
  'cross-site-drs',
] as const;
export type Mechanism = (typeof MECHANISMS)[number];

/** Off-site copy classes ア..オ of the guideline (standard spec 4.6), as a..e. */
export const DATA_CLASS_IDS = ['a', 'b', 'c', 'd', 'e'] as const;
export type DataClassId = (typeof DATA_CLASS_IDS)[number];

const dataClassSchema = z.strictObject({
  labelJa: text('the class letter in katakana, like ア'),
  rpo: text('a description of the data loss the class accepts'),
  /** Approximate data loss the class accepts, in hours (0 = none). */
  rpoHours: z.number().min(0),
});

const outageMs = z.int().min(0).optional();

const objectivesSchema = z.strictObject({
  /** The longest outage (通信断) a move of this mechanism may cause, per mechanism. */
  maxOutageMs: z.strictObject({
    'resource-limits': outageMs,
    failover: outageMs,
    'live-migration': outageMs,
    drs: outageMs,
    'cross-site-live-migration': outageMs,
    'cross-site-failover': outageMs,
    'cross-site-drs': outageMs,
  }),
  rtoSeconds: z.int().min(0),
  monthlyAvailabilityPercent: z.number().gt(0).lte(100),
});

const tierSchema = z.strictObject({
  id: name,
  label: text('a label in English'),
  labelJa: text('a label in Japanese'),
  description: z.string().optional(),
  mechanisms: z.array(z.enum(MECHANISMS)).min(1),
  /** Sites the tier's mechanisms need (2 for cross-site moves). */
  minSites: z.int().min(1).default(1),
  dataClass: z.enum(DATA_CLASS_IDS),
  objectives: objectivesSchema,
});

export const tiersPolicySchema = z.strictObject({
  dataClasses: z.strictObject({
    a: dataClassSchema,
    b: dataClassSchema,
    c: dataClassSchema,
    d: dataClassSchema,
    e: dataClassSchema,
  }),
  tiers: z.array(tierSchema).min(1),
});

export type DataClass = z.output<typeof dataClassSchema>;
export type TierObjectives = z.output<typeof objectivesSchema>;
export type Tier = z.output<typeof tierSchema>;
export type TiersPolicy = z.output<typeof tiersPolicySchema>;

/** The tier's mechanisms that act across sites: a VM of such a tier needs a recovery site. */
export function crossSiteMechanisms(tier: { mechanisms: readonly Mechanism[] }): Mechanism[] {
  return tier.mechanisms.filter((m) => m.startsWith('cross-site-'));
}

/** Checks across tiers: unique ids; outage figures only for mechanisms the tier uses. */
export function checkTiers(policy: TiersPolicy, file: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Map<string, number>();
  policy.tiers.forEach((tier, i) => {
    const first = seen.get(tier.id);
    if (first !== undefined) {
      issues.push({
        file,
        path: ['tiers', i, 'id'],
        message: `duplicate tier id "${tier.id}" (also tiers[${first}])`,
      });
    } else seen.set(tier.id, i);
    for (const [mechanism, ms] of Object.entries(tier.objectives.maxOutageMs)) {
      if (ms === undefined || tier.mechanisms.includes(mechanism as Mechanism)) continue;
      issues.push({
        file,
        path: ['tiers', i, 'objectives', 'maxOutageMs', mechanism],
        message: `"${mechanism}" is not one of this tier's mechanisms (${tier.mechanisms.join(', ')})`,
      });
    }
  });
  return issues;
}

const bytes = positiveInt.optional();

const cpuSchema = z
  .strictObject({
    /** Relative weight against other VMs on the host (libvirt cpu_shares). */
    shares: z.int().min(2).max(262144).optional(),
    /** Cap per vCPU as a percentage of one physical CPU; or give quotaUs (and periodUs). */
    quotaPercent: z.number().gt(0).lte(100).optional(),
    quotaUs: z.int().min(1000).optional(),
    periodUs: z.int().min(1000).max(1000000).optional(),
    /**
     * Burst allowance: the cap per vCPU (% of one physical CPU) DRS may raise the cap to while
     * the VM bursts against it, before it considers moving the VM (docs/drs.md).
     */
    burstQuotaPercent: z.number().gt(0).lte(100).optional(),
    /** How long one raise holds unless DRS renews it while the burst lasts (default 60 s). */
    burstHoldSeconds: z.int().min(10).max(3600).optional(),
  })
  .refine((c) => c.quotaPercent === undefined || c.quotaUs === undefined, {
    path: ['quotaUs'],
    message: 'set either quotaPercent or quotaUs, not both',
  })
  .refine(
    (c) => c.burstQuotaPercent === undefined || c.quotaPercent !== undefined || c.quotaUs !== undefined,
    {
      path: ['burstQuotaPercent'],
      message: 'a burst allowance raises a cap: set quotaPercent (or quotaUs) too',
    },
  )
  .refine(
    (c) =>
      c.burstQuotaPercent === undefined ||
      c.burstQuotaPercent > (c.quotaPercent ?? (100 * (c.quotaUs ?? 0)) / (c.periodUs ?? 100_000)),
    {
      path: ['burstQuotaPercent'],
      message: 'must be above the cap it raises (quotaPercent, or quotaUs / periodUs)',
    },
  )
  .refine((c) => c.burstHoldSeconds === undefined || c.burstQuotaPercent !== undefined, {
    path: ['burstHoldSeconds'],
    message: 'burstHoldSeconds needs burstQuotaPercent in the same profile',
  });

const memorySchema = z
  .strictObject({ hardLimitMiB: bytes, softLimitMiB: bytes })
  .refine((m) => !(m.hardLimitMiB && m.softLimitMiB && m.softLimitMiB > m.hardLimitMiB), {
    path: ['softLimitMiB'],
    message: 'must not be above hardLimitMiB',
  });

const diskSchema = z.strictObject({
  /** Relative I/O weight (libvirt blkiotune weight). */
  weight: z.int().min(100).max(1000).optional(),
  /** Throttles applied to each of the VM's disks (libvirt blkdeviotune). */
  perDevice: z
    .strictObject({ readIops: bytes, writeIops: bytes, readBytesSec: bytes, writeBytesSec: bytes })
    .optional(),
});

const bandwidthSchema = z
  .strictObject({ averageKiBs: positiveInt, peakKiBs: bytes, burstKiB: bytes })
  .refine((b) => b.peakKiBs === undefined || b.peakKiBs >= b.averageKiBs, {
    path: ['peakKiBs'],
    message: 'must not be below averageKiBs',
  });

const profileSchema = z.strictObject({
  description: z.string().optional(),
  cpu: cpuSchema.optional(),
  memory: memorySchema.optional(),
  disk: diskSchema.optional(),
  network: z
    .strictObject({ inbound: bandwidthSchema.optional(), outbound: bandwidthSchema.optional() })
    .optional(),
});

export const limitsPolicySchema = z.strictObject({
  profiles: z.record(name, profileSchema),
});

export type LimitsProfile = z.output<typeof profileSchema>;
export type LimitsPolicy = z.output<typeof limitsPolicySchema>;
