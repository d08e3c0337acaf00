import type { FastifyInstance } from 'fastify';
import type { Mechanism } from '../../config/index.ts';
import {
  availability,
  availabilityByTier,
  complianceFor,
  monthlyPeriod,
  type Tiers,
  type VmAvailability,
} from '../../core/tiers.ts';
import { inScope } from '../auth/rbac.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { probeBookOf } from './probes.ts';

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

export function tierRoutes(app: FastifyInstance, d: ApiDeps, t: TierDeps): void {
  const probes = probeBookOf(d);
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
      // Bounded by the period and a count per agent (store/probe-book.ts).
      const { byTarget: outages, truncated } = await probes.outagesBetween(period.startMs, endMs);
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
        /** An agent reported more outages in the period than one query reads: figures are low. */
        truncated,
        vms: perVm,
        tiers: availabilityByTier(perVm, t.tiers),
      };
    },
  );
}
