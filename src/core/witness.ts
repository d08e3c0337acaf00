import type { HealthInput } from './health.ts';

/**
 * Probe agents as witnesses of a host the controller cannot reach: each agent looks at the
 * VMs the host last ran, over the last few seconds. Pure.
 * - an agent that saw any of those VMs answer votes `up` (the host still runs them: a
 *   partition, nothing may be restarted);
 * - an agent that probed them and saw none answer (at least `minProbes` sent per VM) votes
 *   `down`;
 * - an agent that has no recent probes of them abstains (not counted in the total).
 * The health model then calls the host `down` only when ICMP is silent too and more than half
 * of the counted witnesses vote down (core/health.ts).
 */

/** What one agent measured of one VM over the recent window. */
export interface WitnessWindow {
  probe: string;
  vm: string;
  sent: number;
  lost: number;
}

export const MIN_WITNESS_PROBES = 3;

export function witnessVotes(
  vms: readonly string[],
  windows: readonly WitnessWindow[],
  minProbes = MIN_WITNESS_PROBES,
): NonNullable<HealthInput['witnesses']> {
  const of = new Set(vms);
  const byProbe = new Map<string, WitnessWindow[]>();
  for (const w of windows) {
    if (!of.has(w.vm)) continue;
    const list = byProbe.get(w.probe) ?? [];
    list.push(w);
    byProbe.set(w.probe, list);
  }
  let up = 0;
  let down = 0;
  for (const list of byProbe.values()) {
    if (list.some((w) => w.sent > w.lost)) up++;
    else if (list.length > 0 && list.every((w) => w.sent >= minProbes && w.lost === w.sent)) down++;
  }
  return { up, down, total: up + down };
}
