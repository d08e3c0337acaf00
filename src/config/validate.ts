import { validateDetailed } from 'node-cron';
import { type ConfigIssue, type ConfigPath, listQuoted } from './errors.ts';
import { isLoopback, parseLibvirtUri, parseListen } from './formats.ts';
import { crossSiteMechanisms, type LimitsPolicy, type TiersPolicy } from './policies.ts';
import type { KeizokuConfig } from './schema.ts';

/**
 * Checks across fields of a config that passed the schema. All problems are collected;
 * errors make the config unusable, warnings (compliance matters, no-op settings) are reported
 * and the config still loads.
 */

export interface CrossCheckInput {
  config: Omit<KeizokuConfig, 'policies'>;
  file: string;
  tiers: TiersPolicy;
  tiersFile: string;
  limits: LimitsPolicy;
  limitsFile: string;
}

export interface CrossCheckResult {
  errors: ConfigIssue[];
  warnings: ConfigIssue[];
}

export function crossCheck(input: CrossCheckInput): CrossCheckResult {
  const out: CrossCheckResult = { errors: [], warnings: [] };
  checkSites(input, out);
  checkHosts(input, out);
  checkVms(input, out);
  checkListeners(input, out);
  checkSchedules(input, out);
  checkRedis(input, out);
  checkMigration(input, out);
  return out;
}

/** Reports a second (third, ...) use of the same key. */
function duplicates<T>(
  items: readonly T[],
  key: (item: T) => string | undefined,
  report: (index: number, first: number, value: string) => void,
): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const k = key(item);
    if (k === undefined) return;
    const first = seen.get(k);
    if (first === undefined) seen.set(k, i);
    else report(i, first, k);
  });
}

function checkSites({ config, file }: CrossCheckInput, out: CrossCheckResult): void {
  duplicates(
    config.sites,
    (s) => s.name,
    (i, first, v) =>
      out.errors.push({
        file,
        path: ['sites', i, 'name'],
        message: `duplicate site name "${v}" (also sites[${first}])`,
      }),
  );
  config.sites.forEach((site, i) => {
    if (!config.hosts.some((h) => h.site === site.name)) {
      out.warnings.push({ file, path: ['sites', i], message: `site "${site.name}" has no hosts` });
    }
  });
}

function checkHosts({ config, file }: CrossCheckInput, out: CrossCheckResult): void {
  const err = (path: ConfigPath, message: string) => out.errors.push({ file, path, message });
  const hosts = config.hosts;
  duplicates(
    hosts,
    (h) => h.name,
    (i, f, v) => err(['hosts', i, 'name'], `duplicate host name "${v}" (also hosts[${f}])`),
  );
  duplicates(
    hosts,
    (h) => daemonKey(h.uri),
    (i, f) => err(['hosts', i, 'uri'], `duplicate: the same libvirtd as hosts[${f}] ("${hosts[f]?.name}")`),
  );
  duplicates(
    hosts,
    (h) => h.managementAddress.toLowerCase(),
    (i, f, v) =>
      err(
        ['hosts', i, 'managementAddress'],
        `duplicate address ${v} (also hosts[${f}], "${hosts[f]?.name}")`,
      ),
  );
  const siteNames = [...new Set(config.sites.map((s) => s.name))];
  hosts.forEach((host, i) => {
    if (!siteNames.includes(host.site)) {
      err(['hosts', i, 'site'], `unknown site "${host.site}": expected ${oneOf(siteNames, 'sites')}`);
    }
    checkTransport(config, file, i, out);
    const f = host.fence;
    if (f.method === 'ipmi' && f.cipherSuite !== undefined && f.interface !== 'lanplus')
      err(
        ['hosts', i, 'fence', 'cipherSuite'],
        `a cipher suite is for interface lanplus (RMCP+); interface ${f.interface} has none`,
      );
  });
}

/** One libvirtd, however it is reached: host, explicit port and path. */
function daemonKey(uri: string): string | undefined {
  const parsed = parseLibvirtUri(uri);
  if (!parsed.ok) return undefined;
  const u = parsed.value;
  return `${u.host.toLowerCase()}|${u.port ?? ''}|${u.path}|${u.transport === 'unix' ? (u.params.socket ?? '') : ''}`;
}

