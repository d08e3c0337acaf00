import type { CrossSiteMigrationRule, DeepReadonly, MigrationConfig } from '../config/index.ts';

/**
 * Which settings one live migration runs with: the configured defaults (`migration`), then,
 * for a move between two sites, the first `migration.crossSite` rule whose sites and tier fit
 * it (the WAN settings: bandwidth cap, compression, parallel connections, downtime,
 * convergence), then the request's own overrides. Pure: the sites and tier come in as data.
 */

/** The fields a cross-site rule may set. */
export const CROSS_SITE_FIELDS = [
  'bandwidthMiBs',
  'compression',
  'parallelConnections',
  'maxDowntimeMs',
  'maxDowntimeSteps',
  'autoConverge',
  'postCopyAfterIterations',
  'postCopyAfterMs',
  'timeoutMs',
] as const satisfies readonly (keyof CrossSiteMigrationRule & keyof MigrationConfig)[];

export interface MoveContext {
  /** Sites of the source and destination hosts (null: not known). */
  fromSite: string | null;
  toSite: string | null;
  /** The VM's tier (null: none assigned). */
  tier: string | null;
}

export interface CrossSiteChoice {
  fromSite: string;
  toSite: string;
  /** The rule that applied, as a config path (`migration.crossSite[0]`); null when none fits. */
  rule: string | null;
}

/** The config as loaded (deeply frozen) or a plain object. */
export type MigrationPolicy = DeepReadonly<MigrationConfig>;

export interface ChosenPolicy {
  policy: MigrationPolicy;
  /** Null for a move within one site. */
  crossSite: CrossSiteChoice | null;
}

const fits = (
  r: DeepReadonly<CrossSiteMigrationRule>,
  m: MoveContext & { fromSite: string; toSite: string },
) =>
  (r.sites === undefined || (r.sites.includes(m.fromSite) && r.sites.includes(m.toSite))) &&
  (r.tier === undefined || r.tier === m.tier);

export function chooseMigrationPolicy(
  base: MigrationPolicy,
  move: MoveContext,
  request: Partial<MigrationConfig> = {},
): ChosenPolicy {
  const { fromSite, toSite } = move;
  if (fromSite === null || toSite === null || fromSite === toSite)
    return { policy: { ...base, ...request }, crossSite: null };
  const at = base.crossSite.findIndex((r) => fits(r, { ...move, fromSite, toSite }));
  const rule = at >= 0 ? base.crossSite[at]! : undefined;
  const wan: Partial<MigrationPolicy> = {};
  for (const f of CROSS_SITE_FIELDS) if (rule?.[f] !== undefined) Object.assign(wan, { [f]: rule[f] });
  return {
    policy: { ...base, ...wan, ...request },
    crossSite: { fromSite, toSite, rule: rule ? `migration.crossSite[${at}]` : null },
  };
}

/** What a move ran with, as its job record shows it. */
export interface AppliedMigrationSettings {
  bandwidthMiBs: number;
  compression: string[];
  parallelConnections: number;
  maxDowntimeMs: number;
  maxDowntimeSteps: { afterIterations: number; maxDowntimeMs: number }[];
  autoConverge: boolean;
  postCopyAfterIterations: number;
  postCopyAfterMs: number;
  timeoutMs: number;
  crossSite: CrossSiteChoice | null;
}

export function appliedSettings(c: ChosenPolicy): AppliedMigrationSettings {
  const p = c.policy;
  return {
    bandwidthMiBs: p.bandwidthMiBs,
    compression: [...p.compression],
    parallelConnections: p.parallelConnections,
    maxDowntimeMs: p.maxDowntimeMs,
    maxDowntimeSteps: p.maxDowntimeSteps.map((s) => ({ ...s })),
    autoConverge: p.autoConverge,
    postCopyAfterIterations: p.postCopyAfterIterations,
    postCopyAfterMs: p.postCopyAfterMs,
    timeoutMs: p.timeoutMs,
    crossSite: c.crossSite,
  };
}

/**
 * The switch-over limit for a move that has reached pre-copy `iteration`: the starting limit,
 * raised by every step whose iteration it has reached. A step below the start (a request or
 * a cross-site rule that already allows more) changes nothing: a limit never goes down.
 */
export function maxDowntimeAt(
  p: Pick<MigrationPolicy, 'maxDowntimeMs' | 'maxDowntimeSteps'>,
  iteration: number,
): number {
  let limit = p.maxDowntimeMs;
  for (const s of p.maxDowntimeSteps)
    if (iteration >= s.afterIterations && s.maxDowntimeMs > limit) limit = s.maxDowntimeMs;
  return limit;
}
