import type { DeepReadonly, Mechanism, Tier as TierData, TiersPolicy } from '../config/index.ts';
import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from './model.ts';
import { commitments, judgeHost, type PlacementContext, type VmRules } from './placement/index.ts';

/**
 * BCP tiers: does a VM have what its tier relies on, availability (稼働率) over a period, and
 * the verdict of one move against the tier's outage objective. Pure: no I/O, no clock read;
 * time comes in as epoch milliseconds and time zones are resolved with Intl.
 */

/** A tier and the tiers policy as loaded (read-only); mutable values fit too. */
export type Tier = DeepReadonly<TierData>;
export type Tiers = DeepReadonly<TiersPolicy>;

// ---------------------------------------------------------------------------------------------
// Compliance

/** A VM's tier assignment as the config gives it (`vms[]` entry), or null when none matched. */
export interface TierAssignment {
  tier: string;
  limits?: string | undefined;
  homeSite?: string | undefined;
  /** Where the tier's cross-site mechanisms take the VM (vms[].recoverySite). */
  recoverySite?: string | undefined;
  affinityGroup?: string | undefined;
  antiAffinityGroup?: string | undefined;
}

export interface ComplianceVm {
  name: string;
  host: string;
  site: string;
  assignment: TierAssignment | null;
}

export interface ComplianceContext {
  tiers: Tiers;
  snapshot: Pick<ClusterSnapshot, 'sites' | 'hosts' | 'vms'>;
  /** The mechanisms keizoku runs (a mechanism switched off cannot serve any tier). */
  enabled: ReadonlySet<Mechanism> | readonly Mechanism[];
  /** Mechanisms keizoku runs but this VM's settings switch off, with the sentence why (e.g. drs mode off). */
  offForVm?: Partial<Record<Mechanism, string>>;
  /** Limits profiles that exist; when given, an assigned profile must be one of them. */
  limitsProfiles?: readonly string[];
  /** Capacity and affinity rules for failover targets (defaults: 4x vCPUs, 90 % of memory). */
  placement?: Partial<PlacementContext>;
}

export type Requirement = 'tier-assigned' | 'tier-defined' | 'sites' | 'home-site' | 'recovery-site';

export type ComplianceCheck = (
  | { mechanism: Mechanism; requirement?: undefined }
  | { requirement: Requirement; mechanism?: undefined }
) & { ok: boolean; reason: string };

export interface Compliance {
  vm: string;
  /** The assigned tier id, or null when the VM has no assignment. */
  tier: string | null;
  compliant: boolean;
  checks: ComplianceCheck[];
}

const NO_RULES: VmRules = { affinityGroup: null, antiAffinityGroup: null };
const DEFAULT_CPU_OVERCOMMIT = 4;
const DEFAULT_MEMORY_FRACTION = 0.9;

const list = (names: readonly string[]): string => {
  const s = [...names];
  if (s.length <= 1) return s.join('');
  return `${s.slice(0, -1).join(', ')} and ${s[s.length - 1]}`;
};

const hostState = (h: HostSnapshot): string =>
  h.health !== 'up' ? `${h.name} ${h.health}` : h.maintenance ? `${h.name} in maintenance` : `${h.name} up`;

const canReceive = (h: HostSnapshot): boolean => h.health === 'up' && !h.maintenance;

/**
 * Checks that everything the VM's tier relies on is available to it now: the tier exists, the
 * cluster has the tier's sites, the VM is in its home site, a tier that crosses sites gives it a
 * recovery site, and each of the tier's mechanisms is enabled and has somewhere to act (another
 * host in the site to migrate or restart on, a host in the recovery site for cross-site moves,
 * a limits profile for resource limits).
 */