function checkTransport(
  config: CrossCheckInput['config'],
  file: string,
  i: number,
  out: CrossCheckResult,
): void {
  const host = config.hosts[i]!;
  const parsed = parseLibvirtUri(host.uri);
  if (!parsed.ok) return;
  const transport = parsed.value.transport;
  const path = ['hosts', i];
  if (transport === 'tcp' && !host.insecure) {
    out.errors.push({
      file,
      path: [...path, 'insecure'],
      message: `host "${host.name}" uses plain TCP (qemu+tcp: no encryption, no authentication), which needs insecure: true (lab only)`,
    });
  }
  const migration = host.migrationUri ? parseLibvirtUri(host.migrationUri) : undefined;
  const migrationTcp = migration?.ok === true && migration.value.transport === 'tcp';
  if (migrationTcp && !host.insecure) {
    out.errors.push({
      file,
      path: [...path, 'migrationUri'],
      message: `host "${host.name}" is reached by its peers over plain TCP (qemu+tcp), which needs insecure: true (lab only)`,
    });
  }
  // no_verify=1 turns off the TLS certificate or SSH host key check: as unsafe as plain TCP.
  const noVerify = (['uri', 'migrationUri'] as const).filter((field) => {
    const u = field === 'uri' ? parsed : migration;
    return u?.ok === true && u.value.params.no_verify === '1';
  });
  for (const field of noVerify) {
    if (host.insecure)
      out.warnings.push({
        file,
        path: [...path, field],
        message: `host "${host.name}" does not verify its server (no_verify=1)`,
      });
    else
      out.errors.push({
        file,
        path: [...path, field],
        message: `host "${host.name}" turns off server verification (no_verify=1), which needs insecure: true (lab only)`,
      });
  }
  if (transport !== 'tcp' && !migrationTcp && noVerify.length === 0 && host.insecure) {
    out.warnings.push({
      file,
      path: [...path, 'insecure'],
      message: `has no effect: host "${host.name}" does not use qemu+tcp`,
    });
  }
  if (transport === 'tls' && config.libvirt.tls === undefined) {
    out.errors.push({
      file,
      path: [...path, 'uri'],
      message: `host "${host.name}" uses TLS, which needs libvirt.tls (caFile, certFile, keyFile)`,
    });
  }
  if (transport === 'ssh' && config.libvirt.ssh === undefined) {
    out.errors.push({
      file,
      path: [...path, 'uri'],
      message: `host "${host.name}" uses SSH, which needs libvirt.ssh (keyFile, knownHostsFile)`,
    });
  }
}

