import type { VmSnapshot } from './model.ts';

/**
 * A VM's size from its stored inactive domain XML, for a restart planned by a controller that
 * never saw the VM running (it started after the host was lost). Pure. Reads `<memory>` (with
 * its unit) and `<vcpu>`; null when either is missing.
 */

const UNIT_KIB: Record<string, number> = {
  b: 1 / 1024,
  bytes: 1 / 1024,
  k: 1,
  kib: 1,
  kb: 1000 / 1024,
  m: 1024,
  mib: 1024,
  mb: 1e6 / 1024,
  g: 1024 ** 2,
  gib: 1024 ** 2,
  gb: 1e9 / 1024,
  t: 1024 ** 3,
  tib: 1024 ** 3,
};

export function vmFromDomainXml(vm: string, host: string, xml: string | null): VmSnapshot | null {
  if (!xml) return null;
  const mem = /<memory(?:\s+unit=['"]([A-Za-z]+)['"])?[^>]*>\s*(\d+)\s*<\/memory>/.exec(xml);
  const cpu = /<vcpu[^>]*>\s*(\d+)\s*<\/vcpu>/.exec(xml);
  if (!mem || !cpu) return null;
  const factor = UNIT_KIB[(mem[1] ?? 'KiB').toLowerCase()];
  if (factor === undefined) return null;
  const uuid = /<uuid>\s*([0-9a-fA-F-]+)\s*<\/uuid>/.exec(xml)?.[1] ?? vm;
  return {
    name: vm,
    uuid,
    host,
    state: 'shutoff',
    vcpus: Number(cpu[1]),
    memoryKiB: Math.round(Number(mem[2]) * factor),
    cpuUsage: null,
    memoryUsedKiB: null,
  };
}
