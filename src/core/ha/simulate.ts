import { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../../config/errors.ts';
import { parseYaml } from '../../config/yaml-file.ts';
import { validate } from '../../config/zod-issues.ts';
import { type HealthInput, judgeHealth } from '../health.ts';
import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../model.ts';
import { checkAdmission } from './admission.ts';
import {
  DEFAULT_HA_CONFIG,
  emptyHaState,
  type FenceResult,
  type HaCommand,
  type HaConfig,
  type HaInput,
  type HaState,
  stepHa,
} from './machine.ts';
import type { FailoverPlacement } from './restart-plan.ts';

/**
 * The failover simulator, in virtual time. Pure apart from nothing: the caller reads the files.
 *
 *   parseScenario(yamlText, shownName): Scenario      (throws ConfigError naming file and field)
 *   simulate(scenario): { lines: string[]; violations: string[] }
 *   compareTimeline(actual, expected): string | null   (a unified-style diff, or null when equal)
 *
 * Every tick the simulated world gives judgeHealth what keizokud would see (libvirt link, ICMP,
 * witness counts, fence records), stepHa decides, and its commands run in the world: a fence
 * powers the host off after fenceDelayS (unless it is set to fail), a restart starts the VM
 * after restartDelayS. Invariants are checked all along: no VM on two hosts, no restart before
 * its host's fence is confirmed, no restart of a VM that still runs anywhere, no restart from a
 * host that is powered on and was never fenced.
 */

const name = z.string().min(1);
/** The events that name only a host. */
export const HOST_EVENTS = [
  'host-off',
  'host-on',
  'link-off',
  'link-on',
  'maintenance-on',
  'maintenance-off',
  'operator-confirm-off',
] as const;
const EventSchema = z.discriminatedUnion('do', [
  z.strictObject({
    at: z.number().min(0),
    do: z.enum(HOST_EVENTS),
    host: name,
  }),
  z.strictObject({ at: z.number().min(0), do: z.literal('witness-silent'), count: z.number().int().min(0) }),
  z.strictObject({
    at: z.number().min(0),
    do: z.literal('fence-fails'),
    host: name,
    times: z.number().int().min(1),
  }),
  z.strictObject({
    at: z.number().min(0),
    do: z.literal('controller-restart'),
    downS: z.number().min(0).default(5),
  }),
  z.strictObject({ at: z.number().min(0), do: z.literal('ha-pause'), forS: z.number().min(0) }),
  z.strictObject({ at: z.number().min(0), do: z.enum(['vm-crash', 'operator-clear']), vm: name }),
  z.strictObject({ at: z.number().min(0), do: z.literal('start-vm'), vm: name, host: name }),
  z.strictObject({
    at: z.number().min(0),
    do: z.literal('restart-fails'),
    vm: name,
    host: name,
    times: z.number().int().min(1),
  }),
]);

const ScenarioSchema = z.strictObject({
  description: z.string().optional(),
  durationS: z.number().min(1),
  tickS: z.number().min(0.1).default(1),
  witnesses: z.number().int().min(0).default(3),
  fenceDelayS: z.number().min(0).default(1),
  restartDelayS: z.number().min(0).default(2),
  /** A restarted VM answers the probe this long after it runs (the priority gate waits for it). */
  answerDelayS: z.number().min(0).default(1),
  ha: z
    .strictObject({
      declareAfterS: z.number().min(0).optional(),
      fenceBackoffS: z.number().min(0).optional(),
      fenceBackoffMaxS: z.number().min(0).optional(),
      fenceTimeoutS: z.number().min(0).optional(),
      replanAfterS: z.number().min(0).optional(),
      restartsPerHour: z.number().int().min(0).optional(),
      priorityGate: z.enum(['none', 'running', 'answer']).optional(),
      priorityGateTimeoutS: z.number().min(0).optional(),
      fenceMethods: z.record(z.string(), z.enum(['ipmi', 'redfish', 'ssh', 'lab', 'none'])).optional(),
    })
    .default({}),
  cluster: z.strictObject({
    hosts: z
      .array(
        z.strictObject({
          name,
          site: name.default('a'),
          cpus: z.number().int().min(1).default(4),
          memoryMiB: z.number().int().min(1),
          maintenance: z.boolean().default(false),
        }),
      )
      .min(1),
    vms: z.array(
      z.strictObject({
        name,
        host: name,
        memoryMiB: z.number().int().min(1).default(512),
        vcpus: z.number().int().min(1).default(1),
        tier: z.number().int().min(0).default(1),
        priority: z.number().int().nullable().default(0),
        affinity: z.string().nullable().default(null),
        antiAffinity: z.string().nullable().default(null),
        /** false: defined, not running (a `start-vm` event starts it). */
        running: z.boolean().default(true),
        /** false: never answers the probe after a restart (no agent watches it, or its service is down). */
        answers: z.boolean().default(true),
      }),
    ),
  }),
  /** Admission control applied to `start-vm` events (admission.ts checkAdmission). */
  admission: z
    .strictObject({
      toleratedHostFailures: z.number().int().min(0).optional(),
      reservedShare: z.number().min(0).max(1).optional(),
    })
    .default({}),
  events: z.array(EventSchema).default([]),
});

export type Scenario = z.output<typeof ScenarioSchema>;
type ScenarioEvent = Scenario['events'][number];

export function parseScenario(text: string, shown: string): Scenario {
  const y = parseYaml(text, shown, 'a mapping with durationS, cluster and events');
  if (!y.ok) throw new ConfigError(y.issues);
  const v = validate(ScenarioSchema, y.data, shown);
  if (!v.ok) throw new ConfigError(v.issues);
  const s = v.value;
  const issues: ConfigIssue[] = [];
  const hosts = new Set(s.cluster.hosts.map((h) => h.name));
  const vms = new Set(s.cluster.vms.map((x) => x.name));
  s.cluster.vms.forEach((x, i) => {
    if (!hosts.has(x.host))
      issues.push({ file: shown, path: ['cluster', 'vms', i, 'host'], message: `no host named "${x.host}"` });
  });
  s.events.forEach((e, i) => {
    if ('host' in e && !hosts.has(e.host))
      issues.push({ file: shown, path: ['events', i, 'host'], message: `no host named "${e.host}"` });
    if ('vm' in e && !vms.has(e.vm))
      issues.push({ file: shown, path: ['events', i, 'vm'], message: `no VM named "${e.vm}"` });
    if (e.do === 'start-vm' && e.at < s.tickS)
      issues.push({
        file: shown,
        path: ['events', i, 'at'],
        message: `start-vm needs at >= tickS (${s.tickS}): admission sees the cluster of the tick before`,
      });
  });
  if (issues.length > 0) throw new ConfigError(issues);
  return s;
}

interface WorldHost {
  name: string;
  site: string;
  power: boolean;
  link: boolean;
  maintenance: boolean;
  failFences: number;
  fencedAt: number | null;
  lastSuccessAt: number | null;
  connectedAt: number | null;
  lastReplyAt: number | null;
  lastSeenVms: string[];
}

const fmt = (ms: number) => `t=${(ms / 1000).toFixed(1)}s`;

export function simulate(s: Scenario): { lines: string[]; violations: string[] } {
  const tick = Math.round(s.tickS * 1000);
  const cfg: HaConfig = {
    ...DEFAULT_HA_CONFIG,
    ...(s.ha.declareAfterS !== undefined ? { declareAfterMs: s.ha.declareAfterS * 1000 } : {}),
    ...(s.ha.fenceBackoffS !== undefined ? { fenceBackoffMs: s.ha.fenceBackoffS * 1000 } : {}),
    ...(s.ha.fenceBackoffMaxS !== undefined ? { fenceBackoffMaxMs: s.ha.fenceBackoffMaxS * 1000 } : {}),
    ...(s.ha.fenceTimeoutS !== undefined ? { fenceTimeoutMs: s.ha.fenceTimeoutS * 1000 } : {}),
    ...(s.ha.replanAfterS !== undefined ? { replanAfterMs: s.ha.replanAfterS * 1000 } : {}),
    ...(s.ha.restartsPerHour !== undefined ? { restartsPerHour: s.ha.restartsPerHour } : {}),
    ...(s.ha.priorityGate !== undefined ? { priorityGate: s.ha.priorityGate } : {}),
    ...(s.ha.priorityGateTimeoutS !== undefined
      ? { priorityGateTimeoutMs: s.ha.priorityGateTimeoutS * 1000 }
      : {}),
    ...(s.ha.fenceMethods ? { fenceMethods: s.ha.fenceMethods } : {}),
  };
  const lines: string[] = [];
  const violations: string[] = [];
  const log = (t: number, text: string) => lines.push(`${fmt(t)} ${text}`);
  const hosts = new Map<string, WorldHost>();
  for (const h of s.cluster.hosts)
    hosts.set(h.name, {
      name: h.name,
      site: h.site,
      power: true,
      link: true,
      maintenance: h.maintenance,
      failFences: 0,
      fencedAt: null,
      lastSuccessAt: 0,
      connectedAt: 0,
      lastReplyAt: 0,
      lastSeenVms: [],
    });
  const spec = new Map(s.cluster.vms.map((v) => [v.name, v]));
  /** Where each VM runs (a set: the invariant is that it never holds two). */
  const running = new Map<string, Set<string>>(
    s.cluster.vms.map((v) => [v.name, new Set(v.running ? [v.host] : [])]),
  );
  let lastSnapshot: ClusterSnapshot | null = null;
  const restartFails = new Map<string, number>();
  /** When each restarted VM answers the probe (answerDelayS after it runs). */
  const answersAt = new Map<string, number>();
  const placement: FailoverPlacement = {
    rulesOf: (vm) => ({
      affinityGroup: spec.get(vm)?.affinity ?? null,
      antiAffinityGroup: spec.get(vm)?.antiAffinity ?? null,
    }),
    cpuOvercommit: 4,
    memoryFraction: 1,
    haPriorityOf: (vm) => spec.get(vm)?.priority ?? null,
    tierRankOf: (vm) => spec.get(vm)?.tier ?? 1,
  };
  let silent = 0;
  let pausedUntil: number | null = null;
  let controllerUpAt = 0;
  let state: HaState = emptyHaState();
  let persisted = JSON.stringify(state);
  const previous = new Map<string, { health: HealthInput['previous'] }>();
  type Pending = { at: number; run: () => void };
  let pending: Pending[] = [];
  let fenceResults: FenceResult[] = [];
  let restartResults: { vm: string; host: string; ok: boolean; error?: string }[] = [];
  let vmDied: { vm: string; host: string }[] = [];
  let operatorClear: string[] = [];
  const events = [...s.events].sort((a, b) => a.at - b.at);

  const stopVmsOn = (h: string) => {
    for (const set of running.values()) set.delete(h);
  };
  const apply = (t: number, e: ScenarioEvent) => {
    const h = 'host' in e ? hosts.get(e.host)! : undefined;
    switch (e.do) {
      case 'host-off':
        h!.power = false;
        stopVmsOn(h!.name);
        log(t, `event: host ${h!.name} powers off`);
        break;
      case 'host-on':
        h!.power = true;
        log(t, `event: host ${h!.name} powers on (its VMs stay off)`);
        break;
      case 'link-off':
        h!.link = false;
        log(t, `event: management link of ${h!.name} down`);
        break;
      case 'link-on':
        h!.link = true;
        log(t, `event: management link of ${h!.name} up`);
        break;
      case 'operator-confirm-off':
        // What POST /v1/hosts/{name}/confirm-off records: a fence record at this time.
        h!.fencedAt = t;
        log(t, `event: an operator confirms host ${h!.name} is off`);
        break;
      case 'maintenance-on':
        h!.maintenance = true;
        log(t, `event: host ${h!.name} enters maintenance`);
        break;
      case 'maintenance-off':
        h!.maintenance = false;
        log(t, `event: host ${h!.name} leaves maintenance`);
        break;
      case 'witness-silent':
        silent = e.count;
        log(t, `event: ${e.count} of ${s.witnesses} witnesses silent`);
        break;
      case 'fence-fails':
        h!.failFences = e.times;
        log(t, `event: fencing ${h!.name} will fail ${e.times} time(s)`);
        break;
      case 'controller-restart':
        controllerUpAt = t + e.downS * 1000;
        fenceResults = [];
        pending = pending.filter((p) => !('fence' in p));
        log(t, `event: controller stops; back in ${e.downS}s from its persisted state`);
        break;
      case 'ha-pause':
        pausedUntil = t + e.forS * 1000;
        log(t, `event: HA paused for ${e.forS}s`);
        break;
      case 'vm-crash':
        for (const x of running.get(e.vm)!) vmDied.push({ vm: e.vm, host: x });
        running.get(e.vm)!.clear();
        log(t, `event: VM ${e.vm} crashes`);
        break;
      case 'operator-clear':
        operatorClear.push(e.vm);
        log(t, `event: operator clears VM ${e.vm}`);
        break;
      case 'start-vm': {
        const v = spec.get(e.vm)!;
        const where = running.get(e.vm)!;
        if (where.size > 0) {
          log(
            t,
            `event: start of VM ${e.vm} on ${e.host} refused: it runs on ${[...where].sort().join(', ')}`,
          );
          break;
        }
        const refusal = checkAdmission(
          lastSnapshot!,
          { vm: e.vm, host: e.host, vcpus: v.vcpus, memoryKiB: v.memoryMiB * 1024 },
          placement,
          s.admission,
        );
        if (refusal) {
          log(t, `event: start of VM ${e.vm} on ${e.host} refused (${refusal.code}): ${refusal.reason}`);
          break;
        }
        where.add(e.host);
        log(t, `event: VM ${e.vm} started on ${e.host} (admitted)`);
        break;
      }
      case 'restart-fails':
        restartFails.set(`${e.vm}@${e.host}`, e.times);
        log(t, `event: starting ${e.vm} on ${e.host} will fail ${e.times} time(s)`);
        break;
    }
  };

  const run = (t: number, c: HaCommand) => {
    if (c.kind === 'fence') {
      const h = hosts.get(c.host)!;
      const p: Pending & { fence: true } = {
        at: t + s.fenceDelayS * 1000,
        fence: true,
        run: () => {
          if (h.failFences > 0) {
            h.failFences -= 1;
            fenceResults.push({
              host: h.name,
              attempt: c.attempt,
              ok: false,
              powerOff: false,
              error: 'BMC did not answer',
            });
            return;
          }
          h.power = false;
          stopVmsOn(h.name);
          h.fencedAt = p.at;
          fenceResults.push({ host: h.name, attempt: c.attempt, ok: true, powerOff: true });
        },
      };
      pending.push(p);
      return;
    }
    for (const a of c.decision.actions) {
      if (a.kind !== 'restart-elsewhere' && a.kind !== 'start') continue;
      const to = a.kind === 'start' ? a.host : a.to;
      const still = [...running.get(a.vm)!].sort();
      if (still.length > 0)
        violations.push(`${fmt(t)} ${a.vm} restarted while it still runs on ${still.join(', ')}`);
      // A relocation of a VM that died on an up host (VM-level HA) fences nothing.
      if (a.kind === 'restart-elsewhere' && state.vms[a.vm]?.phase !== 'restarting') {
        const from = hosts.get(a.from)!;
        // Powered on after a fence is fine (the fence stopped its VMs); never fenced is not.
        if (from.power && from.fencedAt === null)
          violations.push(
            `${fmt(t)} ${a.vm} restarted while ${a.from} is still powered on and was never fenced (partitioned, not down)`,
          );
        const st = state.hosts[a.from];
        if (!st || (st.phase !== 'recovering' && st.phase !== 'done' && st.phase !== 'ok'))
          violations.push(`${fmt(t)} ${a.vm} restarted before the fence of ${a.from} was confirmed`);
        if (from.fencedAt === null && (cfg.fenceMethods?.[a.from] ?? 'lab') !== 'none')
          violations.push(`${fmt(t)} ${a.vm} restarted but ${a.from} was never fenced`);
      }
      pending.push({
        at: t + s.restartDelayS * 1000,
        run: () => {
          const key = `${a.vm}@${to}`;
          const fails = restartFails.get(key) ?? 0;
          const host = hosts.get(to)!;
          if (fails > 0 || !host.power) {
            restartFails.set(key, fails - 1);
            restartResults.push({
              vm: a.vm,
              host: to,
              ok: false,
              error: host.power ? 'start failed' : 'host is off',
            });
            return;
          }
          const set = running.get(a.vm)!;
          set.add(to);
          if (set.size > 1) violations.push(`${fmt(t)} ${a.vm} runs on ${[...set].sort().join(' and ')}`);
          restartResults.push({ vm: a.vm, host: to, ok: true });
          if (spec.get(a.vm)!.answers)
            answersAt.set(a.vm, t + s.restartDelayS * 1000 + s.answerDelayS * 1000);
        },
      });
    }
  };

  for (let t = 0; t <= s.durationS * 1000; t += tick) {
    while (events.length > 0 && events[0]!.at * 1000 <= t) apply(t, events.shift()!);
    const due = pending.filter((p) => p.at <= t);
    pending = pending.filter((p) => p.at > t);
    for (const p of due) p.run();
    if (t < controllerUpAt) continue;
    if (t === controllerUpAt && t > 0) {
      state = JSON.parse(persisted) as HaState;
    }
    const health: HaInput['health'] = {};
    const snapHosts = new Map<string, HostSnapshot>();
    const snapVms = new Map<string, VmSnapshot>();
    for (const h of hosts.values()) {
      const reach = h.power && h.link;
      if (reach) {
        if (h.connectedAt === null) h.connectedAt = t;
        h.lastSuccessAt = t;
        h.lastReplyAt = t;
      } else h.connectedAt = null;
      const vmsHere = [...running]
        .filter(([, set]) => set.has(h.name))
        .map(([n]) => n)
        .sort();
      const hostWitness = vmsHere.length > 0 || h.power;
      const total = s.witnesses;
      const judged = judgeHealth(
        {
          connected: reach,
          connectedAt: h.connectedAt,
          lastSuccessAt: h.lastSuccessAt,
          lastAttemptAt: t,
          icmp: { lastReplyAt: h.lastReplyAt, lastSentAt: t },
          fencedAt: h.fencedAt,
          witnesses:
            hostWitness && h.power
              ? { up: total - silent, down: 0, total }
              : { up: 0, down: total - silent, total },
          previous: previous.get(h.name)?.health ?? null,
        },
        t,
      );
      previous.set(h.name, { health: { health: judged.health, since: judged.since } });
      health[h.name] = { health: judged.health, evidence: judged.evidence };
      if (judged.health === 'up') h.lastSeenVms = vmsHere;
      snapHosts.set(h.name, {
        name: h.name,
        site: h.site,
        health: judged.health,
        cpus: s.cluster.hosts.find((x) => x.name === h.name)!.cpus,
        memoryKiB: s.cluster.hosts.find((x) => x.name === h.name)!.memoryMiB * 1024,
        cpuUtilisation: null,
        memoryUsedKiB: null,
        maintenance: h.maintenance,
        observedAt: h.lastSuccessAt,
        vms: judged.health === 'up' ? vmsHere : [],
        ...(judged.health === 'up' ? {} : { lastKnownVms: h.lastSeenVms }),
      });
      if (judged.health === 'up')
        for (const n of vmsHere) {
          const v = spec.get(n)!;
          snapVms.set(n, {
            name: n,
            uuid: n,
            host: h.name,
            state: 'running',
            vcpus: v.vcpus,
            memoryKiB: v.memoryMiB * 1024,
            cpuUsage: null,
            memoryUsedKiB: null,
          });
        }
    }
    const snapshot: ClusterSnapshot = {
      takenAt: t,
      sites: [...new Set(s.cluster.hosts.map((h) => h.site))],
      hosts: snapHosts,
      vms: snapVms,
    };
    lastSnapshot = snapshot;
    const input: HaInput = {
      health,
      snapshot,
      placement,
      specOf: (vm) => {
        const v = spec.get(vm);
        return v ? { vcpus: v.vcpus, memoryKiB: v.memoryMiB * 1024 } : null;
      },
      pausedUntil,
      fenceResults,
      restartResults,
      vmDied,
      operatorClear,
      answered: [...answersAt].filter(([vm, at]) => at <= t && running.get(vm)!.size > 0).map(([vm]) => vm),
      diskLocksExpired: [...hosts.values()].filter((h) => !h.power).map((h) => h.name),
    };
    fenceResults = [];
    restartResults = [];
    vmDied = [];
    operatorClear = [];
    const out = stepHa(state, input, t, cfg);
    state = out.state;
    persisted = JSON.stringify(state);
    for (const e of out.events) log(t, e.text);
    for (const c of out.commands) {
      if (c.kind === 'fence') log(t, `command: fence ${c.host} (attempt ${c.attempt}, ${c.method})`);
      run(t, c);
    }
  }
  const end = s.durationS * 1000;
  for (const [vm, set] of [...running].sort(([a], [b]) => a.localeCompare(b)))
    log(
      end,
      `end: VM ${vm} ${set.size === 0 ? 'not running' : `on ${[...set].sort().join(', ')}`}${state.vms[vm]?.phase === 'error' ? ' (error)' : ''}`,
    );
  for (const v of violations) lines.push(`VIOLATION ${v}`);
  return { lines, violations };
}

/** Line diff of two timelines (`-` expected, `+` actual), or null when they are equal. */
export function compareTimeline(actual: readonly string[], expected: readonly string[]): string | null {
  const a = actual.join('\n').trimEnd();
  const e = expected.join('\n').trimEnd();
  if (a === e) return null;
  const al = a.split('\n');
  const el = e.split('\n');
  // LCS table: timelines are short (hundreds of lines).
  const m = el.length;
  const n = al.length;
  const L: number[][] = Array.from({ length: m + 1 }, () => new Array<number>(n + 1).fill(0));
  for (let i = m - 1; i >= 0; i--)
    for (let j = n - 1; j >= 0; j--)
      L[i]![j] = el[i] === al[j] ? L[i + 1]![j + 1]! + 1 : Math.max(L[i + 1]![j]!, L[i]![j + 1]!);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < m || j < n) {
    if (i < m && j < n && el[i] === al[j]) {
      i++;
      j++;
      continue;
    }
    if (j < n && (i === m || L[i]![j + 1]! >= L[i + 1]![j]!)) out.push(`+ ${al[j++]}`);
    else out.push(`- ${el[i++]}`);
  }
  return out.join('\n');
}
