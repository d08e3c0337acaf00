import type { LabState } from '../../lab/index.ts';
import { type ConnectOptions, connectLibvirt, type LibvirtClient } from '../../src/libvirt/index.ts';

/** A client of one lab host over the lab's plain TCP (marked insecure, as only the lab may). */
export function openLabClient(
  lab: LabState,
  host: string,
  opts: ConnectOptions = {},
): Promise<LibvirtClient> {
  const h = lab.layout.hosts.find((x) => x.name === host);
  if (!h) throw new Error(`no host ${host} in lab ${lab.id}`);
  return connectLibvirt(h.uri, { insecure: true, ...opts });
}

/** CPU the VM got over a window, in CPUs (1.0 = a whole physical CPU), from libvirt's cpu.time. */
export async function cpuShare(c: LibvirtClient, vm: string, windowMs = 3_000): Promise<number> {
  const read = async () =>
    Number((await c.getAllDomainStats(2, 0, [await c.lookupByName(vm)]))[0]!.stats['cpu.time']);
  const a = await read();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, windowMs));
  const b = await read();
  return (b - a) / 1e6 / (performance.now() - t0);
}
