import { parseArgs } from 'node:util';
import pino from 'pino';
import { isConfigError } from '../../src/config/errors.ts';
import { parseListen } from '../../src/config/formats.ts';
import { FpingPool } from '../../src/probe/fping-pool.ts';
import { ProbeAgent, type Target } from './agent.ts';
import { formatProbeConfigError, loadProbeConfig, type ProbeConfig } from './config.ts';
import { ControllerLink } from './controller.ts';
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
  try {
    return await run(config);
  } catch (e) {
    // Starting failed (e.g. the listen address is taken): one line, no stack trace.
    process.stderr.write(`keizoku-probe: ${(e as Error).message}\n`);
    return 1;
  }
}

/** How often the agent registers with keizokud (its registration expires if it stops). */
const REGISTER_EVERY_MS = 10_000;

async function run(c: ProbeConfig): Promise<number> {
  // The token is never logged: it lives in the ControllerLink's request headers only.
  const log = pino({ base: { service: 'keizoku-probe', probe: c.name, site: c.site } });
  const listen = parseListen(c.listen);
  if (!listen.ok) throw new Error('listen did not parse after validation');
  let link: ControllerLink | null = null;
  const pool =
    c.prober === 'fping' ? new FpingPool({ intervalMs: c.intervalMs, timeoutMs: c.timeoutMs }) : null;
  const agent = new ProbeAgent({
    ...(pool ? { prober: (address: string) => pool.prober(address) } : {}),
    intervalMs: c.intervalMs,
    timeoutMs: c.timeoutMs,
    retentionSec: c.retentionSec,
    reportAfterIntervals: c.reportAfterIntervals,
    onOutage: (o) => {
      log.info(o, 'outage');
      link?.enqueue(o);
    },
  });
  const server = await startServer(agent, {
    ...listen.value,
    intervalMs: c.intervalMs,
    timeoutMs: c.timeoutMs,
  });
  const host = listen.value.host.includes(':') ? `[${listen.value.host}]` : listen.value.host;
  const selfUrl = `http://${host}:${(server.address() as { port: number }).port}`;
  agent.start();
  const configured: Target[] = c.targets.map((t) => ({ name: t.name, addresses: [...t.addresses] }));
  await agent.setTargets(configured);

  const timers: NodeJS.Timeout[] = [];
  if (c.controller && c.token) {
    const l = new ControllerLink({
      url: c.controller.url.replace(/\/+$/, ''),
      token: c.token,
      probe: c.name,
      site: c.site,
      selfUrl,
      intervalMs: c.intervalMs,
    });
    link = l;
    const follow = async () => {
      if (!c.followController) return;
      try {
        const names = new Set(configured.map((t) => t.name));
        const followed = (await l.followed()).filter((t) => !names.has(t.name));
        await agent.setTargets([...configured, ...followed]);
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'reading the VM list failed');
      }
    };
    const register = () =>
      l.register().catch((e: Error) => log.warn({ err: e.message }, 'registration failed'));
    const push = async () => {
      const r = await l.push();
      if (r && 'error' in r)
        log.warn({ err: r.error, pending: l.pendingCount, retryMs: r.retryInMs }, 'pushing outages failed');
      else if (r?.refused) log.warn({ refused: r.refused }, 'keizokud refused outages (dropped)');
    };
    await follow();
    await register();
    timers.push(setInterval(() => void follow(), c.controller.refreshSec * 1000));
    timers.push(setInterval(() => void register(), REGISTER_EVERY_MS));
    timers.push(setInterval(() => void push(), 1_000));
  }
  log.info(
    { listen: selfUrl, targets: agent.targets().length, intervalMs: c.intervalMs, prober: c.prober },
    'keizoku-probe started',
  );
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      for (const t of timers) clearInterval(t);
      const pids = pool ? pool.pids() : agent.pids();
      await agent.stop();
      await pool?.stop();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      log.info({ signal, processesStopped: pids.length }, 'stopped');
      resolve(0);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });
}