export function complianceFor(vm: ComplianceVm, ctx: ComplianceContext): Compliance {
  const checks: ComplianceCheck[] = [];
  const done = (tier: string | null): Compliance => ({
    vm: vm.name,
    tier,
    compliant: checks.every((c) => c.ok),
    checks,
  });
  const a = vm.assignment;
  if (!a) {
    checks.push({
      requirement: 'tier-assigned',
      ok: false,
      reason: `${vm.name} has no tier assigned: no vms[] entry of the configuration matches it.`,
    });
    return done(null);
  }
  const tier = ctx.tiers.tiers.find((t) => t.id === a.tier);
  if (!tier) {
    checks.push({
      requirement: 'tier-defined',
      ok: false,
      reason: `${vm.name} is assigned tier "${a.tier}", which the tiers policy does not define (it has ${list(ctx.tiers.tiers.map((t) => t.id))}).`,
    });
    return done(a.tier);
  }
  const snap = ctx.snapshot;
  const hosts = [...snap.hosts.values()].sort((x, y) => x.name.localeCompare(y.name));
  const others = hosts.filter((h) => h.name !== vm.host);
  const sameSite = others.filter((h) => h.site === vm.site);
  // Cross-site mechanisms act towards one site: the recovery site (the home site from there).
  const crossTo = crossSiteTarget(vm, tier, snap.sites);
  const otherSites = others.filter((h) => h.site !== vm.site && h.site === crossTo?.site);
  const enabled = new Set<Mechanism>(ctx.enabled);

  checks.push(sitesCheck(vm, tier, snap.sites, hosts));

  if (a.homeSite !== undefined) {
    if (!snap.sites.includes(a.homeSite))
      checks.push({
        requirement: 'home-site',
        ok: false,
        reason: `${vm.name}'s home site ${a.homeSite} is not one of the cluster's sites (${list(snap.sites)}).`,
      });
    else if (a.homeSite !== vm.site)
      checks.push({
        requirement: 'home-site',
        ok: false,
        reason: `${vm.name} runs on ${vm.host} in site ${vm.site}, away from its home site ${a.homeSite}.`,
      });
    else
      checks.push({
        requirement: 'home-site',
        ok: true,
        reason: `${vm.name} runs in its home site ${a.homeSite}.`,
      });
  }

  if (crossTo !== null) checks.push(crossTo.check);

  const placement: PlacementContext = {
    rulesOf:
      ctx.placement?.rulesOf ??
      ((n) =>
        n === vm.name
          ? { affinityGroup: a.affinityGroup ?? null, antiAffinityGroup: a.antiAffinityGroup ?? null }
          : NO_RULES),
    cpuOvercommit: ctx.placement?.cpuOvercommit ?? DEFAULT_CPU_OVERCOMMIT,
    memoryFraction: ctx.placement?.memoryFraction ?? DEFAULT_MEMORY_FRACTION,
  };
  const vmSnap: VmSnapshot = snap.vms.get(vm.name) ?? {
    name: vm.name,
    uuid: vm.name,
    host: vm.host,
    state: 'running',
    vcpus: 1,
    memoryKiB: 0,
    cpuUsage: null,
    memoryUsedKiB: null,
  };
  const view: ClusterSnapshot = { takenAt: 0, ...snap };
  const committed = commitments(view);
  const verdicts = (candidates: HostSnapshot[]) =>
    candidates.map((h) => judgeHost(view, { ...vmSnap, host: vm.host }, h, placement, committed));

  for (const mechanism of tier.mechanisms) {
    if (!enabled.has(mechanism)) {
      checks.push({
        mechanism,
        ok: false,
        reason: `Tier ${tier.id} relies on ${mechanism}, which is not enabled in keizoku.`,
      });
      continue;
    }
    const off = ctx.offForVm?.[mechanism];
    if (off !== undefined) {
      checks.push({ mechanism, ok: false, reason: off });
      continue;
    }
    switch (mechanism) {
      case 'resource-limits': {
        if (a.limits === undefined)
          checks.push({
            mechanism,
            ok: false,
            reason: `${vm.name} has no limits profile assigned; tier ${tier.id} relies on resource limits.`,
          });
        else if (ctx.limitsProfiles && !ctx.limitsProfiles.includes(a.limits))
          checks.push({
            mechanism,
            ok: false,
            reason: `${vm.name} is assigned limits profile "${a.limits}", which the limits policy does not define.`,
          });
        else
          checks.push({
            mechanism,
            ok: true,
            reason: `${vm.name} has limits profile "${a.limits}" assigned.`,
          });
        break;
      }
      case 'live-migration':
      case 'drs': {
        const targets = sameSite.filter(canReceive);
        const what = mechanism === 'drs' ? 'rebalance onto' : 'migrate live to';
        checks.push(
          targets.length > 0
            ? {
                mechanism,
                ok: true,
                reason: `${vm.name} can ${what} ${list(targets.map((h) => h.name))} in site ${vm.site}.`,
              }
            : {
                mechanism,
                ok: false,
                reason:
                  sameSite.length === 0
                    ? `${vm.name} has no other host in site ${vm.site} to ${what} (${vm.host} is the only one).`
                    : `${vm.name} has no host in site ${vm.site} to ${what}: ${list(sameSite.map(hostState))}.`,
              },
        );
        break;
      }
      case 'failover':
      case 'cross-site-failover': {
        const cross = mechanism === 'cross-site-failover';
        const candidates = cross ? otherSites : sameSite;
        const where = cross ? `site ${crossTo?.site}` : `site ${vm.site}`;
        const judged = verdicts(candidates);
        const fit = judged.filter((v) => v.feasible);
        if (cross && !siteCountOk(tier, snap.sites)) {
          checks.push({ mechanism, ok: false, reason: missingSitesReason(tier, snap.sites) });
        } else if (cross && crossTo?.site === null) {
          checks.push({ mechanism, ok: false, reason: noCrossSite(vm, 'be restarted in', crossTo) });
        } else if (fit.length > 0) {
          checks.push({
            mechanism,
            ok: true,
            reason: `${vm.name} can be restarted on ${list(fit.map((v) => v.host))} in ${where} if ${vm.host} fails.`,
          });
        } else {
          checks.push({
            mechanism,
            ok: false,
            reason:
              candidates.length === 0
                ? `${vm.name} has no other host in ${where} to be restarted on if ${vm.host} fails.`
                : `${vm.name} could not be restarted in ${where} if ${vm.host} fails: ${judged
                    .map((v) => v.reasons.join('; '))
                    .join('; ')}.`,
          });
        }
        break;
      }
      case 'cross-site-live-migration':
      case 'cross-site-drs': {
        const targets = otherSites.filter(canReceive);
        const what = mechanism === 'cross-site-drs' ? 'be rebalanced onto' : 'migrate live to';
        if (!siteCountOk(tier, snap.sites))
          checks.push({ mechanism, ok: false, reason: missingSitesReason(tier, snap.sites) });
        else if (crossTo?.site === null)
          checks.push({ mechanism, ok: false, reason: noCrossSite(vm, what, crossTo) });
        else if (targets.length > 0)
          checks.push({
            mechanism,
            ok: true,
            reason: `${vm.name} can ${what} ${list(targets.map((h) => h.name))} in site ${crossTo?.site}.`,
          });
        else
          checks.push({
            mechanism,
            ok: false,
            reason: `${vm.name} has no host in site ${crossTo?.site} to ${what}: ${
              otherSites.length === 0 ? 'no host is configured there' : list(otherSites.map(hostState))
            }.`,
          });
        break;
      }
    }
  }
  return done(tier.id);
}

