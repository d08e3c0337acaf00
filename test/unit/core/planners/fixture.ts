import type { HostSnapshot } from '../../../../src/core/model.ts';
import { context, host as placementHost } from '../placement/fixtures.ts';

// The placement tests' fixture, with the four-CPU hosts the planner, failover and loop tests
// were written against.
export { MiB, snap, vm } from '../placement/fixtures.ts';

export const host = (
  name: string,
  site: string,
  memMiB: number,
  o: Partial<HostSnapshot> = {},
): HostSnapshot => placementHost(name, site, memMiB, { cpus: 4, ...o });

export const placement = context();

export const who = { id: 'dec-1', at: 5, ref: 'api', requestedBy: { id: 't1', name: 'ops' } };
