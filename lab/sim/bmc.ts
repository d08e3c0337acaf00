// The simulated hosts' BMC: one Redfish endpoint (HTTPS, basic auth) whose systems are the
// simulated hosts by name, so that keizokud's redfish fence powers them off and on as it
// would a real host's BMC (a chassis manager serving many systems).
import { type RedfishEndpoint, startRedfishEndpoint } from '../../test/support/redfish-server.ts';
import type { SimCluster } from './hosts.ts';

export function startSimBmc(
  sim: SimCluster,
  listen: { host?: string; port?: number } = {},
): Promise<RedfishEndpoint> {
  return startRedfishEndpoint(
    {
      powerOf: (id) => {
        const h = sim.byName(id);
        return h ? (h.power === 'off' ? 'Off' : 'On') : undefined;
      },
      reset: (id, type) => {
        const h = sim.byName(id)!;
        if (type === 'ForceOff') void h.powerOff();
        else if (type === 'On') void h.restore();
        else return false;
        return true;
      },
    },
    listen,
  );
}