interface CrossSiteTarget {
  /** The site cross-site mechanisms act towards, or null when the VM has none to go to. */
  site: string | null;
  check: ComplianceCheck;
}

/**
 * For a tier with cross-site mechanisms: the site they take the VM to (its recovery site, or
 * its home site while it runs at the recovery site), and the 'recovery-site' check. Null for a
 * tier that never crosses sites.
 */
function crossSiteTarget(vm: ComplianceVm, tier: Tier, sites: readonly string[]): CrossSiteTarget | null {
  const cross = tier.mechanisms.filter((m) => m.startsWith('cross-site-'));
  if (cross.length === 0) return null;
  const a = vm.assignment!;
  const r = a.recoverySite;
  const no = (reason: string): CrossSiteTarget => ({
    site: null,
    check: { requirement: 'recovery-site', ok: false, reason },
  });
  if (r === undefined)
    return no(
      `Tier ${tier.id} relies on ${list(cross)}, but ${vm.name} has no recovery site (vms[].recoverySite): nowhere to go outside ${a.homeSite ?? vm.site}.`,
    );
  if (!sites.includes(r))
    return no(`${vm.name}'s recovery site ${r} is not one of the cluster's sites (${list(sites)}).`);
  if (r === a.homeSite)
    return no(`${vm.name}'s recovery site ${r} is its home site: it has no other site to go to.`);
  const site = vm.site === r ? (a.homeSite ?? null) : r;
  if (site === null)
    return no(
      `${vm.name} runs at its recovery site ${r} and has no home site (vms[].homeSite) to go back to.`,
    );
  return {
    site,
    check: {
      requirement: 'recovery-site',
      ok: true,
      reason:
        site === r
          ? `${vm.name}'s recovery site is ${r}.`
          : `${vm.name} runs at its recovery site ${r}; its home site ${site} is where it goes back.`,
    },
  };
}

