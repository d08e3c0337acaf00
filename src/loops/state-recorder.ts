import type { ClusterSnapshot } from '../core/model.ts';
import type { EffectivePolicy } from '../store/policy-book.ts';
import type { Store } from '../store/store.ts';
import type { PassResult, Reconciler } from './runner.ts';

/**
 * Two small loops over the stored state, run by the daemon's LoopRunner on the inventory's
 * interval:
 * - `books` (every replica): re-reads the policy overrides and the hosts in maintenance from
 *   Redis, so a follower's API and snapshot see what the leader changed;
 * - `state-recorder` (leader only): records where each running VM is (a move is appended to
 *   its history) and its desired state (tier, limits, home site, HA priority).
 */

export interface Refreshable {
  refresh(): Promise<void>;
}

export function bookRefresher(books: readonly Refreshable[], intervalMs: number): Reconciler {
  return {
    name: 'books',
    leaderOnly: false,
    intervalMs,
    async pass(): Promise<PassResult> {
      const results = await Promise.allSettled(books.map((b) => b.refresh()));
      const failed = results.filter((r) => r.status === 'rejected');
      if (failed.length === books.length && failed.length > 0)
        throw (failed[0] as PromiseRejectedResult).reason;
      return { result: failed.length ? 'partial' : 'success' };
    },
  };
}

export interface StateRecorderOptions {
  snapshot: () => ClusterSnapshot;
  policyOf: (vm: string) => EffectivePolicy | null;
  store: Pick<Store, 'recordPlacement' | 'putDesired'>;
  intervalMs: number;
  log: { info(o: object, msg: string): void };
  /**
   * A VM's desired state and placement are written again after this long even when they did
   * not change (a Redis that lost them has them back by then). Default 6 x intervalMs.
   */
  refreshMs?: number;
  /** Writes in flight at once (one Redis connection pipelines them). Default 32. */
  concurrency?: number;
  /** The leader's lease token: what this recorder remembers it wrote is forgotten when it changes. */
  epoch?: () => unknown;
}

interface Written {
  desired: string;
  host: string;
  at: number;
}

export class StateRecorder implements Reconciler {
  readonly name = 'state-recorder';
  readonly leaderOnly = true;
  readonly intervalMs: number;
  /** What this recorder last wrote of each VM, and when. */
  private readonly written = new Map<string, Written>();
  private epoch: unknown;

  constructor(private readonly o: StateRecorderOptions) {
    this.intervalMs = o.intervalMs;
  }

  /**
   * Writes what changed since this recorder last wrote it (and everything every refreshMs):
   * at 20,000 VMs, writing every VM's desired state and reading its placement each pass was
   * 60,000 Redis round trips one after the other, a pass of 12-24 s. A store error ends the
   * pass (the runner logs it and backs off): Redis is down for all VMs alike.
   */
  async pass(now: number): Promise<PassResult> {
    const epoch = this.o.epoch?.();
    if (epoch !== this.epoch) {
      this.written.clear();
      this.epoch = epoch;
    }
    const refreshMs = this.o.refreshMs ?? 6 * this.o.intervalMs;
    const present = new Set<string>();
    const due: { vm: string; host: string; desired: DesiredOf; key: string }[] = [];
    for (const vm of this.o.snapshot().vms.values()) {
      if (vm.state !== 'running') continue;
      present.add(vm.name);
      const p = this.o.policyOf(vm.name);
      const desired = p
        ? { tier: p.tier, limits: p.limits, homeSite: p.homeSite, haPriority: p.haPriority }
        : null;
      const key = desired ? JSON.stringify(desired) : '';
      const w = this.written.get(vm.name);
      if (w && w.host === vm.host && w.desired === key && now - w.at < refreshMs) continue;
      due.push({ vm: vm.name, host: vm.host, desired, key });
    }
    for (const vm of this.written.keys()) if (!present.has(vm)) this.written.delete(vm);
    let firstSeen = 0;
    await eachLimited(due, this.o.concurrency ?? 32, async ({ vm, host, desired, key }) => {
      // Desired state first: whoever finds a VM's placement finds its desired state too.
      if (desired) await this.o.store.putDesired(vm, desired);
      const known = this.written.get(vm);
      if (await this.o.store.recordPlacement(vm, host, now)) {
        // A VM this recorder has not written yet (a new leader's first pass) is counted, not logged.
        if (known) this.o.log.info({ vm, host }, 'placement recorded');
        else firstSeen++;
      }
      this.written.set(vm, { desired: key, host, at: now });
    });
    if (firstSeen)
      this.o.log.info({ vms: firstSeen }, 'placements recorded (VMs not recorded before by this leader)');
    return { result: 'success' };
  }
}

type DesiredOf = Parameters<Store['putDesired']>[1] | null;

/** Runs `fn` over `items`, at most `limit` at a time; the first error stops it and is thrown. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
