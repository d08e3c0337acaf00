import { z } from 'zod';
import type { ProbeWindow } from '../jobs/migrate.ts';
import type { ProbeBook } from '../store/probe-book.ts';

/**
 * Asks live probe agents for their measurement of one VM over a time window
 * (GET {agent}/v1/window?target=VM&from=MS&to=MS). An agent's reply is untrusted input: no
 * redirect is followed, it must come within the timeout and the size cap and match the schema,
 * and only its figures are kept (they go into job results). Agents that do not know the VM, or
 * fail any of that, are left out.
 */

const num = z.number();
const nullableNum = num.nullable();

/** The figures of a window (src/probe/window-stats.ts), everything else dropped. */
const windowSchema = z.object({
  intervalMs: num.optional(),
  fromMs: num,
  toMs: num,
  sent: z.int().min(0),
  lost: z.int().min(0),
  lossRate: num,
  rttMinMs: nullableNum,
  rttMaxMs: nullableNum,
  rttAvgMs: nullableNum,
  outageMs: num.min(0),
  outageStartMs: nullableNum.optional(),
  outageEndMs: nullableNum.optional(),
  outages: z
    .array(
      z.object({
        startMs: num,
        endMs: num,
        durationMs: num,
        lost: z.int().min(0),
        open: z.boolean(),
        atWindowStart: z.boolean(),
      }),
    )
    .max(1_000)
    .optional(),
});

const seriesSchema = z.object({
  samples: z.array(z.object({ tMs: num, rttMs: nullableNum })).max(5_000_000),
  outages: z
    .array(z.object({ startMs: num, endMs: num, open: z.boolean() }))
    .max(100_000)
    .optional(),
});

export interface WindowFetchOptions {
  /** Per agent (defaults 3 s for a window, 5 s for a series). */
  timeoutMs?: number;
  /** Reply size cap (defaults 256 KiB for a window, 64 MiB for a series). */
  maxBytes?: number;
}

/** GET `url` as JSON: no redirects, a deadline over the whole exchange, at most `maxBytes`. */
export async function fetchJsonCapped(url: URL, timeoutMs: number, maxBytes: number): Promise<unknown> {
  const signal = AbortSignal.timeout(timeoutMs);
  const r = await fetch(url, { redirect: 'error', signal });
  if (!r.ok) {
    await r.body?.cancel();
    throw new Error(`HTTP ${r.status}`);
  }
  const declared = Number(r.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    await r.body?.cancel();
    throw new Error(`reply of ${declared} bytes is over ${maxBytes}`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = r.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new Error(`reply is over ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function windowUrl(origin: string, vm: string, fromMs: number, toMs: number, samples: boolean): URL {
  // The registered URL is an origin (api/routes/probes.ts): the path is always ours.
  const u = new URL('/v1/window', origin);
  u.searchParams.set('target', vm);
  u.searchParams.set('from', String(Math.floor(fromMs)));
  u.searchParams.set('to', String(Math.ceil(toMs)));
  if (samples) u.searchParams.set('samples', '1');
  return u;
}

export async function probeWindows(
  book: Pick<ProbeBook, 'live'>,
  vm: string,
  fromMs: number,
  toMs: number,
  o: WindowFetchOptions = {},
): Promise<ProbeWindow[]> {
  const probes = await book.live();
  const out = await Promise.all(
    probes.map(async (p): Promise<ProbeWindow | null> => {
      try {
        const body = await fetchJsonCapped(
          windowUrl(p.url, vm, fromMs, toMs, false),
          o.timeoutMs ?? 3_000,
          o.maxBytes ?? 256 * 1024,
        );
        const w = windowSchema.safeParse(body);
        return w.success ? { probe: p.name, site: p.site, ...w.data } : null;
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
  book: Pick<ProbeBook, 'live'>,
  vm: string,
  fromMs: number,
  toMs: number,
  o: WindowFetchOptions = {},
): Promise<{
  rtt: { tMs: number; rttMs: number | null }[];
  outages: { startMs: number; endMs: number; open: boolean }[];
}> {
  for (const p of await book.live()) {
    try {
      const body = await fetchJsonCapped(
        windowUrl(p.url, vm, fromMs, toMs, true),
        o.timeoutMs ?? 5_000,
        o.maxBytes ?? 64 * 1024 * 1024,
      );
      const s = seriesSchema.safeParse(body);
      if (s.success) return { rtt: s.data.samples, outages: s.data.outages ?? [] };
    } catch {
      // next agent
    }
  }
  return { rtt: [], outages: [] };
}