const noCrossSite = (vm: ComplianceVm, what: string, t: CrossSiteTarget): string =>
  `${vm.name} has no site to ${what}: ${t.check.reason}`;

function siteCountOk(tier: Tier, sites: readonly string[]): boolean {
  return sites.length >= tier.minSites;
}

function missingSitesReason(tier: Tier, sites: readonly string[]): string {
  const missing = tier.minSites - sites.length;
  const ordinal = sites.length === 1 ? 'a second site' : `${missing} more site${missing === 1 ? '' : 's'}`;
  return `Tier ${tier.id} needs ${tier.minSites} sites, but only ${list(sites)} ${
    sites.length === 1 ? 'is' : 'are'
  } configured: ${ordinal} is missing.`;
}

function sitesCheck(
  vm: ComplianceVm,
  tier: Tier,
  sites: readonly string[],
  hosts: readonly HostSnapshot[],
): ComplianceCheck {
  if (!siteCountOk(tier, sites))
    return { requirement: 'sites', ok: false, reason: missingSitesReason(tier, sites) };
  const live = sites.filter((s) => hosts.some((h) => h.site === s && h.health === 'up'));
  if (live.length >= tier.minSites)
    return {
      requirement: 'sites',
      ok: true,
      reason: `Tier ${tier.id} needs ${tier.minSites} site${tier.minSites === 1 ? '' : 's'} with a host up; ${list(live)} ${live.length === 1 ? 'has' : 'have'} one.`,
    };
  const dead = sites.filter((s) => !live.includes(s));
  const detail = dead
    .map((s) => {
      const inSite = hosts.filter((h) => h.site === s);
      return inSite.length === 0
        ? `site ${s} has no host`
        : `site ${s} has no host up (${list(inSite.map(hostState))})`;
    })
    .join('; ');
  return {
    requirement: 'sites',
    ok: false,
    reason: `Tier ${tier.id} of ${vm.name} needs ${tier.minSites} sites with a host up, but ${detail}.`,
  };
}

// ---------------------------------------------------------------------------------------------
// Availability (稼働率)

export interface TimeWindow {
  startMs: number;
  endMs: number;
}

export interface Availability {
  periodStartMs: number;
  periodEndMs: number;
  totalMs: number;
  /** Outage time within the period, overlapping windows counted once. */
  outageMs: number;
  /** (total - outage) / total, 0..1. */
  fraction: number;
  percent: number;
}

