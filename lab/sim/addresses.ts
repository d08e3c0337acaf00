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
    const child = execFile('ip', ['-force', '-batch', '-'], (err, _out, stderr) =>
      err ? reject(new Error(`ip -batch: ${String(stderr).trim() || err.message}`)) : resolve(),
    );
    child.stdin?.end(`${lines.join('\n')}\n`);
  });
}

/** Host addresses as /32s on interface `dev` (lab/sim/netns.ts: a veth end nobody answers behind). */
export function interfaceAddresses(dev: string): SimAddressControl {
  const lines = (op: string, list: readonly string[]) => list.map((a) => `address ${op} ${a}/32 dev ${dev}`);
  return {
    add: (list) => (list.length ? ipBatch(lines('add', list)) : Promise.resolve()),
    remove: (list) => (list.length ? ipBatch(lines('del', list)) : Promise.resolve()),
  };
}

/** Guests' addresses, counted (a VM briefly on two hosts keeps its address until both stop). */
export interface GuestAddresses {
  up(address: string): void;
  down(address: string): void;
  flushed(): Promise<void>;
}

/** Changes gathered over a turn of the event loop and applied in order, one `ip` at a time. */
export function guestAddresses(control: SimAddressControl): GuestAddresses {
  const count = new Map<string, number>();
  let pending: { add: boolean; address: string }[] = [];
  let chain: Promise<void> = Promise.resolve();
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const ops = pending;
    pending = [];
    chain = chain.then(async () => {
      // Runs of the same kind in one call each, order kept.
      for (let i = 0; i < ops.length; ) {
        let j = i;
        while (j < ops.length && ops[j]!.add === ops[i]!.add) j++;
        const list = ops.slice(i, j).map((o) => o.address);
        await (ops[i]!.add ? control.add(list) : control.remove(list)).catch((e: unknown) =>
          process.stderr.write(`sim: guest addresses: ${(e as Error).message}\n`),
        );
        i = j;
      }
    });
  };
  const push = (add: boolean, address: string) => {
    pending.push({ add, address });
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  return {
    up: (a) => {
      const n = (count.get(a) ?? 0) + 1;
      count.set(a, n);
      if (n === 1) push(true, a);
    },
    down: (a) => {
      const n = (count.get(a) ?? 0) - 1;
      if (n < 0) return;
      if (n === 0) count.delete(a);
      else count.set(a, n);
      if (n === 0) push(false, a);
    },
    flushed: async () => {
      await new Promise((r) => setImmediate(r));
      await chain;
    },
  };
}
