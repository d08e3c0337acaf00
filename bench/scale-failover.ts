// bench:scale's failover phase: 20 simulated hosts powered off at once (their addresses and
// their guests' taken away: lab/sim/netns.ts), keizokud as configured by the bench (redfish
// fence through the simulator's BMC, one probe agent as witness), until every VM of those
// hosts runs elsewhere. Figures from keizokud's own failover records (GET /v1/ha/failovers),
// checked against the inventory (GET /v1/vms): each VM running once, on a host still up.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../lab/index.ts';
import { vmAddress } from '../lab/sim/domains.ts';
import { simHostName, simUuid } from '../lab/sim/hosts.ts';

export interface FailoverPhaseInput {
  dir: string;
  api: string;
  viewerToken: string;
  probeToken: string;
  hosts: number;
  vmsPerHost: number;
  /** VMs 1..haVmsPerHost of each host are in a tier with failover (the rest are not restarted). */
  haVmsPerHost: number;
  failed: number;
  /** Sends one command to the simulator and resolves with its reply. */
  sim: (cmd: object) => Promise<{ ok: boolean; at?: number; error?: string }>;
  timeoutMs: number;
}

interface FailoverVm {
  vm: string;
  to: string | null;
  placedAt: number | null;
  runningAt: number | null;
}
interface FailoverRecord {
  id: string;
  host: string;
  declaredDownAt: number | null;
  fence: { confirmedAt?: number | null } | null;
  recoveredAt: number | null;
  vms: FailoverVm[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function getJson(url: string, token: string): Promise<unknown> {
  const r = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`GET ${url} answered ${r.status}`);
  return r.json();
}

const vmName = (h: number, v: number) => `vm-${simHostName(h)}-${String(v + 1).padStart(2, '0')}`;

/**
 * The hosts to power off: spread over the cluster and over its four sites alike (host i is in
 * site i % 4, and a VM restarts in its own site), and the host after each, whose VMs the probe
 * agent also watches, so that the witness is no list of the victims only.
 */
export function failoverHosts(hosts: number, failed: number): { failed: number[]; watchedUp: number[] } {
  const step = Math.floor(hosts / failed);
  if (step < 5)
    throw new Error(`${failed} hosts to power off need at least ${failed * 5} hosts, not ${hosts}`);
  const f = Array.from({ length: failed }, (_, i) => i * step + (i % 4));
  return { failed: f, watchedUp: f.map((h) => h + 1) };
}

/** The vms[] entries that put VMs 1..k of every host in tier `low` (failover). */
export function haVmEntries(k: number) {
  return Array.from({ length: k }, (_, v) => ({
    match: { name: `vm-*-${String(v + 1).padStart(2, '0')}` },
    tier: 'low',
  }));
}

export async function runFailoverPhase(o: FailoverPhaseInput) {
  const { failed, watchedUp } = failoverHosts(o.hosts, o.failed);
  // The probe agent: a real keizoku-probe process pinging the VMs of those 2 x 20 hosts every
  // 250 ms, a reply later than 200 ms lost (local replies take microseconds): 5 decided probes
  // in keizokud's default 1.5 s witness window (with the agent's 1 s timeout only 2, and it
  // abstains). Watching all 20,000 would be 400 fping processes on this machine.
  const targets = [...failed, ...watchedUp].flatMap((h) =>
    Array.from({ length: o.vmsPerHost }, (_, v) => ({
      name: vmName(h, v),
      addresses: [vmAddress(simUuid(h, v))],
    })),
  );
  const port = await freePort();
  writeFileSync(join(o.dir, 'probe-token'), `${o.probeToken}\n`, { mode: 0o600 });
  const probeConfig = {
    name: 'scale-probe',
    site: 'dc1',
    listen: `127.0.0.1:${port}`,
    intervalMs: 250,
    timeoutMs: 200,
    controller: { url: o.api, tokenFile: join(o.dir, 'probe-token') },
    targets,
  };
  writeFileSync(join(o.dir, 'probe.yaml'), JSON.stringify(probeConfig));
  let probeOut = '';
  const probe: ChildProcess = spawn(
    'node',
    ['bin/keizoku-probe.mjs', '--config', join(o.dir, 'probe.yaml')],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  probe.stdout!.on('data', (b: Buffer) => (probeOut += b.toString()));
  probe.stderr!.on('data', (b: Buffer) => (probeOut += b.toString()));
  try {
    // Up once every target has some history and keizokud lists the agent.
    for (let i = 0; ; i++) {
      const t = (await fetch(`http://127.0.0.1:${port}/v1/targets`).then(
        (r) => r.json(),
        () => ({ targets: [] }),
      )) as { targets: { name: string; samples: number }[] };
      const probes = (await getJson(`${o.api}/v1/probes`, o.viewerToken).catch(() => ({ probes: [] }))) as {
        probes: unknown[];
      };
      if (
        t.targets.length === targets.length &&
        t.targets.every((x) => x.samples >= 6) &&
        probes.probes.length > 0
      )
        break;
      if (i > 120) throw new Error(`the probe agent did not start:\n${probeOut.slice(-2000)}`);
      await sleep(500);
    }

    const names = failed.map(simHostName);
    const victims = new Set(
      failed.flatMap((h) => Array.from({ length: o.haVmsPerHost }, (_, v) => vmName(h, v))),
    );
    const cut = await o.sim({ op: 'power-off', hosts: names });
    if (!cut.ok || cut.at === undefined) throw new Error(`power-off: ${cut.error}`);
    const cutAt = cut.at;
    const deadline = cutAt + o.timeoutMs;
    let records: FailoverRecord[] = [];
    for (;;) {
      const list = (await getJson(`${o.api}/v1/ha/failovers?limit=100`, o.viewerToken)) as {
        failovers: { id: string; host: string; failureAt: number }[];
      };
      const ids = list.failovers.filter((f) => names.includes(f.host) && f.failureAt >= cutAt - 60_000);
      records = (await Promise.all(
        ids.map((f) => getJson(`${o.api}/v1/ha/failovers/${f.id}`, o.viewerToken)),
      )) as FailoverRecord[];
      const vms = records.flatMap((r) => r.vms).filter((v) => victims.has(v.vm));
      if (
        records.length === names.length &&
        vms.length === victims.size &&
        vms.every((v) => v.runningAt !== null)
      )
        break;
      if (Date.now() > deadline) {
        const running = vms.filter((v) => v.runningAt !== null).length;
        throw new Error(
          `failover of ${names.length} hosts not done within ${o.timeoutMs} ms: ${records.length} records, ${running} of ${victims.size} VMs running; probe agent:\n${probeOut.slice(-1500)}`,
        );
      }
      await sleep(500);
    }
    const vms = records.flatMap((r) => r.vms).filter((v) => victims.has(v.vm));
    const max = (xs: (number | null | undefined)[]) => Math.max(...xs.map((x) => x ?? Number.NaN));
    // The inventory agrees: each VM of the failed hosts running once, on a host that is up.
    const down = new Set(names);
    const listed = (await getJson(`${o.api}/v1/vms`, o.viewerToken)) as {
      vms: { name: string; host: string | null; state: string }[];
    };
    const where = new Map<string, string[]>();
    for (const v of listed.vms)
      if (victims.has(v.name) && v.state === 'running')
        where.set(v.name, [...(where.get(v.name) ?? []), v.host ?? '']);
    const misplaced = [...victims].filter((v) => {
      const on = where.get(v) ?? [];
      return on.length !== 1 || down.has(on[0]!);
    });
    return {
      failover_20_hosts_plan_ms: Math.round(max(vms.map((v) => v.placedAt)) - cutAt),
      failover_20_hosts_all_started_ms: Math.round(max(vms.map((v) => v.runningAt)) - cutAt),
      failover_hosts_powered_off: names.length,
      failover_vms: vms.length,
      failover_declared_down_max_ms: Math.round(max(records.map((r) => r.declaredDownAt)) - cutAt),
      failover_fenced_max_ms: Math.round(max(records.map((r) => r.fence?.confirmedAt)) - cutAt),
      failover_vms_not_running_once_elsewhere: misplaced.length,
      failover_probe_targets: targets.length,
    };
  } finally {
    if (probe.exitCode === null && probe.signalCode === null) {
      const exited = new Promise((r) => probe.once('exit', r));
      probe.kill('SIGTERM');
      await exited;
    }
  }
}
