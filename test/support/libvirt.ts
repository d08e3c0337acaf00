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
