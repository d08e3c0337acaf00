import type { Redis } from 'ioredis';
import type { ClusterSnapshot } from '../core/model.ts';
import type { LibvirtClient } from '../libvirt/index.ts';
import type { AuditLog } from '../store/audit.ts';
import type { FenceBook } from '../store/fences.ts';
import type { HaPause } from '../store/ha.ts';
import type { EffectivePolicy, PolicyOverride } from '../store/policy-book.ts';
import type { ProbeBook } from '../store/probe-book.ts';
import type { Store } from '../store/store.ts';

export type { EffectivePolicy as VmPolicyView, PolicyOverride };

/** What the routes read and act through; keizokud wires it to its loops and adapters. */
export interface ApiDeps {
  snapshot(): ClusterSnapshot;
  clientFor(host: string): LibvirtClient | null;
  policyOf(vm: string): EffectivePolicy | null;
  setPolicy(vm: string, override: PolicyOverride | null): Promise<void>;
  addressesOf(vm: string): readonly string[];
  /** A VM's labels from its domain metadata (none when absent). */
  labelsOf?(vm: string): Readonly<Record<string, string>>;
  tierIds: readonly string[];
  limitsProfiles: readonly string[];
  store: Store;
  audit: AuditLog;
  /** The probe registry and outage reports (a ProbeBook on `redis` and `prefix` when absent). */
  probeBook?: ProbeBook;
  /** Counted instead of audited: probe agents' registrations. */
  probeRegistrations?: { inc(labels: { probe: string }): void };
  redis: Redis;
  prefix: string;
  /** Confirmed fences (store/fences.ts); without it a power off cannot be confirmed here. */
  fences?: Pick<FenceBook, 'record'>;
  /** The failover pause in force (store/ha.ts), shown with the hosts; none when absent. */
  haPaused?(): Promise<HaPause | null>;
}
