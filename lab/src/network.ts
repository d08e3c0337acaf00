import { run, tryRun, waitFor } from './exec.ts';
import type { HostLayout, LabLayout, SiteLayout } from './layout.ts';

const ip = (...args: string[]) => run('ip', args);

export async function linkExists(name: string): Promise<boolean> {
  return tryRun('ip', ['link', 'show', 'dev', name]);
}

export async function netnsExists(name: string): Promise<boolean> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout.split('\n').some((l) => l.split(' ')[0] === name);
}

/**
 * A site's switch must not be an IP host. Bridges in the root namespace are, by default: with
 * arp_ignore 0 each answers ARP for the controller's addresses with its own MAC, so a guest
 * that asked while in dc2 sent its replies to dc2's switch, which the root namespace took in
 * without the WAN, and after a move to dc1 to a MAC that lives in dc2: seconds of lost replies
 * until the guest asked again (docs/lab.md). Only the controller's own bridges keep an address.
 */
async function silence(dev: string, netns?: string): Promise<void> {
  const sysctl = [
    'sysctl',
    '-qw',
    `net.ipv4.conf.${dev}.arp_ignore=8`,
    `net.ipv6.conf.${dev}.disable_ipv6=1`,
  ];
  if (netns) await ip('netns', 'exec', netns, ...sysctl);
  else await run(sysctl[0]!, sysctl.slice(1));
}

async function bridge(name: string, address?: string): Promise<void> {
  await ip('link', 'add', name, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0');
  if (address) await ip('addr', 'add', address, 'dev', name);
  else await silence(name);
  await ip('link', 'set', name, 'up');
}

/** tbf on egress of both uplink ends shapes each direction of the WAN to `rateMbit`. */
async function shape(dev: string, rateMbit: number): Promise<void> {
  // Burst must hold at least one timer tick of traffic; 1/250 s of the rate, 16 KiB minimum.
  const burstBytes = Math.max(16 * 1024, Math.ceil((rateMbit * 1e6) / 8 / 250));
  await run('tc', [
    'qdisc',
    'add',
    'dev',
    dev,
    'root',
    'tbf',
    'rate',
    `${rateMbit}mbit`,
    'burst',
    `${burstBytes}`,
    'latency',
    '50ms',
  ]);
}

export interface Recorder {
  link(name: string): void;
  bridge(name: string): void;
  netns(name: string): void;
}

export async function createWan(l: LabLayout, rec: Recorder): Promise<void> {
  rec.bridge(l.wanMgmtBridge);
  await bridge(l.wanMgmtBridge, `${l.controllerMgmtAddress}/24`);
  rec.bridge(l.wanSvcBridge);
  await bridge(l.wanSvcBridge, `${l.controllerSvcAddress}/24`);
}

export async function createSite(
  l: LabLayout,
  site: SiteLayout,
  rateMbit: number,
  rec: Recorder,
): Promise<void> {
  for (const [br, wan, [siteEnd, wanEnd]] of [
    [site.mgmtBridge, l.wanMgmtBridge, site.mgmtUplink],
    [site.svcBridge, l.wanSvcBridge, site.svcUplink],
  ] as const) {
    rec.bridge(br);
    await bridge(br);
    rec.link(siteEnd);
    await ip('link', 'add', siteEnd, 'type', 'veth', 'peer', 'name', wanEnd);
    await ip('link', 'set', siteEnd, 'master', br);
    await ip('link', 'set', wanEnd, 'master', wan);
    await shape(siteEnd, rateMbit);
    await shape(wanEnd, rateMbit);
    await ip('link', 'set', siteEnd, 'up');
    await ip('link', 'set', wanEnd, 'up');
  }
}

/** The host's namespace, its management address, and `vmbr` bridging VMs onto the site's service segment. */
export async function createHostNet(host: HostLayout, site: SiteLayout, rec: Recorder): Promise<void> {
  const ns = host.netns;
  rec.netns(ns);
  await ip('netns', 'add', ns);
  await ip('-n', ns, 'link', 'set', 'lo', 'up');
  rec.link(host.mgmtLink);
  await ip('link', 'add', host.mgmtLink, 'type', 'veth', 'peer', 'name', 'mgmt0', 'netns', ns);
  await ip('link', 'set', host.mgmtLink, 'master', site.mgmtBridge);
  await ip('link', 'set', host.mgmtLink, 'up');
  await ip('-n', ns, 'addr', 'add', `${host.mgmtAddress}/24`, 'dev', 'mgmt0');
  await ip('-n', ns, 'link', 'set', 'mgmt0', 'up');
  rec.link(host.svcLink);
  await ip('link', 'add', host.svcLink, 'type', 'veth', 'peer', 'name', 'svc0', 'netns', ns);
  await ip('link', 'set', host.svcLink, 'master', site.svcBridge);
  await ip('link', 'set', host.svcLink, 'up');
  await ip('-n', ns, 'link', 'add', 'vmbr', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0');
  await silence('vmbr', ns);
  await ip('-n', ns, 'link', 'set', 'svc0', 'master', 'vmbr');
  await ip('-n', ns, 'link', 'set', 'svc0', 'up');
  await ip('-n', ns, 'link', 'set', 'vmbr', 'up');
}

/** Sets the root-side ends of a host's links up or down (power loss cuts both networks). */
export async function setHostLinks(host: HostLayout, up: boolean): Promise<void> {
  for (const l of [host.mgmtLink, host.svcLink]) await ip('link', 'set', l, up ? 'up' : 'down');
}

/** Cuts (or restores) only the path between the host and the controller's management address. */
export async function setControllerRoute(host: HostLayout, controller: string, cut: boolean): Promise<void> {
  const args = ['-n', host.netns, 'route', cut ? 'replace' : 'del', 'blackhole', `${controller}/32`];
  if (cut) await ip(...args);
  else await tryRun('ip', args);
}

/** Removes what was recorded, tolerating what is already gone; waits until the names are free. */
export async function removeNetwork(namespaces: string[], links: string[], bridges: string[]): Promise<void> {
  for (const ns of namespaces) await tryRun('ip', ['netns', 'del', ns]);
  // A veth outlives its namespace for a moment: delete the root ends explicitly.
  for (const l of links) await tryRun('ip', ['link', 'del', l]);
  for (const b of bridges) await tryRun('ip', ['link', 'del', b]);
  await waitFor(
    'lab links to disappear',
    async () => {
      for (const n of [...links, ...bridges]) if (await linkExists(n)) return false;
      for (const ns of namespaces) if (await netnsExists(ns)) return false;
      return true;
    },
    10_000,
  );
}
