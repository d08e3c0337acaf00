import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from './errors.ts';
import { run, waitFor } from './exec.ts';
import { definePool, killTree, removeCgroup, startHost, virsh } from './host.ts';
import {
  checkLabId,
  FIRST_VM_OCTET,
  type HostLayout,
  LAST_VM_OCTET,
  labLayout,
  vmAddress,
} from './layout.ts';
import {
  createHostNet,
  createSite,
  createWan,
  removeNetwork,
  setControllerRoute,
  setHostLinks,
} from './network.ts';
import { createLabPki } from './pki.ts';
import {
  claimLabDir,
  GUEST_DIR,
  type HostState,
  hostDir,
  type LabState,
  labDir,
  readState,
  removeLabDir,
  SHARED_MOUNT,
  sharedDir,
  type VmRecord,
  withLabLock,
  writeState,
} from './state.ts';
import { checkVmName, domainXml } from './vm.ts';

export interface UpOptions {
  id: number;
  hosts: number;
  sites: number;
  wanRateMbit?: number;
  /** `qemu` (TCG) here; `kvm` where the host kernel's KVM runs stock guests. */
  domainType?: string;
  owner?: string;
}

export const DEFAULT_WAN_RATE_MBIT = 100;

/** Brings a lab up; on any failure tears down what it made and rethrows. */
export async function upLab(opts: UpOptions): Promise<LabState> {
  const layout = labLayout(opts.id, opts.hosts, opts.sites);
  const wanRateMbit = opts.wanRateMbit ?? DEFAULT_WAN_RATE_MBIT;
  if (!(wanRateMbit > 0 && wanRateMbit <= 100_000))
    throw new LabError(`--wan-rate must be 1-100000 Mbit/s, got ${wanRateMbit}`);
  if (!existsSync(join(GUEST_DIR, 'vmlinuz'))) {
    throw new LabError(`guest image missing in ${GUEST_DIR}: run 'npm run setup' first`);
  }
  if (!claimLabDir(opts.id)) {
    throw new LabError(
      `lab ${opts.id} is already up (or half torn down): run 'npm run lab -- down --lab ${opts.id}' first`,
    );
  }
  const state: LabState = {
    id: opts.id,
    owner: opts.owner ?? `pid:${process.pid}`,
    createdAt: new Date().toISOString(),
    domainType: opts.domainType ?? process.env.KEIZOKU_LAB_DOMAIN_TYPE ?? 'qemu',
    wanRateMbit,
    hostCount: opts.hosts,
    siteCount: opts.sites,
    layout,
    namespaces: [],
    links: [],
    bridges: [],
    cgroups: [],
    hosts: layout.hosts.map((h) => ({
      name: h.name,
      reaperPid: null,
      libvirtdPid: null,
      fenced: false,
      partitioned: false,
    })),
    vms: [],
    pki: null,
  };
  const record = (list: string[]) => (name: string) => {
    list.push(name);
    writeState(state);
  };
  const rec = { link: record(state.links), bridge: record(state.bridges), netns: record(state.namespaces) };
  writeState(state);
  try {
    await createWan(layout, rec);
    for (const site of layout.sites) await createSite(layout, site, wanRateMbit, rec);
    for (const h of layout.hosts) {
      await createHostNet(h, layout.sites.find((s) => s.name === h.site)!, rec);
    }
    state.pki = await createLabPki(labDir(opts.id), layout);
    writeState(state);
    // Hosts boot in parallel: each libvirtd takes about a second to answer.
    await Promise.all(
      layout.hosts.map(async (h) => {
        state.cgroups.push(h.cgroup);
        const pids = await startHost(state.id, h, hostTls(state, h.name));
        Object.assign(hostState(state, h.name), pids);
        writeState(state);
        await definePool(h);
      }),
    );
    return state;
  } catch (e) {
    await downLab(opts.id);
    throw e;
  }
}

/** Tears down everything the lab recorded, by pid and name. Safe to run twice. */
export async function downLab(id: number): Promise<boolean> {
  checkLabId(id);
  const state = readState(id);
  if (!state) {
    removeLabDir(id);
    return false;
  }
  for (const h of state.hosts) await killTree(h.reaperPid);
  await removeNetwork(state.namespaces, state.links, state.bridges);
  for (const cg of state.cgroups) removeCgroup(cg);
  removeLabDir(id);
  return true;
}

export function requireLab(id: number): LabState {
  checkLabId(id);
  const state = readState(id);
  if (!state) throw new LabError(`no lab ${id} is up: run 'npm run lab -- up --lab ${id}' first`);
  return state;
}

function hostTls(state: LabState, host: string) {
  const pki = state.pki!;
  return { caFile: pki.caFile, ...pki.hosts[host]!, sshAuthorizedKeysFile: pki.sshAuthorizedKeysFile };
}

function hostState(state: LabState, name: string): HostState {
  return state.hosts.find((h) => h.name === name)!;
}

export function requireHost(state: LabState, name: string): HostLayout {
  const h = state.layout.hosts.find((x) => x.name === name);
  if (!h) {
    throw new LabError(
      `unknown host '${name}' in lab ${state.id} (hosts: ${state.layout.hosts.map((x) => x.name).join(', ')})`,
    );
  }
  return h;
}

export interface CreateVmOptions {
  name: string;
  host: string;
  /** local: a qcow2 in the host's own pool; shared: on the site's shared storage (HA VMs). */
  disk?: 'local' | 'shared' | 'none';
  memoryMiB?: number;
  /** Labels in the domain's keizoku metadata, e.g. { season: 'tax' }. */
  labels?: Record<string, string>;
  /** Wait until the guest answers ping (default true). */
  wait?: boolean;
}

