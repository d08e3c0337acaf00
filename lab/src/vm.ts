import { join } from 'node:path';
import type { VmRecord } from './state.ts';

export interface DomainXmlInput {
  vm: VmRecord;
  domainType: string;
  guestDir: string;
  diskPath?: string;
}

/** The namespace of keizoku's element in a domain's <metadata>: the addresses the probe pings and the labels policies select by. */
const KEIZOKU_METADATA_NS = 'urn:keizoku:vm:1';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;');

const labelXml = (labels: Record<string, string> = {}) =>
  Object.entries(labels)
    .map(([k, v]) => `<kz:label name='${esc(k)}'>${esc(v)}</kz:label>`)
    .join('');

/** The lab guest: direct kernel boot, one virtio NIC on the host's vmbr, optional local qcow2. */
export function domainXml({ vm, domainType, guestDir, diskPath }: DomainXmlInput): string {
  const disk = diskPath
    ? `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${esc(diskPath)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>\n`
    : '';
  return `<domain type='${esc(domainType)}'>
  <name>${esc(vm.name)}</name>
  <metadata>
    <kz:vm xmlns:kz='${KEIZOKU_METADATA_NS}'><kz:address>${vm.address}</kz:address>${labelXml(vm.labels)}</kz:vm>
  </metadata>
  <memory unit='MiB'>${vm.memoryMiB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${esc(join(guestDir, 'vmlinuz'))}</kernel>
    <initrd>${esc(join(guestDir, 'initramfs.gz'))}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 guestip=${vm.address}/24 guestname=${esc(vm.name)}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
${disk}    <interface type='bridge'>
      <source bridge='vmbr'/>
      <mac address='${vm.mac}'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'><log file='/var/log/libvirt/${esc(vm.name)}-console.log' append='on'/></serial>
    <console type='pty'/>
    <memballoon model='virtio'/>
  </devices>
</domain>
`;
}

/** VM names become file and domain names: keep them to a safe, short alphabet. */
export function checkVmName(name: string): string | null {
  if (!/^[a-z][a-z0-9-]{0,30}$/.test(name)) {
    return `VM name '${name}' is invalid: use 1-31 characters, lower-case letters, digits and '-', starting with a letter`;
  }
  return null;
}
