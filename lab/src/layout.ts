import { LabError } from './errors.ts';

/**
 * Names and addresses of a lab, a pure function of its id, host count and site count.
 * Everything a lab creates carries its id, so two labs on one machine never collide:
 * lab N uses 10.(100+N).0.0/24 for management and 10.(100+N).1.0/24 for VMs, and names
 * starting with `kzN`.
 */
export const MAX_LAB_ID = 49;
export const MAX_HOSTS = 9;
export const LIBVIRT_TCP_PORT = 16509;
export const FIRST_VM_OCTET = 10;
export const LAST_VM_OCTET = 250;

export interface SiteLayout {
  name: string;
  index: number;
  mgmtBridge: string;
  svcBridge: string;
  /** Root-namespace ends of the uplink veths: [site end, WAN end] for management and service. */
  mgmtUplink: [string, string];
  svcUplink: [string, string];
}

export interface HostLayout {
  name: string;
  index: number;
  site: string;
  netns: string;
  mgmtAddress: string;
  /** Plain TCP, lab only (needs the insecure flag in keizoku). */
  uri: string;
  /** TLS with the lab's CA: how keizoku reaches real hosts. */
  tlsUri: string;
  /** Root-namespace ends of the host's veths (the other ends are mgmt0 and svc0 inside). */
  mgmtLink: string;
  svcLink: string;
  cgroup: string;
  hostUuid: string;
}

export interface LabLayout {
  id: number;
  prefix: string;
  mgmtNet: string;
  svcNet: string;
  controllerMgmtAddress: string;
  controllerSvcAddress: string;
  wanMgmtBridge: string;
  wanSvcBridge: string;
  sites: SiteLayout[];
  hosts: HostLayout[];
}

export function checkLabId(id: number): number {
  if (!Number.isInteger(id) || id < 0 || id > MAX_LAB_ID) {
    throw new LabError(`lab id must be an integer from 0 to ${MAX_LAB_ID}, got ${id}`);
  }
  return id;
}

export function labLayout(id: number, hostCount: number, siteCount: number): LabLayout {
  checkLabId(id);
  if (!Number.isInteger(hostCount) || hostCount < 1 || hostCount > MAX_HOSTS) {
    throw new LabError(`--hosts must be from 1 to ${MAX_HOSTS}, got ${hostCount}`);
  }
  if (!Number.isInteger(siteCount) || siteCount < 1 || siteCount > hostCount) {
    throw new LabError(`--sites must be from 1 to the number of hosts (${hostCount}), got ${siteCount}`);
  }
  const p = `kz${id}`;
  const net = `10.${100 + id}`;
  const sites: SiteLayout[] = [];
  for (let s = 1; s <= siteCount; s++) {
    sites.push({
      name: `dc${s}`,
      index: s,
      mgmtBridge: `${p}-m${s}`,
      svcBridge: `${p}-v${s}`,
      mgmtUplink: [`${p}s${s}m`, `${p}s${s}mw`],
      svcUplink: [`${p}s${s}v`, `${p}s${s}vw`],
    });
  }
  const hosts: HostLayout[] = [];
  for (let i = 1; i <= hostCount; i++) {
    // Contiguous blocks: 3 hosts over 2 sites gives dc1 = h1,h2 and dc2 = h3.
    const site = sites[Math.floor(((i - 1) * siteCount) / hostCount)]!;
    const mgmtAddress = `${net}.0.${10 + i}`;
    hosts.push({
      name: `h${i}`,
      index: i,
      site: site.name,
      netns: `${p}-h${i}`,
      mgmtAddress,
      uri: `qemu+tcp://${mgmtAddress}/system`,
      tlsUri: `qemu+tls://${mgmtAddress}/system`,
      mgmtLink: `${p}h${i}m`,
      svcLink: `${p}h${i}v`,
      cgroup: `${p}-h${i}`,
      hostUuid: `6b65697a-6f6b-4c61-8${String(id).padStart(3, '0')}-${String(i).padStart(12, '0')}`,
    });
  }
  return {
    id,
    prefix: p,
    mgmtNet: `${net}.0.0/24`,
    svcNet: `${net}.1.0/24`,
    controllerMgmtAddress: `${net}.0.1`,
    controllerSvcAddress: `${net}.1.1`,
    wanMgmtBridge: `${p}-wm`,
    wanSvcBridge: `${p}-wv`,
    sites,
    hosts,
  };
}

/** The fixed address and MAC of the VM in slot `octet` of lab `id`. */
export function vmAddress(id: number, octet: number): { address: string; cidr: string; mac: string } {
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  return {
    address: `10.${100 + id}.1.${octet}`,
    cidr: `10.${100 + id}.1.${octet}/24`,
    mac: `52:54:00:${hex(100 + id)}:01:${hex(octet)}`,
  };
}
