import type { LimitsPolicy } from '../config/index.ts';
import type { DeepReadonly } from '../config/load.ts';
import {
  burstAllowance,
  type CpuRaise,
  type Drift,
  desiredTuning,
  raiseHolding,
  type TuningGroups,
  tuningDrift,
} from '../core/limits.ts';
import type { ClusterSnapshot } from '../core/model.ts';
import type { LibvirtClient } from '../libvirt/index.ts';
import type { Metrics } from '../metrics/registry.ts';
import type { AuditInput } from '../store/audit.ts';
import { FencedError } from '../store/lease.ts';
import type { PassResult, Reconciler } from './runner.ts';

export type ComplianceStatus = 'compliant' | 'fixed' | 'failed' | 'unmanaged';

export interface VmCompliance {
  vm: string;
  host: string;
  profile: string | null;
  status: ComplianceStatus;
  /** What was out of line (fixed) or still is (failed). */
  drift: Drift[];
  /** The host's reason when a limit could not be applied. */
  reason?: string;
  checkedAt: number;
}

export interface LimitsLoopOptions {
  snapshot: () => ClusterSnapshot;
  clientFor: (host: string) => LibvirtClient | null;
  /** The limits profile a VM should have (config, or an API override), null for none. */
  limitsProfileOf: (vm: string) => string | null;
  limits: DeepReadonly<LimitsPolicy>;
  intervalMs: number;
  metrics: Pick<Metrics, 'vmLimitsCompliance'>;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  /** Where each change the loop makes is recorded (action `vm.limits`, actor controller). */
  audit?: { record(entry: AuditInput): Promise<unknown> };
  /**
   * Resolves only while this replica still leads (LeaderLease.fence); awaited right before each
   * change to a host, since a pass can last long after its start's leadership check.
   */
  fence?: () => Promise<void>;
  /**
   * The CPU cap DRS raised for the VM within its profile's burst allowance (store/cpu-raises.ts).
   * While it holds the loop keeps it; once it lapses (the burst is over and DRS stopped renewing
   * it) the loop puts the profile's cap back.
   */
  raiseOf?: (vm: string) => Promise<CpuRaise | null>;
}