function checkVms(input: CrossCheckInput, out: CrossCheckResult): void {
  const { config, file, tiers, limits } = input;
  const tierIds = tiers.tiers.map((t) => t.id);
  const profiles = Object.keys(limits.profiles);
  const siteNames = [...new Set(config.sites.map((s) => s.name))];
  const groupNames = [...new Set(config.hostGroups.map((g) => g.name))];
  const hostNames = config.hosts.map((h) => h.name);
  duplicates(
    config.hostGroups,
    (g) => g.name,
    (i, first, v) =>
      out.errors.push({
        file,
        path: ['hostGroups', i, 'name'],
        message: `duplicate host group name "${v}" (also hostGroups[${first}])`,
      }),
  );
  config.hostGroups.forEach((g, i) => {
    g.hosts.forEach((h, j) => {
      if (!hostNames.includes(h))
        out.errors.push({
          file,
          path: ['hostGroups', i, 'hosts', j],
          message: `unknown host "${h}": expected ${oneOf(hostNames, 'hosts')}`,
        });
    });
  });
  config.vms.forEach((vm, i) => {
    const tier = tiers.tiers.find((t) => t.id === vm.tier);
    if (tier === undefined) {
      out.errors.push({
        file,
        path: ['vms', i, 'tier'],
        message: `unknown tier "${vm.tier}": expected ${oneOf(tierIds, input.tiersFile)}`,
      });
    } else if (siteNames.length < tier.minSites) {
      out.warnings.push({
        file,
        path: ['vms', i, 'tier'],
        message: `tier "${tier.id}" (${tier.labelJa}) needs ${tier.minSites} sites for ${crossSite(tier.mechanisms)}, but ${siteNames.length} ${siteNames.length === 1 ? 'site is' : 'sites are'} configured`,
      });
    }
    if (vm.limits !== undefined && !profiles.includes(vm.limits)) {
      out.errors.push({
        file,
        path: ['vms', i, 'limits'],
        message: `unknown limits profile "${vm.limits}": expected ${oneOf(profiles, input.limitsFile)}`,
      });
    }
    if (vm.homeSite !== undefined && !siteNames.includes(vm.homeSite)) {
      out.errors.push({
        file,
        path: ['vms', i, 'homeSite'],
        message: `unknown site "${vm.homeSite}": expected ${oneOf(siteNames, 'sites')}`,
      });
    }
    checkRecoverySite(vm, i, tier, siteNames, file, out);
    if (tier !== undefined && vm.drs !== undefined && vm.drs !== 'off' && !tier.mechanisms.includes('drs')) {
      out.warnings.push({
        file,
        path: ['vms', i, 'drs'],
        message: `tier "${tier.id}" does not have the drs mechanism, so DRS never moves these VMs (drs: ${vm.drs} changes nothing)`,
      });
    }
    if (vm.hostGroup !== undefined && !groupNames.includes(vm.hostGroup)) {
      out.errors.push({
        file,
        path: ['vms', i, 'hostGroup'],
        message: `unknown host group "${vm.hostGroup}": expected ${oneOf(groupNames, 'hostGroups')}`,
      });
    }
    if (vm.hostGroupRule !== undefined && vm.hostGroup === undefined) {
      out.errors.push({
        file,
        path: ['vms', i, 'hostGroupRule'],
        message: 'a hostGroupRule needs a hostGroup in the same entry',
      });
    }
    const group = config.hostGroups.find((g) => g.name === vm.hostGroup);
    if (
      group &&
      (vm.hostGroupRule === 'must-not' || vm.hostGroupRule === 'should-not') &&
      hostNames.every((h) => group.hosts.includes(h))
    ) {
      const msg = `host group "${group.name}" holds every host, so ${vm.hostGroupRule} run on it`;
      if (vm.hostGroupRule === 'must-not')
        out.errors.push({
          file,
          path: ['vms', i, 'hostGroupRule'],
          message: `${msg} leaves these VMs no host`,
        });
      else out.warnings.push({ file, path: ['vms', i, 'hostGroupRule'], message: `${msg} changes nothing` });
    }
    if (vm.affinityGroup !== undefined && vm.affinityGroup === vm.antiAffinityGroup) {
      out.errors.push({
        file,
        path: ['vms', i, 'antiAffinityGroup'],
        message: `"${vm.affinityGroup}" is also this entry's affinityGroup`,
      });
    }
  });
}

/**
 * A VM of a tier with cross-site mechanisms needs a recovery site that exists and is not its
 * home site. With fewer sites than the tier needs there is none to name: the tier's sites
 * warning above says so, and the entry still loads (a one-site installation keeps its tiers).
 */
function checkRecoverySite(
  vm: CrossCheckInput['config']['vms'][number],
  i: number,
  tier: TiersPolicy['tiers'][number] | undefined,
  siteNames: readonly string[],
  file: string,
  out: CrossCheckResult,
): void {
  const path = ['vms', i, 'recoverySite'];
  const cross = tier ? crossSiteMechanisms(tier) : [];
  const r = vm.recoverySite;
  if (r === undefined) {
    if (tier && cross.length > 0 && siteNames.length >= Math.max(2, tier.minSites))
      out.errors.push({
        file,
        path,
        message: `required: tier "${tier.id}" (${tier.labelJa}) moves its VMs across sites (${cross.join(', ')}), so the entry needs the site they go to, expected ${oneOf(
          siteNames.filter((s) => s !== vm.homeSite),
          'sites',
        )}`,
      });
    return;
  }
  if (!siteNames.includes(r))
    out.errors.push({ file, path, message: `unknown site "${r}": expected ${oneOf(siteNames, 'sites')}` });
  else if (r === vm.homeSite)
    out.errors.push({
      file,
      path,
      message: `"${r}" is also the entry's homeSite: a recovery site must be another site`,
    });
  else if (tier && cross.length === 0)
    out.warnings.push({
      file,
      path,
      message: `has no effect: tier "${tier.id}" has no cross-site mechanism, so its VMs never go to "${r}"`,
    });
}

