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
}

export class StateRecorder implements Reconciler {
  readonly name = 'state-recorder';
  readonly leaderOnly = true;
  readonly intervalMs: number;

  constructor(private readonly o: StateRecorderOptions) {
    this.intervalMs = o.intervalMs;
  }

  /** A store error ends the pass (the runner logs it and backs off): Redis is down for all VMs alike. */
  async pass(now: number): Promise<PassResult> {
    for (const vm of this.o.snapshot().vms.values()) {
      if (vm.state !== 'running') continue;
      // Desired state first: whoever finds a VM's placement finds its desired state too.
      const p = this.o.policyOf(vm.name);
      if (p)
        await this.o.store.putDesired(vm.name, {
          tier: p.tier,
          limits: p.limits,
          homeSite: p.homeSite,
          haPriority: p.haPriority,
        });
      if (await this.o.store.recordPlacement(vm.name, vm.host, now))
        this.o.log.info({ vm: vm.name, host: vm.host }, 'placement recorded');
    }
    return { result: 'success' };
  }
}
