import { LabError } from './errors.ts';

export interface LoadQuery {
  burn?: 'start' | 'stop' | string;
  dirty?: 'start' | 'stop' | string;
  mb?: number | string;
}

/** Starts or stops the guest's CPU burner and memory-dirtying loop; returns the guest's status line. */
export async function guestLoad(address: string, q: LoadQuery = {}): Promise<string> {
  for (const k of ['burn', 'dirty'] as const) {
    if (q[k] !== undefined && q[k] !== 'start' && q[k] !== 'stop') {
      throw new LabError(`--${k} must be 'start' or 'stop', got '${q[k]}'`);
    }
  }
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) params.set(k, String(v));
  const res = await fetch(`http://${address}/cgi-bin/load?${params}`, {
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new LabError(`guest ${address}: HTTP ${res.status}`);
  return (await res.text()).trim();
}

/** Status line of the guest: name, burner and dirtier state, uptime. */
export function parseGuestStatus(line: string): Record<string, string> {
  return Object.fromEntries(line.split(/\s+/).map((kv) => kv.split('=') as [string, string]));
}
