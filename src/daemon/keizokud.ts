// keizokud: the controller. Validates its config (--check-config); keeps an inventory of every
// host and VM over persistent libvirt connections; enforces per-VM resource limits; serves the
// REST API; runs migration and drill jobs, maintenance, schedules; serves /metrics.
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pino from 'pino';
import { type ApiDeps, buildApi, TokenStore } from '../api/index.ts';
import { decisionRoutes } from '../api/routes/decisions.ts';
import { drillRoutes } from '../api/routes/drills.ts';
import { drsRoutes } from '../api/routes/drs.ts';
import { failoverRoutes } from '../api/routes/failovers.ts';
import { haRoutes } from '../api/routes/ha.ts';
import { jobRoutes } from '../api/routes/jobs.ts';
import { metricsRoute } from '../api/routes/metrics.ts';
import { powerRoutes } from '../api/routes/power.ts';
import { scheduleRoutes } from '../api/routes/schedules.ts';
import { tierRoutes } from '../api/routes/tiers.ts';
import {
  assignmentFor,
  formatConfigError,
  isConfigError,
  type LoadedConfig,
  loadConfig,
  parseListen,
} from '../config/index.ts';
import { vmFromDomainXml } from '../core/domain-size.ts';
import { burstAllowance } from '../core/limits.ts';
import { recheckPower } from '../core/planners/power.ts';
import { DrillSystem } from '../drills/runner.ts';
import { fencerFor } from '../fence/fencer.ts';
import { bullConnection, redisOptions } from '../jobs/connection.ts';
import { Evacuations } from '../jobs/evacuate.ts';
import { submitPower } from '../jobs/power-submit.ts';
import { JobSystem } from '../jobs/queue.ts';
import type { ConnectOptions } from '../libvirt/index.ts';
import { DrsLoop } from '../loops/drs.ts';
import { FailoverTimeline } from '../loops/failover-timeline.ts';
import { HaLoop } from '../loops/ha.ts';
import { InventoryLoop } from '../loops/inventory.ts';
import { LimitsLoop } from '../loops/limits.ts';
import { LoopRunner } from '../loops/runner.ts';
import { SchedulesLoop } from '../loops/schedules.ts';
import { bookRefresher, StateRecorder } from '../loops/state-recorder.ts';
import { WitnessLoop } from '../loops/witnesses.ts';
import { createMetrics } from '../metrics/registry.ts';
import { HostPinger } from '../probe/host-pinger.ts';
import { AuditLog } from '../store/audit.ts';
import { CpuRaises } from '../store/cpu-raises.ts';
import { DecisionStore } from '../store/decisions.ts';
import { FailoverStore } from '../store/failovers.ts';
import { FenceBook } from '../store/fences.ts';
import { HaStore } from '../store/ha.ts';
import { CLUSTER_PREFIX as PREFIX } from '../store/keys.ts';
import { LeaderLease } from '../store/lease.ts';
import { MaintenanceBook } from '../store/maintenance.ts';
import { PolicyBook } from '../store/policy-book.ts';
import { ProbeBook } from '../store/probe-book.ts';
import { Store } from '../store/store.ts';
import { exitOnUncaught } from './last-resort.ts';
import { probeSeries, probeWindows } from './probe-window.ts';
import { drainOnSignals } from './shutdown.ts';
import { tokenCommand } from './token-command.ts';

/** How long SIGTERM waits for running migrations and drills: under Kubernetes' default 30 s grace. */
const DRAIN_TIMEOUT_MS = 25_000;

