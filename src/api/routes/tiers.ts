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
import { errorResponses } from '../schemas.ts';
import { probeBookOf } from './probes.ts';

const complianceSchema = {
  type: 'object',
  required: ['vm', 'tier', 'compliant', 'checks'],
  properties: {
    vm: { type: 'string' },
    tier: { type: ['string', 'null'] },
    compliant: { type: 'boolean' },
    checks: {
      type: 'array',
      items: {
        type: 'object',
        required: ['ok', 'reason'],
        properties: {
          mechanism: { type: 'string', description: 'a mechanism the tier needs, or' },
          requirement: {
            type: 'string',
            enum: ['tier-assigned', 'tier-defined', 'sites', 'home-site', 'recovery-site'],
          },
          ok: { type: 'boolean' },
          reason: { type: 'string' },
        },
      },
    },
  },
} as const;

/** The mechanisms this keizokud runs (cross-site failover is not built: tiers needing it are not met). */
export const ENABLED_MECHANISMS: readonly Mechanism[] = [
  'resource-limits',
  'live-migration',
  'failover',
  'drs',
  'cross-site-live-migration',
];

export interface TierDeps {
  tiers: Tiers;
  /** The VM's DRS mode (absent: DRS counts as on for every VM). */
  drsModeOf?: (vm: string) => 'off' | 'manual' | 'automatic';
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
        operationId: 'getTierCompliance',
        summary: 'Per VM: does its placement and configuration give it every mechanism its tier needs?',
        response: {
          200: {
            description: 'The mechanisms this keizokud runs, and each VM the principal may see',
            type: 'object',
            required: ['enabledMechanisms', 'vms'],
            properties: {
              enabledMechanisms: { type: 'array', items: { type: 'string' } },
              vms: { type: 'array', items: complianceSchema },
            },
          },
          ...errorResponses,
        },
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
                    ...(p.recoverySite ? { recoverySite: p.recoverySite } : {}),
                  }
                : null,
            },
            {
              tiers: t.tiers,
              snapshot: snap,
              enabled: ENABLED_MECHANISMS,
              ...(t.drsModeOf?.(v.name) === 'off'
                ? { offForVm: { drs: `${v.name} has DRS mode off (drs.mode, or vms[].drs of its entry).` } }
                : {}),
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
        operationId: 'getTierAvailability',
        summary: "Monthly availability (稼働率) per VM and per tier from the probes' outage reports",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { month: { type: 'string', pattern: '^\\d{4}-(0[1-9]|1[0-2])$' } },
        },
        response: {
          200: {
            description: 'The month (so far) per VM with a tier, and per tier',
            type: 'object',
            required: ['month', 'timeZone', 'periodStartMs', 'periodEndMs', 'truncated', 'vms', 'tiers'],
            properties: {
              month: { type: 'string', description: 'YYYY-MM' },
              timeZone: { type: 'string' },
              periodStartMs: { type: 'number' },
              periodEndMs: { type: 'number' },
              truncated: {
                type: 'boolean',
                description: 'an agent reported more outages than one query reads: figures are low',
              },
              vms: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['vm', 'tier', 'availability', 'outageMs', 'outages'],
                  properties: {
                    vm: { type: 'string' },
                    tier: { type: 'string' },
                    availability: {
                      type: 'object',
                      required: [
                        'periodStartMs',
                        'periodEndMs',
                        'totalMs',
                        'outageMs',
                        'fraction',
                        'percent',
                      ],
                      properties: {
                        periodStartMs: { type: 'number' },
                        periodEndMs: { type: 'number' },
                        totalMs: { type: 'number' },
                        outageMs: { type: 'number', description: 'overlapping outages counted once' },
                        fraction: { type: 'number' },
                        percent: { type: 'number' },
                      },
                    },
                    outageMs: { type: 'number' },
                    outages: { type: 'integer' },
                  },
                },
              },
              tiers: {
                type: 'array',
                items: {
                  type: 'object',
                  required: [
                    'tier',
                    'targetPercent',
                    'vms',
                    'meanPercent',
                    'minPercent',
                    'minVm',
                    'belowTarget',
                    'meetsTarget',
                  ],
                  properties: {
                    tier: { type: 'string' },
                    targetPercent: { type: ['number', 'null'] },
                    vms: { type: 'integer' },
                    meanPercent: { type: ['number', 'null'] },
                    minPercent: { type: ['number', 'null'] },
                    minVm: { type: ['string', 'null'] },
                    belowTarget: {
                      type: 'array',
                      items: {
                        type: 'object',
                        required: ['vm', 'percent'],
                        properties: { vm: { type: 'string' }, percent: { type: 'number' } },
                      },
                    },
                    meetsTarget: { type: ['boolean', 'null'] },
                  },
                },
              },
            },
          },
          ...errorResponses,
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
