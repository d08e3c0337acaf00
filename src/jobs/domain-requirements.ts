/**
 * What a domain needs of the host it moves to, read from its XML: the CPU model it was given,
 * the disks (files) it uses and the networks or bridges its interfaces attach to.
 */

export interface DomainRequirements {
  /** The <cpu> element when it pins a model (mode custom), for virConnectCompareCPU. */
  cpuXml: string | null;
  cpuMode: 'none' | 'custom' | 'host-model' | 'host-passthrough' | 'maximum';
  /** <domain type>, <os><type arch machine>: what the destination's hypervisor must offer. */
  virttype: string | null;
  arch: string | null;
  machine: string | null;
  diskFiles: string[];
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
  const diskFiles: string[] = [];
  for (const m of xml.matchAll(/<disk\b([^>]*)>([\s\S]*?)<\/disk>/g)) {
    if (attr(m[1]!, 'type') !== 'file') continue;
    const source = /<source\b[^>]*>/.exec(m[2]!)?.[0];
    const file = source ? attr(source, 'file') : null;
    if (file) diskFiles.push(file);
  }
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
    diskFiles,
    networks,
    bridges,
  };
}

/** The host CPU model in `virsh capabilities` XML. */
export function hostCpuModel(capabilities: string): string | null {
  const host = /<host>[\s\S]*?<cpu>([\s\S]*?)<\/cpu>/.exec(capabilities)?.[1] ?? '';
  return /<model>([^<]+)<\/model>/.exec(host)?.[1] ?? null;
}
