import type { Redis } from 'ioredis';
import { liveProbes } from '../api/routes/probes.ts';
import type { ProbeWindow } from '../jobs/migrate.ts';

/**
 * Asks every live probe agent for its measurement of one VM over a time window
 * (GET {agent}/v1/window?target=VM&from=MS&to=MS). Agents that do not know the VM, or do not
 * answer within 3 s, are left out.
 */
export async function probeWindows(
  d: { redis: Redis; prefix: string },
  vm: string,
  fromMs: number,
  toMs: number,
): Promise<ProbeWindow[]> {
  const probes = await liveProbes(d);
  const out = await Promise.all(
    probes.map(async (p) => {
      const url = `${p.url}/v1/window?target=${encodeURIComponent(vm)}&from=${Math.floor(fromMs)}&to=${Math.ceil(toMs)}`;
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(3_000) });
        if (!r.ok) return null;
        return { probe: p.name, site: p.site, ...((await r.json()) as object) } as ProbeWindow;
      } catch {
        return null;
      }
    }),
  );
  return out.filter((w): w is ProbeWindow => w !== null);
}

/**
 * The whole of a VM's probe record over a period, from the first probe agent that has it:
 * GET {agent}/v1/window?...&samples=1 answers with `samples` ({ tMs, rttMs|null }) and
 * `outages` ({ startMs, endMs, open }) besides the figures.
 */
export async function probeSeries(
  d: { redis: Redis; prefix: string },
  vm: string,
  fromMs: number,
  toMs: number,
): Promise<{
  rtt: { tMs: number; rttMs: number | null }[];
  outages: { startMs: number; endMs: number; open: boolean }[];
}> {
  for (const p of await liveProbes(d)) {
    const url = `${p.url}/v1/window?target=${encodeURIComponent(vm)}&from=${Math.floor(fromMs)}&to=${Math.ceil(toMs)}&samples=1`;
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      if (!r.ok) continue;
      const body = (await r.json()) as {
        samples?: { tMs: number; rttMs: number | null }[];
        outages?: { startMs: number; endMs: number; open: boolean }[];
      };
      if (Array.isArray(body.samples)) return { rtt: body.samples, outages: body.outages ?? [] };
    } catch {
      // next agent
    }
  }
  return { rtt: [], outages: [] };
}
