// A simulated host's domains: their state, what libvirt's bulk stats report of them, their
// XML, and the few fields of a definition the simulator reads back (name, UUID, memory, vCPUs).
import { randomBytes } from 'node:crypto';
import { DomainStats } from '../../src/libvirt/constants.ts';
import {
  VIR_TYPED_PARAM_INT,
  VIR_TYPED_PARAM_UINT,
  VIR_TYPED_PARAM_ULLONG,
} from '../../src/libvirt/protocol/generated/common.ts';
import type { RemoteTypedParam } from '../../src/libvirt/protocol/generated/remote.ts';

/** virDomainState numbers, and the reasons the simulator gives. */
export const DomainState = { RUNNING: 1, SHUTOFF: 5 } as const;
export const ShutoffReason = { UNKNOWN: 0, SHUTDOWN: 1, DESTROYED: 2, MIGRATED: 5 } as const;

export interface SimDomain {
  name: string;
  uuid: Buffer;
  /** libvirt's domain id: positive while running, -1 while shut off. */
  id: number;
  vcpus: number;
  memoryKiB: number;
  /** Share of its vCPUs the guest keeps busy (0..1); its cpu.time grows with it. */
  load: number;
  startedAt: number;
  state: (typeof DomainState)[keyof typeof DomainState];
  /** Why it is in that state (virDomainRunningReason / virDomainShutoffReason). */
  reason: number;
  /** Defined (survives a stop) rather than transient (gone when it stops). */
  persistent: boolean;
}

/** Guest CPU time so far in ns: its load times its vCPUs since it started (0 while off). */
export function cpuTimeNs(d: SimDomain, now: number): bigint {
  if (d.state !== DomainState.RUNNING) return 0n;
  return BigInt(Math.round((now - d.startedAt) * 1e6 * d.vcpus * d.load));
}

/** The typed parameters of one domain's bulk stats for the groups asked for. */
export function domainStats(d: SimDomain, groups: number, now: number): RemoteTypedParam[] {
  const out: RemoteTypedParam[] = [];
  const int = (field: string, i: number) => out.push({ field, value: { type: VIR_TYPED_PARAM_INT, i } });
  const uint = (field: string, ui: number) => out.push({ field, value: { type: VIR_TYPED_PARAM_UINT, ui } });
  const ull = (field: string, ul: bigint) => out.push({ field, value: { type: VIR_TYPED_PARAM_ULLONG, ul } });
  const running = d.state === DomainState.RUNNING;
  const cpu = cpuTimeNs(d, now);
  const kib = BigInt(d.memoryKiB);
  if (groups & DomainStats.STATE) {
    int('state.state', d.state);
    int('state.reason', d.reason);
  }
  // As libvirtd: an inactive domain has no CPU time and only the balloon's configured sizes.
  if (groups & DomainStats.CPU_TOTAL && running) {
    ull('cpu.time', cpu);
    ull('cpu.user', (cpu * 8n) / 10n);
    ull('cpu.system', (cpu * 2n) / 10n);
  }
  if (groups & DomainStats.BALLOON) {
    ull('balloon.current', kib);
    ull('balloon.maximum', kib);
    if (running) {
      ull('balloon.swap_in', 0n);
      ull('balloon.swap_out', 0n);
      ull('balloon.major_fault', 120n);
      ull('balloon.minor_fault', 90_000n);
      ull('balloon.unused', kib / 2n);
      ull('balloon.available', (kib * 95n) / 100n);
      ull('balloon.usable', kib / 2n);
      ull('balloon.last-update', BigInt(Math.floor(now / 1000)));
      ull('balloon.rss', (kib * 6n) / 10n);
    }
  }
  if (groups & DomainStats.VCPU) {
    uint('vcpu.current', d.vcpus);
    uint('vcpu.maximum', d.vcpus);
    if (running)
      for (let i = 0; i < d.vcpus; i++) {
        int(`vcpu.${i}.state`, 1);
        ull(`vcpu.${i}.time`, cpu / BigInt(d.vcpus));
        ull(`vcpu.${i}.wait`, 0n);
      }
  }
  return out;
}

/** A VM's address (its keizoku metadata) in 10.0.0.0/8, from its UUID's last bytes. */
export function vmAddress(uuid: Buffer): string {
  return `10.${uuid[13]}.${uuid[14]}.${uuid[15]}`;
}

export const vmMetadata = (uuid: Buffer) =>
  `<kz:vm xmlns:kz="urn:keizoku:vm:1"><kz:address>${vmAddress(uuid)}</kz:address></kz:vm>`;

const uuidText = (uuid: Buffer) => uuid.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');

export function domainXml(d: SimDomain): string {
  return `<domain type='kvm'${d.state === DomainState.RUNNING ? ` id='${d.id}'` : ''}>
  <name>${d.name}</name>
  <uuid>${uuidText(d.uuid)}</uuid>
  <metadata>
    ${vmMetadata(d.uuid)}
  </metadata>
  <memory unit='KiB'>${d.memoryKiB}</memory>
  <currentMemory unit='KiB'>${d.memoryKiB}</currentMemory>
  <vcpu placement='static'>${d.vcpus}</vcpu>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><boot dev='hd'/></os>
  <cpu mode='host-model' check='partial'/>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source protocol='rbd' name='vms/${d.name}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'><source bridge='vmbr'/><model type='virtio'/></interface>
  </devices>
</domain>
`;
}

export interface DefinitionFields {
  name: string;
  uuid: Buffer;
  memoryKiB: number;
  vcpus: number;
}

const UNIT_KIB: Record<string, number> = {
  b: 1 / 1024,
  bytes: 1 / 1024,
  k: 1,
  kib: 1,
  m: 1024,
  mib: 1024,
  g: 1024 ** 2,
  gib: 1024 ** 2,
};

/**
 * The fields of a domain definition the simulator keeps, or the error libvirtd gives (its
 * message names the element). A definition without a UUID gets a random one, as in libvirt.
 */
export function parseDefinition(xml: string): DefinitionFields | { error: string } {
  const el = (tag: string) => new RegExp(`<${tag}(\\s[^>]*)?>([^<]*)</${tag}>`).exec(xml);
  if (!/^\s*(<\?xml[^>]*>\s*)?<domain[\s>]/.test(xml))
    return { error: 'XML error: expected a <domain> root element' };
  const name = el('name')?.[2]?.trim();
  if (!name) return { error: 'XML error: missing domain name information' };
  const uuidHex = el('uuid')?.[2]?.trim().replace(/-/g, '');
  if (uuidHex !== undefined && !/^[0-9a-f]{32}$/i.test(uuidHex))
    return { error: `XML error: malformed uuid element` };
  const mem = el('memory');
  if (!mem) return { error: 'XML error: missing memory element' };
  const unit = /unit=['"]([^'"]+)['"]/.exec(mem[1] ?? '')?.[1]?.toLowerCase() ?? 'kib';
  const memoryKiB = Number(mem[2]) * (UNIT_KIB[unit] ?? Number.NaN);
  if (!Number.isFinite(memoryKiB) || memoryKiB <= 0) return { error: 'XML error: invalid memory element' };
  const vcpus = Number(el('vcpu')?.[2] ?? 1);
  if (!Number.isInteger(vcpus) || vcpus < 1) return { error: 'XML error: invalid vcpu element' };
  const uuid = uuidHex ? Buffer.from(uuidHex, 'hex') : randomBytes(16);
  return { name, uuid, memoryKiB: Math.round(memoryKiB), vcpus };
}
