/**
 * What a domain needs of the host it moves to, read from its XML: the CPU model it was given,
 * the disks it uses (files, block devices, pool volumes, network disks) and the networks or
 * bridges its interfaces attach to.
 */

/** One `<disk>`: where its data is, as the XML says (storage.ts decides what that means for a move). */
export interface DiskSource {
  /** `<disk type>`: file, block, volume, network (dir, nvme, vhostuser… are kept as read). */
  type: string;
  /** disk, cdrom, floppy, lun */
  device: string;
  /** `<target dev>` (vda): how libvirt's migrate_disks names it. */
  target: string | null;
  /** `<source file>` (file) or `<source dev>` (block); null for the other types or no source. */
  path: string | null;
  /** `<source pool volume>` of a type='volume' disk. */
  pool: string | null;
  volume: string | null;
  /** `<source protocol>` of a type='network' disk (rbd, iscsi, nbd, gluster…). */
  protocol: string | null;
  readonly: boolean;
  shareable: boolean;
}

export interface DomainRequirements {
  /** The <cpu> element when it pins a model (mode custom), for virConnectCompareCPU. */
  cpuXml: string | null;
  cpuMode: 'none' | 'custom' | 'host-model' | 'host-passthrough' | 'maximum';
  /** <domain type>, <os><type arch machine>: what the destination's hypervisor must offer. */
  virttype: string | null;
  arch: string | null;
  machine: string | null;
  disks: DiskSource[];
  networks: string[];
  bridges: string[];
}

const attr = (tag: string, name: string): string | null => {
  const m = new RegExp(`\\b${name}=(['"])(.*?)\\1`).exec(tag);
  return m ? m[2]! : null;
};

export function domainRequirements(xml: string): DomainRequirements {
  const cpu = /<cpu\b[^>]*?(?:\/>|>[\s\S]*?<\/cpu>)/.exec(xml)?.[0] ?? null;
  const mode = cpu ? (attr(cpu.slice(0, cpu.indexOf('>') + 1), 'mode') ?? 'custom') : 'none';
  const disks = [...xml.matchAll(/<disk\b([^>]*)>([\s\S]*?)<\/disk>/g)].map((m) => diskSource(m[1]!, m[2]!));
  const networks: string[] = [];
  const bridges: string[] = [];
  for (const m of xml.matchAll(/<interface\b([^>]*)>([\s\S]*?)<\/interface>/g)) {
    const type = attr(m[1]!, 'type');
    const source = /<source\b[^>]*>/.exec(m[2]!)?.[0] ?? '';
    if (type === 'network' && attr(source, 'network')) networks.push(attr(source, 'network')!);
    if (type === 'bridge' && attr(source, 'bridge')) bridges.push(attr(source, 'bridge')!);
  }
  const osType = /<os\b[^>]*>\s*<type\b[^>]*>/.exec(xml)?.[0] ?? '';
  const domainTag = /<domain\b[^>]*>/.exec(xml)?.[0] ?? '';
  return {
    virttype: attr(domainTag, 'type'),
    arch: attr(osType.slice(osType.lastIndexOf('<type')), 'arch'),
    machine: attr(osType.slice(osType.lastIndexOf('<type')), 'machine'),
    cpuXml: mode === 'custom' ? cpu : null,
    cpuMode: mode as DomainRequirements['cpuMode'],
    disks,
    networks,
    bridges,
  };
}

function diskSource(tag: string, body: string): DiskSource {
  const type = attr(tag, 'type') ?? 'file';
  const source = /<source\b[^>]*>/.exec(body)?.[0] ?? '';
  const target = /<target\b[^>]*>/.exec(body)?.[0] ?? '';
  return {
    type,
    device: attr(tag, 'device') ?? 'disk',
    target: attr(target, 'dev'),
    path: type === 'file' ? attr(source, 'file') : type === 'block' ? attr(source, 'dev') : null,
    pool: type === 'volume' ? attr(source, 'pool') : null,
    volume: type === 'volume' ? attr(source, 'volume') : null,
    protocol: type === 'network' ? attr(source, 'protocol') : null,
    readonly: /<readonly\s*\/>/.test(body),
    shareable: /<shareable\s*\/>/.test(body),
  };
}

/** The host CPU model in `virsh capabilities` XML. */
export function hostCpuModel(capabilities: string): string | null {
  const host = /<host>[\s\S]*?<cpu>([\s\S]*?)<\/cpu>/.exec(capabilities)?.[1] ?? '';
  return /<model>([^<]+)<\/model>/.exec(host)?.[1] ?? null;
}