function crossSite(mechanisms: readonly string[]): string {
  const names = mechanisms.filter((m) => m.startsWith('cross-site'));
  return names.length > 0 ? names.join(' and ') : 'its mechanisms';
}

function checkSchedules({ config, file }: CrossCheckInput, out: CrossCheckResult): void {
  const hosts = config.hosts.map((h) => h.name);
  const cronIssue = (path: (string | number)[], expr: string) => {
    const v = validateDetailed(expr);
    if (!v.valid)
      out.errors.push({
        file,
        path,
        message: `"${expr}" is not a cron expression: ${v.errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`,
      });
  };
  const names = new Set<string>();
  config.schedules.forEach((s, i) => {
    if (names.has(s.name))
      out.errors.push({ file, path: ['schedules', i, 'name'], message: `"${s.name}" is used twice` });
    names.add(s.name);
    if (s.stop === undefined && s.start === undefined)
      out.errors.push({ file, path: ['schedules', i], message: 'expected stop, start or both' });
    if (s.stop !== undefined) cronIssue(['schedules', i, 'stop'], s.stop);
    if (s.start !== undefined) cronIssue(['schedules', i, 'start'], s.start);
  });
  config.drills.scheduled.forEach((d, i) => {
    cronIssue(['drills', 'scheduled', i, 'cron'], d.cron);
    if (d.to !== undefined && !hosts.includes(d.to))
      out.errors.push({
        file,
        path: ['drills', 'scheduled', i, 'to'],
        message: `unknown host "${d.to}": expected ${oneOf(hosts, 'hosts')}`,
      });
  });
  config.maintenanceWindows.forEach((w, i) => {
    cronIssue(['maintenanceWindows', i, 'start'], w.start);
    w.hosts.forEach((h, j) => {
      if (!hosts.includes(h))
        out.errors.push({
          file,
          path: ['maintenanceWindows', i, 'hosts', j],
          message: `unknown host "${h}": expected ${oneOf(hosts, 'hosts')}`,
        });
    });
  });
}

function checkListeners({ config, file }: CrossCheckInput, out: CrossCheckResult): void {
  const api = parseListen(config.api.listen);
  if (api.ok && !isLoopback(api.value.host) && config.api.tls === undefined) {
    if (config.api.allowPlainHttp)
      out.warnings.push({
        file,
        path: ['api', 'listen'],
        message: `the API listens on ${config.api.listen} without TLS (allowPlainHttp is set)`,
      });
    else
      out.errors.push({
        file,
        path: ['api', 'listen'],
        message: `plain HTTP on ${config.api.listen} is only allowed on loopback: set api.tls (or api.allowPlainHttp: true behind a TLS proxy)`,
      });
  }
  if (config.metrics !== undefined && config.metrics.listen === config.api.listen) {
    out.errors.push({
      file,
      path: ['metrics', 'listen'],
      message: `${config.metrics.listen} is already api.listen (leave metrics out to serve /metrics on the API)`,
    });
  }
  if (config.libvirt.reconnectMaxMs < config.libvirt.reconnectMinMs) {
    out.errors.push({
      file,
      path: ['libvirt', 'reconnectMaxMs'],
      message: `expected at least libvirt.reconnectMinMs (${config.libvirt.reconnectMinMs}), got ${config.libvirt.reconnectMaxMs}`,
    });
  }
  // Renewing at least three times per lease leaves room for a slow or lost renewal; closer,
  // the lease lapses between renewals and leadership flaps.
  if (config.leader.renewMs * 3 > config.leader.leaseMs) {
    out.errors.push({
      file,
      path: ['leader', 'renewMs'],
      message: `expected at most a third of leader.leaseMs (${config.leader.leaseMs}), so at most ${Math.floor(config.leader.leaseMs / 3)}, got ${config.leader.renewMs}`,
    });
  }
}

