import type { FastifyInstance } from 'fastify';
import type { Mechanism } from '../../config/index.ts';
import {
  availability,
  availabilityByTier,
  complianceFor,
  monthlyPeriod,
  type Tiers,
  type TimeWindow,
  type VmAvailability,
} from '../../core/tiers.ts';
import { inScope } from '../auth/rbac.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import type { OutageEvent } from './probes.ts';

/** The mechanisms this keizokud runs; failover and DRS are not built yet, so tiers needing them are not met. */
export const ENABLED_MECHANISMS: readonly Mechanism[] = [
  'resource-limits',
  'live-migration',
  'cross-site-live-migration',
];

export interface TierDeps {
  tiers: Tiers;
  timeZone: string;
  placement: { cpuOvercommit: number; memoryFraction: number };
}

/** Outage windows per VM from every probe agent's reports in the period (union across agents). */
async function outagesByVm(d: ApiDeps, fromMs: number, toMs: number): Promise<Map<string, TimeWindow[]>> {
  const out = new Map<string, TimeWindow[]>();
  // Reports arrive shortly after an outage ends: read a day either side of the period by arrival.
  let cursor = String(Math.max(0, fromMs - 86_400_000));
  const end = String(toMs + 86_400_000);
  for (let scanned = 0; scanned < 1_000_000; ) {
    const batch = (await d.redis.xrange(`${d.prefix}outages`, cursor, end, 'COUNT', 5000)) as [
      string,
      string[],
    ][];
    if (batch.length === 0) break;
    for (const [, fields] of batch) {
      const e = JSON.parse(fields[1]!) as OutageEvent;
      if (e.endMs < fromMs || e.startMs > toMs) continue;
      if (!out.has(e.target)) out.set(e.target, []);
      out.get(e.target)!.push({ startMs: e.startMs, endMs: e.endMs });
    }
    scanned += batch.length;
    cursor = `(${batch[batch.length - 1]![0]}`;
  }
  return out;
}

export function tierRoutes(app: FastifyInstance, d: ApiDeps, t: TierDeps): void {
  app.get(
    '/v1/tiers/compliance',
    {
      config: { action: 'vm.read' },
      schema: {
        tags: ['tiers'],
        summary: 'Per VM: does its placement and configuration give it every mechanism its tier needs?',
      },
    },
    async (req) => {
      const snap = d.snapshot();
      const vms = [...snap.vms.values()]
        .filter((v) => inScope(req.principal!, v.name))
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((v) => {
          const p = d.policyOf(v.name);
          return complianceFor(
            {
              name: v.name,
              host: v.host,
              site: snap.hosts.get(v.host)?.site ?? '',
              assignment: p
                ? {
                    tier: p.tier,
                    ...(p.limits ? { limits: p.limits } : {}),
                    ...(p.homeSite ? { homeSite: p.homeSite } : {}),
                  }
                : null,
            },
            {
              tiers: t.tiers,
              snapshot: snap,
              enabled: ENABLED_MECHANISMS,
              limitsProfiles: d.limitsProfiles,
              placement: t.placement,
            },
          );
        });
      return { enabledMechanisms: ENABLED_MECHANISMS, vms };
    },
  );

  app.get(
    '/v1/tiers/availability',
    {
      config: { action: 'vm.read' },
      schema: {
        tags: ['tiers'],
        summary: "Monthly availability (稼働率) per VM and per tier from the probes' outage reports",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { month: { type: 'string', pattern: '^\\d{4}-(0[1-9]|1[0-2])$' } },
        },
      },
    },
    async (req) => {
      const q = req.query as { month?: string };
      const now = new Date();
      const [y, m] = q.month
        ? q.month.split('-').map(Number)
        : (new Intl.DateTimeFormat('en-CA', { timeZone: t.timeZone, year: 'numeric', month: '2-digit' })
            .format(now)
            .split('-')
            .map(Number) as [number, number]);
      const period = monthlyPeriod(y!, m!, t.timeZone);
      // The month so far, for the current month.
      const endMs = Math.min(period.endMs, Date.now());
      if (endMs <= period.startMs)
        throw new ApiError(400, 'invalid_request', `querystring.month: ${q.month} has not begun`);
      const outages = await outagesByVm(d, period.startMs, endMs);
      const perVm: (VmAvailability & { outageMs: number; outages: number })[] = [];
      for (const v of [...d.snapshot().vms.values()].sort((a, b) => a.name.localeCompare(b.name))) {
        if (!inScope(req.principal!, v.name)) continue;
        const p = d.policyOf(v.name);
        if (!p) continue;
        const windows = outages.get(v.name) ?? [];
        const a = availability(windows, period.startMs, endMs);
        perVm.push({
          vm: v.name,
          tier: p.tier,
          availability: a,
          outageMs: a.outageMs,
          outages: windows.length,
        });
      }
      return {
        month: `${y}-${String(m).padStart(2, '0')}`,
        timeZone: t.timeZone,
        periodStartMs: period.startMs,
        periodEndMs: endMs,
        vms: perVm,
        tiers: availabilityByTier(perVm, t.tiers),
      };
    },
  );
}
