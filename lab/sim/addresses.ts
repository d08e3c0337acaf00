// The network side of a simulated host's power: its address on an interface of the
// simulator's network namespace. A powered-off host's address is removed, so that ICMP to its
// management address goes unanswered and connects to it hang, as with a machine that is off
// (on loopback, 127.0.0.0/8 always answers: keizokud would judge the host partitioned).
import { execFile } from 'node:child_process';

export interface SimAddressControl {
  add(addresses: readonly string[]): Promise<void>;
  remove(addresses: readonly string[]): Promise<void>;
}

/** `ip -batch` of `ip address add|del A/32 dev DEV` lines; rejects with ip's own message. */
function ipBatch(lines: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('ip', ['-batch', '-'], (err, _out, stderr) =>
      err ? reject(new Error(`ip -batch: ${String(stderr).trim() || err.message}`)) : resolve(),
    );
    child.stdin?.end(`${lines.join('\n')}\n`);
  });
}

/** Host addresses as /32s on interface `dev` (a dummy interface: what leaves by it is dropped). */
export function interfaceAddresses(dev: string): SimAddressControl {
  const lines = (op: string, list: readonly string[]) => list.map((a) => `address ${op} ${a}/32 dev ${dev}`);
  return {
    add: (list) => (list.length ? ipBatch(lines('add', list)) : Promise.resolve()),
    remove: (list) => (list.length ? ipBatch(lines('del', list)) : Promise.resolve()),
  };
}