/**
 * Cross-site migration rules name known, distinct sites and a known tier; compression fits the
 * connections (xbzrle and mt on one connection, zlib and zstd on parallel ones: libvirt's rule).
 */
function checkMigration({ config, file, tiers, tiersFile }: CrossCheckInput, out: CrossCheckResult): void {
  const err = (path: ConfigPath, message: string) => out.errors.push({ file, path, message });
  const siteNames = [...new Set(config.sites.map((s) => s.name))];
  const tierIds = tiers.tiers.map((t) => t.id);
  const m = config.migration;
  checkCompression(m.compression, m.parallelConnections, ['migration'], err);
  m.crossSite.forEach((r, i) => {
    const path = ['migration', 'crossSite', i];
    r.sites?.forEach((s, j) => {
      if (!siteNames.includes(s))
        err([...path, 'sites', j], `unknown site "${s}": expected ${oneOf(siteNames, 'sites')}`);
    });
    if (r.sites && r.sites[0] === r.sites[1])
      err([...path, 'sites'], `"${r.sites[0]}" twice: a rule is for a move between two sites`);
    if (r.tier !== undefined && !tierIds.includes(r.tier))
      err([...path, 'tier'], `unknown tier "${r.tier}": expected ${oneOf(tierIds, tiersFile)}`);
    if (r.compression !== undefined || r.parallelConnections !== undefined)
      checkCompression(
        r.compression ?? m.compression,
        r.parallelConnections ?? m.parallelConnections,
        path,
        err,
      );
  });
}

function checkCompression(
  methods: readonly string[],
  parallel: number,
  path: ConfigPath,
  err: (path: ConfigPath, message: string) => void,
): void {
  const wrong = methods.filter((c) =>
    parallel > 0 ? c === 'xbzrle' || c === 'mt' : c === 'zlib' || c === 'zstd',
  );
  const at = [...path, 'compression'];
  if (new Set(methods).size < methods.length) err(at, 'a method is listed twice');
  if (wrong.length > 0)
    err(
      at,
      parallel > 0
        ? `${listQuoted(wrong)}: for one connection only, but parallelConnections is ${parallel} (parallel connections take zlib or zstd)`
        : `${listQuoted(wrong)}: for parallel connections only (parallelConnections >= 1); one connection takes xbzrle or mt`,
    );
  else if (methods.includes('zlib') && methods.includes('zstd'))
    err(at, 'zlib and zstd cannot be used at once');
}

/** `one of "dc1" or "dc2" (from sites)`; an empty list says where it would come from. */
function oneOf(values: readonly string[], from: string): string {
  if (values.length === 0) return `a name defined in ${from}, which defines none`;
  return `${values.length === 1 ? '' : 'one of '}${listQuoted(values)} (from ${from})`;
}

/** Sentinel mode needs the primary's name; its other keys mean nothing without sentinels. */
function checkRedis({ config, file }: CrossCheckInput, out: CrossCheckResult): void {
  const { sentinels, sentinelName, sentinelPasswordFile } = config.redis;
  if (sentinels === undefined) {
    if (sentinelName !== undefined)
      out.errors.push({ file, path: ['redis', 'sentinelName'], message: 'only used with redis.sentinels' });
    if (sentinelPasswordFile !== undefined)
      out.errors.push({
        file,
        path: ['redis', 'sentinelPasswordFile'],
        message: 'only used with redis.sentinels',
      });
    return;
  }
  if (sentinelName === undefined)
    out.errors.push({
      file,
      path: ['redis', 'sentinelName'],
      message:
        'required with redis.sentinels: expected the name the sentinels monitor the primary under, like keizoku',
    });
  duplicates(
    sentinels,
    (s) => s,
    (i, first, v) =>
      out.errors.push({
        file,
        path: ['redis', 'sentinels', i],
        message: `${v} is already redis.sentinels[${first}]`,
      }),
  );
  const distinct = new Set(sentinels).size;
  if (distinct < 3)
    out.warnings.push({
      file,
      path: ['redis', 'sentinels'],
      message: `only ${distinct === 1 ? 'one sentinel' : 'two sentinels'}: a promotion needs a majority of them, so losing one stops failover (run three, on separate machines)`,
    });
}
