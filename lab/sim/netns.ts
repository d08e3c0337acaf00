// A network namespace for simulated hosts: loopback up and a veth pair, one end holding the
// hosts' and their guests' addresses (lab/sim/addresses.ts), the other end bare. 10.0.0.0/8
// is routed to the first end: an address taken away (a host powered off) is asked for by ARP
// on the link and nobody answers, as for a machine without power on a LAN (ICMP silent,
// a connect fails with "no route to host" after the ARP timeout).
import { execFileSync } from 'node:child_process';

export const SIM_DEV = 'sim0';
export const SIM_HOST_PREFIX = '10.250';

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

export interface SimNetns {
  name: string;
  dev: string;
  /** argv prefix that runs a command inside the namespace. */
  exec: string[];
  remove(): void;
}

export function createSimNetns(name: string): SimNetns {
  ip('netns', 'add', name);
  const remove = () => {
    try {
      ip('netns', 'del', name);
    } catch {
      // already gone
    }
  };
  try {
    ip('-n', name, 'link', 'set', 'lo', 'up');
    ip('-n', name, 'link', 'add', SIM_DEV, 'type', 'veth', 'peer', 'name', `${SIM_DEV}p`);
    ip('-n', name, 'link', 'set', SIM_DEV, 'up');
    ip('-n', name, 'link', 'set', `${SIM_DEV}p`, 'up');
    ip('-n', name, 'route', 'add', '10.0.0.0/8', 'dev', SIM_DEV);
  } catch (e) {
    remove();
    throw new Error(`network namespace ${name}: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`);
  }
  return { name, dev: SIM_DEV, exec: ['ip', 'netns', 'exec', name], remove };
}