/** Merges windows (clipped to [from, to]) into disjoint, sorted ones. */
export function mergeWindows(windows: readonly TimeWindow[], fromMs: number, toMs: number): TimeWindow[] {
  const clipped = windows
    .map((w) => ({ startMs: Math.max(w.startMs, fromMs), endMs: Math.min(w.endMs, toMs) }))
    .filter((w) => w.endMs > w.startMs)
    .sort((x, y) => x.startMs - y.startMs);
  const out: TimeWindow[] = [];
  for (const w of clipped) {
    const last = out[out.length - 1];
    if (last && w.startMs <= last.endMs) last.endMs = Math.max(last.endMs, w.endMs);
    else out.push({ ...w });
  }
  return out;
}

/**
 * Availability over [periodStartMs, periodEndMs): (total time - outage time) / total time,
 * where outage time is the union of the outage windows clipped to the period.
 */
export function availability(
  outages: readonly TimeWindow[],
  periodStartMs: number,
  periodEndMs: number,
): Availability {
  if (!(Number.isFinite(periodStartMs) && Number.isFinite(periodEndMs)) || periodEndMs <= periodStartMs)
    throw new RangeError(`the period must end after it starts (got ${periodStartMs} to ${periodEndMs})`);
  const totalMs = periodEndMs - periodStartMs;
  const outageMs = mergeWindows(outages, periodStartMs, periodEndMs).reduce(
    (sum, w) => sum + (w.endMs - w.startMs),
    0,
  );
  const fraction = (totalMs - outageMs) / totalMs;
  return { periodStartMs, periodEndMs, totalMs, outageMs, fraction, percent: fraction * 100 };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** How far the wall clock of `timeZone` is ahead of UTC at `epochMs`, in ms. */
export function timeZoneOffsetMs(epochMs: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const p of formatterFor(timeZone).formatToParts(new Date(epochMs)))
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const wall = Date.UTC(
    parts.year!,
    parts.month! - 1,
    parts.day!,
    parts.hour! % 24,
    parts.minute!,
    parts.second!,
  );
  return wall - (epochMs - (((epochMs % 1000) + 1000) % 1000));
}

/** Epoch ms of a wall-clock time in `timeZone` (the later instant when a clock change repeats it). */
function zonedToEpoch(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  timeZone: string,
): number {
  const asUtc = Date.UTC(year, month - 1, day, hour, minute, second);
  const first = asUtc - timeZoneOffsetMs(asUtc, timeZone);
  return asUtc - timeZoneOffsetMs(first, timeZone);
}

/**
 * The calendar month `month` (1-12) of `year` in `timeZone`: from local midnight of the 1st to
 * local midnight of the 1st of the next month, as epoch ms [startMs, endMs).
 */
export function monthlyPeriod(year: number, month: number, timeZone = 'Asia/Tokyo'): TimeWindow {
  if (!Number.isInteger(year) || !Number.isInteger(month) || month < 1 || month > 12)
    throw new RangeError(`no month ${month} of year ${year}: month must be 1-12`);
  const next = month === 12 ? { y: year + 1, m: 1 } : { y: year, m: month + 1 };
  return {
    startMs: zonedToEpoch(year, month, 1, 0, 0, 0, timeZone),
    endMs: zonedToEpoch(next.y, next.m, 1, 0, 0, 0, timeZone),
  };
}

export interface VmAvailability {
  vm: string;
  tier: string;
  availability: Pick<Availability, 'fraction' | 'percent'>;
}

export interface TierAvailability {
  tier: string;
  /** objectives.monthlyAvailabilityPercent of the tier; null for a tier the policy lacks. */
  targetPercent: number | null;
  vms: number;
  /** Mean of the tier's VMs, and the lowest with its VM; null without VMs. */
  meanPercent: number | null;
  minPercent: number | null;
  minVm: string | null;
  belowTarget: { vm: string; percent: number }[];
  /** The mean reaches the target (null when it cannot be told: no VMs or no target). */
  meetsTarget: boolean | null;
}

/** Percentages are compared with this slack so that 99.99 computed in floating point meets 99.99. */
const PERCENT_EPSILON = 1e-9;

/**
 * Per tier: the mean availability over its VMs, the lowest, and the VMs below the tier's
 * monthly target. Every tier of the policy appears, in policy order; tiers named by VMs but
 * absent from the policy follow with no target.
 */
