// A process of simulated libvirt hosts (lab/sim/hosts.ts), so that a controller measured
// beside it is measured alone: `node --import tsx lab/sim/main.ts --hosts 1000 --vms-per-host 20`.
// Prints one JSON line once every host listens ({hosts: [{name, uri, address}]}), then serves
// until SIGTERM or stdin closes.
import { parseArgs } from 'node:util';
import { startSimHosts } from './hosts.ts';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '1000' },
    'vms-per-host': { type: 'string', default: '20' },
    port: { type: 'string', default: '16509' },
  },
  strict: true,
});
const count = (name: string, v: string | undefined, max: number) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    process.stderr.write(`sim: --${name} must be an integer from 1 to ${max}, got ${v}\n`);
    process.exit(2);
  }
  return n;
};
const hosts = count('hosts', values.hosts, 60_000);
const vmsPerHost = count('vms-per-host', values['vms-per-host'], 1000);
const port = count('port', values.port, 65_535);

try {
  const sim = await startSimHosts({ hosts, vmsPerHost, port });
  const stop = () => void sim.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
  process.stdout.write(
    `${JSON.stringify({ hosts: sim.hosts.map((h) => ({ name: h.spec.name, uri: h.uri, address: h.spec.address })) })}\n`,
  );
} catch (e) {
  process.stderr.write(`sim: cannot start the simulated hosts: ${(e as Error).message}\n`);
  process.exit(1);
}
