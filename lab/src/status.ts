import { virsh } from './host.ts';
import type { LabState } from './state.ts';

export interface HostStatus {
  name: string;
  site: string;
  uri: string;
  tlsUri: string;
  sshUri: string | null;
  mgmtAddress: string;
  netns: string;
  state: 'up' | 'fenced' | 'partitioned' | 'unreachable';
  libvirtdPid: number | null;
}

export interface VmStatus {
  name: string;
  address: string;
  /** Host where it runs, else where it is defined, else null. */
  host: string | null;
  state: string;
  disk: 'local' | 'shared' | 'none';
  memoryMiB: number;
}

export interface LabStatus {
  id: number;
  domainType: string;
  wanRateMbit: number;
  controller: { mgmtAddress: string; serviceAddress: string };
  /** CA and client certificate for the hosts' TLS URIs. */
  tls: { caFile: string; certFile: string; keyFile: string } | null;
  /** Key and known_hosts for the hosts' qemu+ssh URIs (user root). */
  ssh: { keyFile: string; knownHostsFile: string } | null;
  sites: { name: string; hosts: string[] }[];
  hosts: HostStatus[];
  vms: VmStatus[];
}

/** Domains of one host as [name, state] pairs, from `virsh list --all`. */
async function domainsOf(state: LabState, host: string): Promise<[string, string][] | null> {
  const h = state.layout.hosts.find((x) => x.name === host)!;
  try {
    const { stdout } = await virsh(h, ['list', '--all'], 10_000);
    return stdout
      .split('\n')
      .map((l) => l.trim().match(/^(\S+)\s+(\S+)\s+(.+)$/))
      .filter((m): m is RegExpMatchArray => m !== null)
      .map((m) => [m[2]!, m[3]!.trim()]);
  } catch {
    return null;
  }
}

export async function labStatus(state: LabState): Promise<LabStatus> {
  const perHost = await Promise.all(
    state.hosts.map(async (hs) => (hs.fenced ? null : await domainsOf(state, hs.name))),
  );
  const hosts: HostStatus[] = state.layout.hosts.map((h, i) => {
    const hs = state.hosts[i]!;
    const st = hs.fenced ? 'fenced' : hs.partitioned ? 'partitioned' : perHost[i] ? 'up' : 'unreachable';
    return {
      name: h.name,
      site: h.site,
      uri: h.uri,
      tlsUri: h.tlsUri,
      sshUri: state.pki ? sshUri(h.mgmtAddress, state.pki) : null,
      mgmtAddress: h.mgmtAddress,
      netns: h.netns,
      state: st,
      libvirtdPid: hs.libvirtdPid,
    };
  });
  const vms: VmStatus[] = state.vms.map((vm) => {
    let host: string | null = null;
    let vmState = 'unknown';
    perHost.forEach((doms, i) => {
      const d = doms?.find(([n]) => n === vm.name);
      if (!d) return;
      if (d[1] === 'running' || host === null) {
        host = state.hosts[i]!.name;
        vmState = d[1];
      }
    });
    return {
      name: vm.name,
      address: vm.address,
      host,
      state: vmState,
      disk: vm.disk,
      memoryMiB: vm.memoryMiB,
    };
  });
  return {
    id: state.id,
    domainType: state.domainType,
    wanRateMbit: state.wanRateMbit,
    controller: {
      mgmtAddress: state.layout.controllerMgmtAddress,
      serviceAddress: state.layout.controllerSvcAddress,
    },
    tls: state.pki
      ? { caFile: state.pki.caFile, certFile: state.pki.clientCertFile, keyFile: state.pki.clientKeyFile }
      : null,
    ssh: state.pki
      ? { keyFile: state.pki.sshClientKeyFile, knownHostsFile: state.pki.sshKnownHostsFile }
      : null,
    sites: state.layout.sites.map((s) => ({
      name: s.name,
      hosts: state.layout.hosts.filter((h) => h.site === s.name).map((h) => h.name),
    })),
    hosts,
    vms,
  };
}

/** qemu+ssh URI of a lab host with the lab's key and known_hosts. */
export function sshUri(
  address: string,
  pki: { sshClientKeyFile: string; sshKnownHostsFile: string },
): string {
  return `qemu+ssh://root@${address}/system?keyfile=${pki.sshClientKeyFile}&known_hosts=${pki.sshKnownHostsFile}`;
}
