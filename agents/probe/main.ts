import { parseArgs } from 'node:util';
import pino from 'pino';
import { isConfigError } from '../../src/config/errors.ts';
import { parseListen } from '../../src/config/formats.ts';
import { type OutageReport, ProbeAgent, type Target } from './agent.ts';
import { formatProbeConfigError, loadProbeConfig, type ProbeConfig } from './config.ts';
import { startServer } from './server.ts';

const USAGE = `usage: keizoku-probe --config FILE [--check-config]
  measures ICMP loss and outages (通信断) of VM addresses and reports them to keizokud (docs/probe.md)`;

export async function main(argv: string[]): Promise<number> {
  let args: { config?: string; 'check-config'?: boolean; help?: boolean };
  try {
    args = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        'check-config': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (e) {
    process.stderr.write(`keizoku-probe: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!args.config) {
    process.stderr.write(`keizoku-probe: --config FILE is required\n${USAGE}\n`);
    return 2;
  }
  let config: ProbeConfig;
  try {
    config = await loadProbeConfig(args.config);
  } catch (e) {
    if (!isConfigError(e)) throw e;
    process.stderr.write(`${formatProbeConfigError(e)}\n`);
    return 1;
  }
  if (args['check-config']) {
    process.stdout.write(`${args.config}: ok\n`);
    return 0;
  }
  return run(config);
}

async function run(c: ProbeConfig): Promise<number> {
  // The token is never logged.
  const log = pino({ base: { service: 'keizoku-probe', probe: c.name, site: c.site } });
  const listen = parseListen(c.listen);
  if (!listen.ok) throw new Error('listen did not parse after validation');
  const pending: OutageReport[] = [];
  const agent = new ProbeAgent({
    intervalMs: c.intervalMs,
    timeoutMs: c.timeoutMs,
    retentionSec: c.retentionSec,
    reportAfterIntervals: c.reportAfterIntervals,
    onOutage: (o) => {
      log.info(o, 'outage');
      if (c.controller) {
        pending.push(o);
        // Bounded: the oldest are dropped if the controller stays away for long.
        if (pending.length > 10_000) pending.splice(0, pending.length - 10_000);
      }
    },
  });
  const server = await startServer(agent, {
    ...listen.value,
    intervalMs: c.intervalMs,
    timeoutMs: c.timeoutMs,
  });
  const selfUrl = `http://${listen.value.host.includes(':') ? `[${listen.value.host}]` : listen.value.host}:${(server.address() as { port: number }).port}`;
  agent.start();
  const configured: Target[] = c.targets.map((t) => ({ name: t.name, addresses: [...t.addresses] }));
  await agent.setTargets(configured);

  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${c.controller!.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${c.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(5_000),
    });
    if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status} ${(await r.text()).slice(0, 200)}`);
    return r.json() as Promise<unknown>;
  };
  const timers: NodeJS.Timeout[] = [];
  if (c.controller) {
    let backoffMs = 1_000;
    // A VM that leaves the list (or shows no state for a moment during a move) is kept for a
    // minute, so that a migration does not cut its record in two.
    const lastSeen = new Map<string, { target: Target; at: number }>();
    const follow = async () => {
      if (c.followController) {
        try {
          const { vms } = (await api('GET', '/v1/vms')) as {
            vms: { name: string; state: string; addresses: string[] }[];
          };
          const now = Date.now();
          for (const v of vms)
            if (v.addresses.length > 0)
              lastSeen.set(v.name, { target: { name: v.name, addresses: v.addresses }, at: now });
          for (const [name, s] of lastSeen) if (now - s.at > 60_000) lastSeen.delete(name);
          const names = new Set(configured.map((t) => t.name));
          const followed = [...lastSeen.values()].map((s) => s.target).filter((t) => !names.has(t.name));
          await agent.setTargets([...configured, ...followed]);
        } catch (e) {
          log.warn({ err: (e as Error).message }, 'reading the VM list failed');
        }
      }
    };
    const register = () =>
      api('POST', '/v1/probes', { name: c.name, site: c.site, url: selfUrl, intervalMs: c.intervalMs }).catch(
        (e: Error) => log.warn({ err: e.message }, 'registration failed'),
      );
    const push = async () => {
      if (pending.length === 0) return;
      const batch = pending.slice(0, 500);
      try {
        await api('POST', '/v1/probe/events', { probe: c.name, site: c.site, events: batch });
        pending.splice(0, batch.length);
        backoffMs = 1_000;
      } catch (e) {
        log.warn(
          { err: (e as Error).message, pending: pending.length, retryMs: backoffMs },
          'pushing outages failed',
        );
        await new Promise((r) => setTimeout(r, backoffMs));
        backoffMs = Math.min(60_000, backoffMs * 2);
      }
    };
    await follow();
    await register();
    timers.push(setInterval(() => void follow(), c.controller.refreshSec * 1000));
    timers.push(setInterval(() => void register(), 5_000));
    let pushing = false;
    timers.push(
      setInterval(() => {
        if (pushing) return;
        pushing = true;
        void push().finally(() => {
          pushing = false;
        });
      }, 1_000),
    );
  }
  log.info(
    { listen: selfUrl, targets: agent.targets().length, intervalMs: c.intervalMs },
    'keizoku-probe started',
  );
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      for (const t of timers) clearInterval(t);
      await agent.stop();
      await new Promise<void>((r) => server.close(() => r()));
      log.info({}, 'stopped');
      resolve(0);
    };
    process.on('SIGTERM', () => void stop());
    process.on('SIGINT', () => void stop());
  });
}