export function availabilityByTier(
  perVm: readonly VmAvailability[],
  tiers: Tiers | readonly Tier[],
): TierAvailability[] {
  const policy: readonly Tier[] = 'tiers' in tiers ? tiers.tiers : tiers;
  const ids = [...policy.map((t) => t.id)];
  for (const v of perVm) if (!ids.includes(v.tier)) ids.push(v.tier);
  return ids.map((id) => {
    const target = policy.find((t) => t.id === id)?.objectives.monthlyAvailabilityPercent ?? null;
    const mine = perVm.filter((v) => v.tier === id);
    if (mine.length === 0)
      return {
        tier: id,
        targetPercent: target,
        vms: 0,
        meanPercent: null,
        minPercent: null,
        minVm: null,
        belowTarget: [],
        meetsTarget: null,
      };
    const mean = mine.reduce((s, v) => s + v.availability.percent, 0) / mine.length;
    const lowest = mine.reduce((lo, v) =>
      v.availability.percent < lo.availability.percent ||
      (v.availability.percent === lo.availability.percent && v.vm < lo.vm)
        ? v
        : lo,
    );
    const below =
      target === null
        ? []
        : mine
            .filter((v) => v.availability.percent < target - PERCENT_EPSILON)
            .map((v) => ({ vm: v.vm, percent: v.availability.percent }))
            .sort((x, y) => x.percent - y.percent || x.vm.localeCompare(y.vm));
    return {
      tier: id,
      targetPercent: target,
      vms: mine.length,
      meanPercent: mean,
      minPercent: lowest.availability.percent,
      minVm: lowest.vm,
      belowTarget: below,
      meetsTarget: target === null ? null : mean >= target - PERCENT_EPSILON,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Verdict of one move

export type MoveStatus = 'pass' | 'fail' | 'no-objective' | 'unmeasured';

export interface MoveVerdict {
  status: MoveStatus;
  tier: string;
  mechanism: Mechanism;
  /** The tier's maxOutageMs for the mechanism, null when it has none. */
  limitMs: number | null;
  outageMs: number | null;
  reason: string;
}

const ms = (v: number): string => `${Math.round(v).toLocaleString('en-US')} ms`;

/**
 * Judges one move's outage (通信断, as the probe measured it) against the tier's maxOutageMs
 * for the mechanism: pass when at most the limit. A mechanism the tier sets no objective for
 * is 'no-objective' (not a pass); a move without a measurement is 'unmeasured'.
 */
export function judgeMove(m: {
  tier: Tier;
  mechanism: Mechanism;
  outageMs: number | null;
  totalMs: number | null;
}): MoveVerdict {
  const limit = m.tier.objectives.maxOutageMs[m.mechanism];
  const took = m.totalMs === null ? '' : `; the move took ${ms(m.totalMs)}`;
  const base = { tier: m.tier.id, mechanism: m.mechanism, outageMs: m.outageMs };
  if (limit === undefined)
    return {
      ...base,
      status: 'no-objective',
      limitMs: null,
      reason: `Tier ${m.tier.id} sets no outage objective for ${m.mechanism}, so the move cannot pass${
        m.outageMs === null ? '' : ` (outage ${ms(m.outageMs)})`
      }${took}.`,
    };
  if (m.outageMs === null)
    return {
      ...base,
      status: 'unmeasured',
      limitMs: limit,
      reason: `No probe measurement of the outage, so the move cannot be judged against the ${ms(limit)} allowed for ${m.mechanism} in tier ${m.tier.id}${took}.`,
    };
  const ok = m.outageMs <= limit;
  return {
    ...base,
    status: ok ? 'pass' : 'fail',
    limitMs: limit,
    reason: `Outage ${ms(m.outageMs)} is ${ok ? 'within' : 'over'} the ${ms(limit)} allowed for ${m.mechanism} in tier ${m.tier.id}${took}.`,
  };
}