const macs = (xml: string) =>
  [...xml.matchAll(/<mac address=['"]([0-9a-fA-F:]+)['"]/g)].map((m) => m[1]!.toLowerCase());

/**
 * Level-triggered: every pass reads each managed VM's tuning from the host it runs on, compares
 * it with its profile, applies what differs, and records the outcome. A move, a restart or
 * drift by hand is repaired on the next pass. Run by the LoopRunner, on the leader only.
 */
export class LimitsLoop implements Reconciler {
  readonly name = 'limits';
  readonly leaderOnly = true;
  readonly intervalMs: number;
  readonly compliance = new Map<string, VmCompliance>();

  constructor(private readonly o: LimitsLoopOptions) {
    this.intervalMs = o.intervalMs;
  }

  /** One pass over every running VM; `partial` when any managed VM could not be brought in line. */
  async pass(now: number): Promise<PassResult> {
    const snap = this.o.snapshot();
    const seen = new Set<string>();
    let failed = 0;
    for (const vm of snap.vms.values()) {
      if (vm.state !== 'running') continue;
      seen.add(vm.name);
      const profileName = this.o.limitsProfileOf(vm.name);
      const c = profileName
        ? await this.reconcile(vm.name, vm.host, profileName, now)
        : this.record(vm.name, vm.host, null, 'unmanaged', [], now);
      if (c.status === 'failed') failed++;
    }
    for (const name of this.compliance.keys()) if (!seen.has(name)) this.compliance.delete(name);
    this.publish();
    return { result: failed ? 'partial' : 'success' };
  }

  private record(
    vm: string,
    host: string,
    profile: string | null,
    status: ComplianceStatus,
    drift: Drift[],
    checkedAt: number,
    reason?: string,
  ): VmCompliance {
    const c: VmCompliance = {
      vm,
      host,
      profile,
      status,
      drift,
      checkedAt,
      ...(reason ? { reason } : {}),
    };
    this.compliance.set(vm, c);
    return c;
  }

  private async reconcile(vm: string, host: string, profileName: string, now: number): Promise<VmCompliance> {
    const client = this.o.clientFor(host);
    const profile = this.o.limits.profiles[profileName];
    if (!client || !profile)
      return this.record(
        vm,
        host,
        profileName,
        'failed',
        [],
        now,
        client ? `unknown profile ${profileName}` : `host ${host} not connected`,
      );
    try {
      const dom = await client.lookupByName(vm);
      const xml = await client.getXml(dom);
      const devices = { hostBlockDevices: [], interfaceMacs: macs(xml) };
      const p = profile as Parameters<typeof desiredTuning>[0];
      // Only a profile with a burst allowance can have a raise: no look-up for the others.
      const raise = burstAllowance(p) ? raiseHolding(await this.o.raiseOf?.(vm), now) : null;
      const desired = desiredTuning(p, devices, raise);
      const observe = async () => ({
        scheduler: await client.getSchedulerParameters(dom),
        memory: await client.getMemoryParameters(dom),
        blkio: await client.getBlkioParameters(dom),
        interfaces: Object.fromEntries(
          await Promise.all(
            Object.keys(desired.interfaces).map(
              async (mac) => [mac, await client.getInterfaceParameters(dom, mac)] as const,
            ),
          ),
        ),
      });
      const drift = tuningDrift(desired, await observe());
      if (drift.length === 0) return this.record(vm, host, profileName, 'compliant', [], now);
      const reason = await this.apply(client, dom, desired, drift);
      const after = tuningDrift(desired, await observe());
      if (after.length === 0 && !reason) {
        this.o.log.info(
          { vm, host, profile: profileName, fixed: drift.map((d) => `${d.group}.${d.field}`) },
          'limits applied',
        );
        await this.audited(vm, host, profileName, drift, null);
        return this.record(vm, host, profileName, 'fixed', drift, now);
      }
      const failure = reason ?? 'host did not keep the values';
      const before = this.compliance.get(vm);
      // Each pass retries; only a new failure is logged and audited, not every retry.
      if (before?.status !== 'failed' || before.reason !== failure) {
        this.o.log.warn({ vm, host, profile: profileName, reason }, 'limits could not be applied');
        await this.audited(vm, host, profileName, drift, failure);
      }
      return this.record(vm, host, profileName, 'failed', after, now, failure);
    } catch (e) {
      // Deposed in the middle of the pass: no further change to any host.
      if (e instanceof FencedError) throw e;
      return this.record(vm, host, profileName, 'failed', [], now, (e as Error).message);
    }
  }

  /** One audit entry per change attempted: the drift found, and the host's error if it failed. */
  private async audited(vm: string, host: string, profile: string, drift: Drift[], error: string | null) {
    try {
      await this.o.audit?.record({
        actor: 'controller',
        actorName: 'controller',
        action: 'vm.limits',
        target: vm,
        params: { host, profile, drift },
        outcome: error ? 'failed' : 'succeeded',
        message: error,
      });
    } catch (e) {
      this.o.log.warn({ vm, err: (e as Error).message }, 'auditing a limits change failed');
    }
  }

  /** Applies the groups that drifted; returns the first host error, after trying every group. */
  private async apply(
    client: LibvirtClient,
    dom: Awaited<ReturnType<LibvirtClient['lookupByName']>>,
    want: TuningGroups,
    drift: Drift[],
  ): Promise<string | undefined> {
    const groups = new Set(drift.map((d) => d.group));
    const errors: string[] = [];
    const attempt = async (what: string, set: () => Promise<void>) => {
      await this.o.fence?.(); // a FencedError ends the pass
      try {
        await set();
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
      }
    };
    if (groups.has('scheduler'))
      await attempt('cpu', () => client.setSchedulerParameters(dom, want.scheduler));
    if (groups.has('memory')) await attempt('memory', () => client.setMemoryParameters(dom, want.memory));
    if (groups.has('blkio')) await attempt('disk', () => client.setBlkioParameters(dom, want.blkio));
    for (const [mac, p] of Object.entries(want.interfaces)) {
      if (groups.has(`interface ${mac}`))
        await attempt(`network ${mac}`, () => client.setInterfaceParameters(dom, mac, p));
    }
    return errors.length ? errors.join('; ') : undefined;
  }

  private publish(): void {
    const g = this.o.metrics.vmLimitsCompliance;
    g.reset();
    for (const c of this.compliance.values()) g.set({ vm: c.vm, host: c.host, status: c.status }, 1);
  }
}
