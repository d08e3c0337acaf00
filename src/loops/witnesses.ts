import type { HealthInput } from '../core/health.ts';
import type { ClusterSnapshot } from '../core/model.ts';
import { type WitnessWindow, witnessVotes } from '../core/witness.ts';
import type { PassResult, Reconciler } from './runner.ts';

/**
 * The witness loop (leader only): for each host the controller has lost (not connected), asks
 * the live probe agents what they saw of the VMs the host last ran over the last `windowMs`,
 * and keeps the votes (core/witness.ts) for the host's health. A host that is connected has no
 * votes: witnesses only judge what the controller cannot see. Followers keep no votes, so
 * only the leader, which decides failovers, can see a host `down`.
 */

type Votes = NonNullable<HealthInput['witnesses']>;

export interface WitnessLoopOptions {
  snapshot: () => ClusterSnapshot;
  /** Each live agent's window of one VM (daemon/probe-window.ts probeWindows). */
  windows: (
    vm: string,
    fromMs: number,
    toMs: number,
  ) => Promise<{ probe: string; sent: number; lost: number }[]>;
  intervalMs: number;
  /** How far back a vote looks (ha.witnessWindowMs; default here 3 s). */
  windowMs?: number;
  /** Called when a host's votes changed (the inventory builds a new snapshot). */
  onChange?: () => void;
}

const LOST = new Set(['unreachable', 'partitioned', 'down']);

export class WitnessLoop implements Reconciler {
  readonly name = 'witnesses';
  readonly leaderOnly = true;
  readonly intervalMs: number;
  private votes = new Map<string, Votes>();

  constructor(private readonly o: WitnessLoopOptions) {
    this.intervalMs = o.intervalMs;
  }

  /** The votes on a host from the last pass (null: not judged by witnesses). */
  of(host: string): Votes | null {
    return this.votes.get(host) ?? null;
  }

  async pass(now: number): Promise<PassResult> {
    const snap = this.o.snapshot();
    const next = new Map<string, Votes>();
    const from = now - (this.o.windowMs ?? 3_000);
    for (const h of snap.hosts.values()) {
      if (!LOST.has(h.health) || !h.lastKnownVms?.length) continue;
      const windows: WitnessWindow[] = [];
      for (const vm of h.lastKnownVms) {
        for (const w of await this.o.windows(vm, from, now).catch(() => []))
          windows.push({ probe: w.probe, vm, sent: w.sent, lost: w.lost });
      }
      next.set(h.name, witnessVotes(h.lastKnownVms, windows));
    }
    const key = (m: Map<string, Votes>) => JSON.stringify([...m].sort(([a], [b]) => a.localeCompare(b)));
    const changed = key(next) !== key(this.votes);
    this.votes = next;
    if (changed) this.o.onChange?.();
    return { result: 'success' };
  }
}
