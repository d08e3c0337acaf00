// A process of simulated libvirt hosts (lab/sim/hosts.ts), so that a controller measured
// beside it is measured alone: `node --import tsx lab/sim/main.ts --hosts 1000 --vms-per-host 20`.
// Prints one JSON line once every host listens ({hosts: [{name, uri, address}]}), then serves
// until SIGTERM or stdin closes. Each line on stdin is a command, answered by one JSON line:
// {"op": "power-off" | "partition" | "restore", "hosts": ["h0001", ...]} -> {"op", "ok", "at"}
// ("at": epoch ms when every host named had the fault), or {"op", "ok": false, "error"}.
// With --address-dev DEV (an interface of the simulator's network namespace, lab/sim/netns.ts) every
// host's address is added to DEV at start and removed at its power off (lab/sim/addresses.ts).
// With --bmc-port P a Redfish BMC for every host (systems by host name) listens on
// 127.0.0.1:P (lab/sim/bmc.ts); the first line then also has {bmc: {port, caFile,
// passwordFile, username}}.
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { interfaceAddresses } from './addresses.ts';
import { startSimBmc } from './bmc.ts';
import { type SimCluster, startSimHosts } from './hosts.ts';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '1000' },
    'vms-per-host': { type: 'string', default: '20' },
    port: { type: 'string', default: '16509' },
    'address-prefix': { type: 'string', default: '127.1' },
    'address-dev': { type: 'string' },
    'bmc-port': { type: 'string' },
  },
  strict: true,
});
const fail = (msg: string) => {
  process.stderr.write(`sim: ${msg}\n`);
  process.exit(2);
};
const count = (name: string, v: string | undefined, max: number) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max)
    fail(`--${name} must be an integer from 1 to ${max}, got ${v}`);
  return n;
};
const hosts = count('hosts', values.hosts, 60_000);
const vmsPerHost = count('vms-per-host', values['vms-per-host'], 1000);
const port = count('port', values.port, 65_535);
const bmcPort = values['bmc-port'] === undefined ? null : count('bmc-port', values['bmc-port'], 65_535);
const prefix = values['address-prefix']!;
if (!/^\d{1,3}\.\d{1,3}$/.test(prefix))
  fail(`--address-prefix must be two octets such as 10.250, got ${prefix}`);
if (hosts > 250 * 256) fail(`--hosts: at most ${250 * 256} fit in ${prefix}.0.0/16`);

const OPS = ['power-off', 'partition', 'restore'] as const;
type Op = (typeof OPS)[number];

async function command(sim: SimCluster, line: string): Promise<object> {
  let cmd: { op?: unknown; hosts?: unknown };
  try {
    cmd = JSON.parse(line);
  } catch {
    return { ok: false, error: 'a command is one JSON object per line' };
  }
  const op = cmd.op as Op;
  if (!OPS.includes(op)) return { op: cmd.op, ok: false, error: `op must be one of ${OPS.join(', ')}` };
  if (!Array.isArray(cmd.hosts)) return { op, ok: false, error: 'hosts must be a list of host names' };
  const targets = cmd.hosts.map((n) => sim.byName(String(n)));
  const unknown = cmd.hosts.filter((_, i) => !targets[i]);
  if (unknown.length > 0) return { op, ok: false, error: `no simulated host ${unknown.join(', ')}` };
  await Promise.all(
    targets.map((h) =>
      op === 'power-off' ? h!.powerOff() : op === 'partition' ? h!.partition() : h!.restore(),
    ),
  );
  return { op, ok: true, hosts: cmd.hosts, at: Date.now() };
}

try {
  const addresses = values['address-dev'] ? interfaceAddresses(values['address-dev']) : undefined;
  const sim = await startSimHosts({
    hosts,
    vmsPerHost,
    port,
    addressPrefix: prefix,
    ...(addresses ? { addresses } : {}),
  });
  const bmc = bmcPort === null ? null : await startSimBmc(sim, { port: bmcPort });
  const stop = () => void Promise.all([sim.stop(), bmc?.close()]).then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (!line.trim()) return;
    void command(sim, line).then(
      (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
      (e: unknown) => process.stdout.write(`${JSON.stringify({ ok: false, error: (e as Error).message })}\n`),
    );
  });
  lines.on('close', stop);
  process.stdout.write(
    `${JSON.stringify({
      hosts: sim.hosts.map((h) => ({ name: h.spec.name, uri: h.uri, address: h.spec.address })),
      ...(bmc
        ? {
            bmc: {
              port: bmc.port,
              caFile: bmc.caFile,
              passwordFile: bmc.passwordFile,
              username: bmc.username,
            },
          }
        : {}),
    })}\n`,
  );
} catch (e) {
  process.stderr.write(`sim: cannot start the simulated hosts: ${(e as Error).message}\n`);
  process.exit(1);
}