export async function createVm(id: number, opts: CreateVmOptions): Promise<VmRecord> {
  const { vm, host } = await locked(id, (state) => reserveVm(state, opts));
  try {
    let diskPath: string | undefined;
    if (vm.disk === 'local') {
      diskPath = `/var/lib/libvirt/images/${vm.name}.qcow2`;
      await virsh(host, ['vol-create-as', 'default', `${vm.name}.qcow2`, '64M', '--format', 'qcow2']);
    } else if (vm.disk === 'shared') {
      diskPath = `${SHARED_MOUNT}/${vm.name}.qcow2`;
      const file = join(sharedDir(id, host.site), `${vm.name}.qcow2`);
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', file, '64M']);
    }
    const state = requireLab(id);
    const xml = domainXml({ vm, domainType: state.domainType, guestDir: GUEST_DIR, diskPath });
    const xmlFile = join(hostDir(id, host.name), `${vm.name}.xml`);
    writeFileSync(xmlFile, xml);
    await virsh(host, ['define', xmlFile]);
  } catch (e) {
    await locked(id, async (state) => {
      state.vms = state.vms.filter((v) => v.name !== vm.name);
    });
    throw e;
  }
  await virsh(host, ['start', vm.name]);
  if (opts.wait !== false) await waitForPing(vm.address, 60_000);
  return vm;
}

/** Validates the request and records the VM with the first free address; changes nothing on error. */
function reserveVm(state: LabState, opts: CreateVmOptions): { vm: VmRecord; host: HostLayout } {
  const nameError = checkVmName(opts.name);
  if (nameError) throw new LabError(nameError);
  const host = requireHost(state, opts.host);
  if (hostState(state, host.name).fenced)
    throw new LabError(`host '${host.name}' is fenced: 'heal ${host.name}' first`);
  if (state.vms.some((v) => v.name === opts.name))
    throw new LabError(`VM '${opts.name}' already exists in lab ${state.id}`);
  const memoryMiB = opts.memoryMiB ?? 96;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 64 || memoryMiB > 4096) {
    throw new LabError(`--memory must be 64-4096 MiB, got ${opts.memoryMiB}`);
  }
  const disk = opts.disk ?? 'none';
  if (disk !== 'local' && disk !== 'shared' && disk !== 'none')
    throw new LabError(`--disk must be 'local', 'shared' or 'none', got '${disk}'`);
  const used = new Set(state.vms.map((v) => v.octet));
  let octet = FIRST_VM_OCTET;
  while (used.has(octet)) octet++;
  if (octet > LAST_VM_OCTET) throw new LabError(`lab ${state.id} has no free VM address left`);
  const a = vmAddress(state.id, octet);
  const vm: VmRecord = {
    name: opts.name,
    createdOn: host.name,
    octet,
    address: a.address,
    mac: a.mac,
    memoryMiB,
    disk,
    ...(opts.labels && Object.keys(opts.labels).length ? { labels: { ...opts.labels } } : {}),
  };
  state.vms.push(vm);
  return { vm, host };
}

/** Runs fn on the lab's state under its lock and saves the state afterwards. */
async function locked<T>(id: number, fn: (state: LabState) => Promise<T> | T): Promise<T> {
  requireLab(id);
  return withLabLock(id, async () => {
    const state = requireLab(id);
    const out = await fn(state);
    writeState(state);
    return out;
  });
}

export async function waitForPing(address: string, timeoutMs: number): Promise<void> {
  await waitFor(`${address} to answer ping`, () => ping(address), timeoutMs, 50);
}

/** True when the address answers within 2 s (probes every 200 ms until the first reply). */
export async function ping(address: string): Promise<boolean> {
  try {
    await run('ping', ['-c', '1', '-w', '2', '-i', '0.2', '-n', '-q', address], { timeoutMs: 4_000 });
    return true;
  } catch {
    return false;
  }
}

/** Power loss: every process of the host killed by pid, its links dropped. */
export function fenceHost(id: number, name: string): Promise<void> {
  return locked(id, async (state) => {
    const h = requireHost(state, name);
    const hs = hostState(state, name);
    // Links first: a power cut sends no FIN or RST, peers must notice the silence themselves.
    await setHostLinks(h, false);
    await killTree(hs.reaperPid);
    Object.assign(hs, { fenced: true, reaperPid: null, libvirtdPid: null });
  });
}

/** Cuts only the controller's management path to the host; the host and its VMs keep running. */
export function partitionHost(id: number, name: string): Promise<void> {
  return locked(id, async (state) => {
    const h = requireHost(state, name);
    await setControllerRoute(h, state.layout.controllerMgmtAddress, true);
    hostState(state, name).partitioned = true;
  });
}

/** Undoes fence (links up, libvirtd started again; its VMs stay off) or partition. */
export function healHost(id: number, name: string): Promise<void> {
  return locked(id, async (state) => {
    const h = requireHost(state, name);
    const hs = hostState(state, name);
    if (hs.partitioned) {
      await setControllerRoute(h, state.layout.controllerMgmtAddress, false);
      hs.partitioned = false;
    }
    if (hs.fenced) {
      await setHostLinks(h, true);
      Object.assign(hs, await startHost(id, h, hostTls(state, h.name)), { fenced: false });
    }
  });
}