const USAGE = `usage: keizokud --config FILE [--check-config]
       keizokud token create|list|revoke --config FILE ...   (API tokens; see keizokud token --help)
  --config FILE     keizokud's YAML config (see docs/configuration.md)
  --check-config    validate the config and the policies it names, print warnings, and exit`;

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'token') return tokenCommand(argv.slice(1));
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
    process.stderr.write(`keizokud: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!args.config) {
    process.stderr.write(`keizokud: --config FILE is required\n${USAGE}\n`);
    return 2;
  }
  let loaded: LoadedConfig;
  try {
    loaded = await loadConfig(args.config);
  } catch (e) {
    if (!isConfigError(e)) throw e;
    process.stderr.write(`${formatConfigError(e)}\n`);
    return 1;
  }
  for (const w of loaded.warnings) process.stderr.write(`warning: ${w}\n`);
  if (args['check-config']) {
    process.stdout.write(
      `${args.config}: ok (${loaded.config.hosts.length} hosts, ${loaded.config.sites.length} sites)\n`,
    );
    return 0;
  }
  return run(loaded);
}

async function run(loaded: LoadedConfig): Promise<number> {
  const { config } = loaded;
  // Structured logs; nothing secret is ever put in them (key material is referred to by path,
  // tokens are never logged: the API logs no headers).
  const log = pino({ base: { service: 'keizokud' } });
  exitOnUncaught(log);
  const metrics = createMetrics();
  const connectOptions = (h: { uri: string; name: string }): ConnectOptions => {
    const hc = config.hosts.find((x) => x.name === h.name)!;
    return {
      insecure: hc.insecure === true,
      tls: config.libvirt.tls,
      ssh: config.libvirt.ssh,
      callTimeoutMs: config.libvirt.callTimeoutMs,
      keepaliveIntervalMs: config.libvirt.keepaliveIntervalSec * 1000,
      keepaliveCount: config.libvirt.keepaliveCount,
    };
  };
  const redis = new Redis({ maxRetriesPerRequest: 1, ...redisOptions(config.redis), lazyConnect: false });
  redis.on('error', (e: Error) => log.warn({ err: e.message }, 'redis'));
  const maintenanceBook = new MaintenanceBook(redis, PREFIX);
  await maintenanceBook
    .refresh()
    .catch((e: Error) => log.warn({ err: e.message }, 'reading maintenance failed'));
  const fenceBook = new FenceBook(redis, PREFIX);
  const haStore = new HaStore(redis, PREFIX);
  const failoverStore = new FailoverStore(redis, PREFIX);
  await fenceBook.refresh().catch((e: Error) => log.warn({ err: e.message }, 'reading fences failed'));
  const replicaId = `${hostname()}:${process.pid}`;
  const lease = new LeaderLease(redis, {
    prefix: PREFIX,
    replicaId,
    leaseMs: config.leader.leaseMs,
    renewMs: config.leader.renewMs,
    // With a replica to be promoted, a new leader acts on its token once a replica has it.
    ...(config.redis.sentinels ? { replicaAckMs: config.leader.renewMs } : {}),
  });
  const decisions = new DecisionStore(redis, PREFIX);
  const store = new Store(redis, PREFIX, lease, decisions);
  const policies = new PolicyBook(redis, PREFIX, config.vms, (vm) => inventory.labelsOf(vm));
  const audit = new AuditLog(redis, PREFIX, { ...config.audit, timeZone: config.timeZone });
  const controller = { id: 'controller', name: 'controller' };
  /** The controller's own observations, written to the audit log by the leader only. */
  const auditObserved = (action: string, target: string, params: unknown) => {
    if (!lease.isLeader) return;
    audit
      .record({
        actor: controller.id,
        actorName: controller.name,
        action,
        target,
        params,
        outcome: 'succeeded',
      })
      .catch((e: Error) => log.warn({ action, target, err: e.message }, 'audit write failed'));
  };
  // ICMP to each host's management address, from the controller (core/health.ts's evidence).
  const icmpTimeoutMs = Math.min(1_000, config.loops.healthIntervalMs);
  const pinger = new HostPinger(
    config.hosts.map((h) => h.managementAddress),
    { intervalMs: config.loops.healthIntervalMs, timeoutMs: icmpTimeoutMs },
  );
  // Bound once the witness loop exists (it reads the inventory's snapshot).
  let witnessVotesOf: (host: string) => ReturnType<WitnessLoop['of']> = () => null;
  // Whether a migration job holds the VM (set once the job system exists).
  let migrationHolds: (vm: string) => Promise<boolean> = async () => false;
  // Failover acts on a health change at once, not at its next interval (set once it exists).
  let wakeHa: () => void = () => undefined;
  const inventory = new InventoryLoop({
    hosts: config.hosts.map((h) => ({
      name: h.name,
      site: h.site,
      uri: h.uri,
      capacity: h.capacity,
      managementAddress: h.managementAddress,
    })),
    sites: config.sites.map((s) => s.name),
    connectOptions,
    intervalMs: config.loops.inventoryIntervalMs,
    minBackoffMs: config.libvirt.reconnectMinMs,
    maxBackoffMs: config.libvirt.reconnectMaxMs,
    healthIntervalMs: config.loops.healthIntervalMs,
    icmp: pinger,
    thresholds: {
      // A read cannot fail before its call times out: suspect from then, or three passes.
      suspectAfterMs: Math.max(3 * config.loops.inventoryIntervalMs, config.libvirt.callTimeoutMs),
      // Silent: three probes in a row unanswered, the last one past its timeout.
      icmpFreshMs: 3 * config.loops.healthIntervalMs + icmpTimeoutMs,
    },
    maintenance: () => maintenanceBook.hosts(),
    fencedAt: (h) => fenceBook.fencedAt(h),
    witnesses: (h) => witnessVotesOf(h),
    onHealthChange: (h, previous) => {
      wakeHa();
      log.info({ host: h.name, health: h.health, previous, evidence: h.evidence }, 'host health changed');
      auditObserved('host.health', h.name, {
        health: h.health,
        previous,
        since: h.healthSince,
        evidence: h.evidence,
      });
    },
    onConflict: (c) => {
      // A live migration's switch-over is expected; anything else is split-brain.
      if (c.migration) return log.info({ vm: c.vm, copies: c.copies }, 'VM active on two hosts (a move)');
      // The hosts are read at different moments: during keizoku's own move one read can still
      // show the source running and the other the destination already. Its job holds the VM.
      void migrationHolds(c.vm).then((moving) => {
        if (moving)
          return log.info({ vm: c.vm, copies: c.copies }, 'VM active on two hosts during its migration job');
        log.warn({ vm: c.vm, copies: c.copies }, 'VM active on more than one host');
        auditObserved('vm.conflict', c.vm, { copies: c.copies });
      });
    },
    onDomainXml: async (vm, host, xml) => {
      // The last known definition of every VM, for restarting it when its host is gone.
      if (lease.isLeader) await store.putDomain(vm, { host, xml, observedAt: Date.now() });
    },
    metrics,
    log,
  });
  const tokens = new TokenStore(redis, PREFIX);
  const probeBook = new ProbeBook(redis, PREFIX);
  await policies
    .refresh()
    .catch((e: Error) => log.warn({ err: e.message }, 'reading policy overrides failed'));

  const placement = {
    rulesOf: (vm: string) => {
      const a = assignmentFor(config.vms, { name: vm, labels: inventory.labelsOf(vm) });
      const group =
        a?.hostGroup === undefined ? undefined : config.hostGroups.find((g) => g.name === a.hostGroup);
      return {
        affinityGroup: a?.affinityGroup ?? null,
        antiAffinityGroup: a?.antiAffinityGroup ?? null,
        hostGroup: group ? { name: group.name, hosts: group.hosts, rule: a?.hostGroupRule ?? 'must' } : null,
      };
    },
    haPriorityOf: (vm: string) => policies.policyOf(vm)?.haPriority ?? 0,
    cpuOvercommit: config.placement.cpuOvercommit,
    memoryFraction: config.placement.memoryFraction,
  };
  const cpuRaises = new CpuRaises(redis, PREFIX);
  const limitsProfileOf = (vm: string) => policies.policyOf(vm)?.limits ?? null;
  const jobs = new JobSystem(
    config.redis,
    PREFIX,
    {
      snapshot: () => inventory.snapshot(),
      clientFor: (h) => inventory.clientFor(h),
      migrationUriOf: (h) => {
        const hc = config.hosts.find((x) => x.name === h)!;
        return hc.migrationUri ?? hc.uri;
      },
      placement,
      policy: config.migration,
      tierOf: (vm) => policies.policyOf(vm)?.tier || null,
      addressesOf: (vm) => inventory.addressesOf(vm),
      probeWindow: (vm, from, to) => probeWindows(probeBook, vm, from, to),
      log,
    },
    {
      clientFor: (h) => inventory.clientFor(h),
      refusalsNow: async (a) =>
        recheckPower(
          inventory.snapshot(),
          a,
          a.kind === 'start' ? ((await store.getPlacement(a.vm).catch(() => null))?.host ?? null) : null,
        ),
      domainXmlOf: async (vm) => (await store.getDomain(vm).catch(() => null))?.xml ?? null,
      recordRaise: (vm, raise) => cpuRaises.set(vm, raise),
    },
    audit,
    redis,
    decisions,
    metrics,
  );
  const evacuations = new Evacuations({
    jobs,
    maintenance: maintenanceBook,
    placement,
    snapshot: () => inventory.snapshot(),
    audit,
    log,
  });
  const power = {
    jobs,
    snapshot: () => inventory.snapshot(),
    lastPlacement: async (vm: string) => (await store.getPlacement(vm))?.host ?? null,
  };
  // tiers.yaml lists tiers from the lowest to the highest: the last is restarted first.
  const tierIds = loaded.tiers.tiers.map((t) => t.id);
  const tierRank = new Map(tierIds.map((id, i) => [id, tierIds.length - 1 - i]));
  const tierMechanisms = new Map(loaded.tiers.tiers.map((t) => [t.id, new Set<string>(t.mechanisms)]));
  const tierHasFailover = (vm: string) =>
    tierMechanisms.get(policies.policyOf(vm)?.tier ?? '')?.has('failover') ?? false;
  /** What the failover, its what-if and admission control place with. */
  const failoverPlacement = {
    ...placement,
    haPriorityOf: (vm: string) => (tierHasFailover(vm) ? (policies.policyOf(vm)?.haPriority ?? 0) : null),
    tierRankOf: (vm: string) => tierRank.get(policies.policyOf(vm)?.tier ?? '') ?? tierRank.size,
  };
  // The witness window is the witness loop's; the rest is the machine's timing.
  const { toleratedHostFailures, witnessWindowMs, ...haTiming } = config.ha;
  const apiDeps: ApiDeps = {
    snapshot: () => inventory.snapshot(),
    clientFor: (h) => inventory.clientFor(h),
    policyOf: (vm) => policies.policyOf(vm),
    setPolicy: (vm, o) => policies.set(vm, o),
    addressesOf: (vm) => inventory.addressesOf(vm),
    labelsOf: (vm) => inventory.labelsOf(vm),
    tierIds: loaded.tiers.tiers.map((t) => t.id),
    limitsProfiles: Object.keys(loaded.limits.profiles),
    store,
    audit,
    probeBook,
    probeRegistrations: metrics.probeRegistrations,
    redis,
    prefix: PREFIX,
    fences: fenceBook,
    haPaused: () => haStore.paused(),
  };
  migrationHolds = async (vm) => (await jobs.holderOf(vm).catch(() => null))?.kind === 'migrate';
  const jobDeps = {
    jobs,
    evacuations,
    placement,
    policyLimits: config.api.vmAdminMigrationPolicy,
  };
  const fencer = fencerFor(
    new Map(config.hosts.map((h) => [h.name, { fence: h.fence, managementAddress: h.managementAddress }])),
  );
  const drills = new DrillSystem({
    redisUrlOptions: bullConnection(config.redis),
    redis,
    prefix: PREFIX,
    jobs,
    snapshot: () => inventory.snapshot(),
    placement,
    tierOf: (vm) => policies.policyOf(vm)?.tier || null,
    tiers: loaded.tiers,
    probes: {
      windows: (vm, from, to) => probeWindows(probeBook, vm, from, to),
      series: (vm, from, to) => probeSeries(probeBook, vm, from, to),
    },
    fencer,
    fences: fenceBook,
    haPaused: () => haStore.paused(),
    failovers: failoverStore,
    clientFor: (h) => inventory.clientFor(h),
    audit,
    dir: config.drills.dir,
    timeZone: config.timeZone,
    migrationTimeoutMs: config.migration.timeoutMs,
    log,
  });
  const schedules = new SchedulesLoop({
    drills: config.drills.scheduled,
    runDrill: (d) =>
      drills.enqueue({
        scenario: d.scenario as 'live-migration',
        vm: d.vm,
        count: d.count ?? (d.scenario === 'host-failure' ? 1 : 10),
        ...(d.to ? { to: d.to } : {}),
        pauseMs: 1000,
        requestedBy: controller,
      }),
    schedules: config.schedules,
    windows: config.maintenanceWindows,
    timeZone: config.timeZone,
    holidays: loaded.holidays,
    isLeader: () => lease.isLeader,
    fence: () => lease.fence(),
    snapshot: () => inventory.snapshot(),
    power: (kind, vm, schedule) =>
      submitPower(
        power,
        kind,
        vm,
        { planner: 'schedule', ref: `schedule:${schedule}`, requestedBy: controller },
        10_000,
        () => lease.fence(),
      ),
    maintenance: (host, action, moveBack) =>
      action === 'enter'
        ? evacuations.enter(host, {}, controller, 'maintenance-window')
        : evacuations.exit(host, { moveBack }, controller, 'maintenance-window'),
    audit,
    redis,
    prefix: PREFIX,
    log,
  });
  const drsTiers = new Set(loaded.tiers.tiers.filter((t) => t.mechanisms.includes('drs')).map((t) => t.id));
  const drsModeOf = (vm: string) =>
    assignmentFor(config.vms, { name: vm, labels: inventory.labelsOf(vm) })?.drs ?? config.drs.mode;
  const drs = new DrsLoop({
    snapshot: () => inventory.snapshot(),
    jobs,
    placement,
    modeOf: drsModeOf,
    anyEnabled: () =>
      config.drs.mode !== 'off' || config.vms.some((v) => v.drs !== undefined && v.drs !== 'off'),
    tierAllows: (vm) => drsTiers.has(policies.policyOf(vm)?.tier ?? ''),
    aggressiveness: config.drs.aggressiveness as 1 | 2 | 3 | 4 | 5,
    planIntervalMs: config.drs.intervalSec * 1000,
    sampleIntervalMs: config.loops.inventoryIntervalMs,
    fenceCheck: () => lease.fence(),
    metrics,
    log,
    burstAllowanceOf: (vm) => {
      const name = limitsProfileOf(vm);
      return name
        ? burstAllowance(loaded.limits.profiles[name] as Parameters<typeof burstAllowance>[0])
        : null;
    },
    raiseOf: (vm) => cpuRaises.get(vm),
  });
  const api = await buildApi(
    config.api,
    tokens,
    apiDeps,
    [
      (app) => jobRoutes(app, apiDeps, jobDeps),
      (app) =>
        powerRoutes(app, apiDeps, {
          jobs,
          store,
          admission: { placement: failoverPlacement, policy: { toleratedHostFailures } },
        }),
      (app) => decisionRoutes(app, apiDeps, { decisions, jobs }),
      (app) => scheduleRoutes(app, schedules),
      (app) =>
        haRoutes(app, apiDeps, { store: haStore, placement: failoverPlacement, toleratedHostFailures }),
      (app) => failoverRoutes(app, { store: failoverStore }),
      (app) => drsRoutes(app, { drs, mode: config.drs.mode, aggressiveness: config.drs.aggressiveness }),
      (app) => drillRoutes(app, drills, config.timeZone),
      (app) =>
        tierRoutes(app, apiDeps, {
          tiers: loaded.tiers,
          timeZone: config.timeZone,
          placement: config.placement,
          drsModeOf: drsModeOf,
        }),
    ],
    log,
  );
  const serveMetrics = async (): Promise<string> => metrics.registry.metrics();
  let metricsServer: Server | null = null;
  if (config.metrics) {
    const listen = parseListen(config.metrics.listen);
    if (!listen.ok) throw new Error('metrics listen address did not parse after validation');
    metricsServer = createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/metrics') {
        serveMetrics().then(
          (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
          () => res.writeHead(500).end(),
        );
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      metricsServer!.once('error', reject);
      metricsServer!.listen(listen.value.port, listen.value.host, resolve);
    });
  } else {
    // Its labels name every VM and host: a token whose role may read metrics is needed here.
    metricsRoute(api, serveMetrics, metrics.registry.contentType);
  }
  // Liveness is /healthz; readiness waits for the loops below (inventory, workers, schedules).
  let ready = false;
  api.get('/readyz', { config: { public: true }, schema: { hide: true } }, async (_req, reply) =>
    ready ? { status: 'ready' } : reply.code(503).send({ status: 'starting' }),
  );
  const apiListen = parseListen(config.api.listen);
  if (!apiListen.ok) throw new Error('api listen address did not parse after validation');
  await api.listen({ host: apiListen.value.host, port: apiListen.value.port });
  log.info(
    {
      api: `${config.api.tls ? 'https' : 'http'}://${config.api.listen}`,
      metrics: config.metrics?.listen ?? config.api.listen,
      hosts: config.hosts.length,
    },
    'keizokud started',
  );

  metrics.leader.set(0);
  lease.on('elected', (token: number) => {
    metrics.leader.set(1);
    metrics.leaderToken.set(token);
    log.info({ replica: replicaId, token }, 'elected leader');
  });
  lease.on('unconfirmed', (reason: string) =>
    log.warn({ replica: replicaId, reason }, 'lease given back: its token is not on a replica yet'),
  );
  lease.on('deposed', (reason: string) => {
    metrics.leader.set(0);
    metrics.leaderToken.set(0);
    log.warn({ replica: replicaId, reason }, 'no longer leader');
  });
  lease.start();

  const runner = new LoopRunner({ isLeader: () => lease.isLeader, metrics, log });
  runner.add(inventory);
  runner.add(inventory.health);
  const witnesses = new WitnessLoop({
    snapshot: () => inventory.snapshot(),
    windows: (vm, from, to) => probeWindows(probeBook, vm, from, to, { timeoutMs: 1_000 }),
    intervalMs: config.loops.healthIntervalMs,
    windowMs: witnessWindowMs,
  });
  witnessVotesOf = (h) => (lease.isLeader ? witnesses.of(h) : null);
  runner.add(witnesses);
  runner.start();
  await runner.trigger(inventory.name);
  jobs.startWorker((job) => evacuations.runParent(job));
  await drills.startWorker();
  schedules.start();
  const limits = new LimitsLoop({
    snapshot: () => inventory.snapshot(),
    clientFor: (h) => inventory.clientFor(h),
    limitsProfileOf,
    limits: loaded.limits,
    raiseOf: (vm) => cpuRaises.get(vm),
    intervalMs: config.loops.limitsIntervalMs,
    fence: () => lease.fence(),
    audit,
    metrics,
    log,
  });
  // On the runner that already runs the inventory: added after its start, each starts at once.
  runner.add(limits);
  if (config.maintenanceWindows.length) runner.add(schedules.windowCloser);
  runner.add(bookRefresher([policies, maintenanceBook, fenceBook], config.loops.inventoryIntervalMs));
  runner.add(
    new StateRecorder({
      snapshot: () => inventory.snapshot(),
      policyOf: (vm) => policies.policyOf(vm),
      store,
      intervalMs: config.loops.inventoryIntervalMs,
      epoch: () => lease.currentToken,
      log,
    }),
  );
  runner.add(
    new HaLoop({
      snapshot: () => inventory.snapshot(),
      jobs,
      fence: (h) => fencer.fence(h),
      recordFence: (r) => fenceBook.record(r),
      store: haStore,
      placement: failoverPlacement,
      specOf: async (vm) => {
        const d = await store.getDomain(vm);
        return d ? vmFromDomainXml(vm, d.host, d.xml) : null;
      },
      config: {
        ...haTiming,
        fenceMethods: Object.fromEntries(config.hosts.map((h) => [h.name, h.fence.method])),
      },
      fenceCheck: () => lease.fence(),
      audit,
      metrics,
      log,
      intervalMs: config.loops.haIntervalMs,
      wake: () => wakeHa(),
      timeline: new FailoverTimeline({
        store: failoverStore,
        jobs,
        probeWindow: (vm, from, to) => probeWindows(probeBook, vm, from, to, { timeoutMs: 1_000 }),
        fenceRecordOf: (h) => fenceBook.records().get(h) ?? null,
        lastIcmpReplyAt: (h) => {
          const address = config.hosts.find((x) => x.name === h)?.managementAddress;
          return address ? (pinger.last(address)?.lastReplyAt ?? null) : null;
        },
        fenceMethodOf: (h) => config.hosts.find((x) => x.name === h)?.fence.method ?? 'lab',
        tierOf: (vm) => policies.policyOf(vm)?.tier || null,
        haPriorityOf: (vm) => failoverPlacement.haPriorityOf(vm),
        fenceCheck: () => lease.fence(),
        metrics,
        log,
        wake: () => wakeHa(),
      }),
    }),
  );
  wakeHa = () => {
    if (lease.isLeader) void runner.trigger('ha').catch(() => undefined);
  };
  runner.add(drs);

  // The first passes are not awaited: a VM in a migration holds libvirt's job lock, and with it
  // the limits pass, for as long as the move (a restart in the middle of one would wait that
  // long to be ready).
  ready = true;
  log.info({}, 'keizokud ready');

  // SIGTERM/SIGINT: stop taking work, wait for running moves and drills, then close
  // (docs/keizokud.md). Bounded, and a second signal cuts it short.
  return drainOnSignals({
    log,
    timeoutMs: DRAIN_TIMEOUT_MS,
    steps: [
      { name: 'api', stop: () => api.close() },
      { name: 'schedules', stop: () => schedules.stop() },
      { name: 'drills', stop: () => drills.close() },
      { name: 'jobs', stop: () => jobs.close() },
      // The inventory and every loop on the runner, after their passes in flight (before the
      // lease goes: a leader-only pass in flight still holds it).
      { name: 'loops', stop: () => runner.stop() },
      { name: 'lease', stop: () => lease.stop() },
      { name: 'audit', stop: () => audit.close() },
      { name: 'redis', stop: async () => redis.disconnect() },
      {
        name: 'metrics',
        stop: () =>
          metricsServer ? new Promise<void>((r) => metricsServer!.close(() => r())) : Promise.resolve(),
      },
    ],
  });
}
