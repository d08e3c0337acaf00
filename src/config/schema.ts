import { z } from 'zod';
import {
  filePath,
  hostAddress,
  listen,
  millis,
  name,
  parsedText,
  positiveInt,
  redisUrl,
  text,
  timeZone,
} from './fields.ts';
import { LIBVIRT_URI_EXAMPLE, parseLibvirtUri, parseListen } from './formats.ts';
import { DATA_CLASS_IDS } from './policies.ts';

/**
 * The one schema of `keizokud.yaml`. Every object is strict (an unknown field is an error that
 * names it); defaults are filled in here, so code reading the config never guesses.
 * Cross-references (sites, tiers, profiles, duplicates) are checked in validate.ts.
 */

const siteSchema = z.strictObject({
  name,
  description: z.string().optional(),
});

const fenceSchema = z.discriminatedUnion('method', [
  /** No fencing: a lost host's VMs restart only once a quorum of observers confirms it down. */
  z.strictObject({ method: z.literal('none') }),
  /** The lab's power switch (`npm run lab -- fence HOST`). */
  z.strictObject({ method: z.literal('lab'), labId: z.int().min(0).max(49).default(0) }),
  z.strictObject({
    method: z.literal('ipmi'),
    address: hostAddress,
    username: text('a user name'),
    port: z.int().min(1).max(65535).default(623),
    passwordFile: filePath,
    interface: z.enum(['lan', 'lanplus']).default('lanplus'),
    /**
     * RMCP+ cipher suite (ipmitool -C), lanplus only. Absent: ipmitool asks the BMC for its
     * suites (a BMC that does not answer, as OpenIPMI's ipmi_sim, costs 10 s of retries per call).
     */
    cipherSuite: z.int().min(0).max(17).optional(),
    /** How long to read the power status after the power off before the fence counts as failed. */
    confirmTimeoutMs: millis(100, 30_000),
  }),
  z.strictObject({
    method: z.literal('redfish'),
    address: hostAddress,
    port: z.int().min(1).max(65535).default(443),
    systemId: text('a Redfish system id').default('1'),
    username: text('a user name'),
    passwordFile: filePath,
    /** CA that signed the BMC's certificate; absent: the system's CAs. */
    caFile: filePath.optional(),
    /** Skip the BMC certificate check (a self-signed BMC certificate without a CA file). */
    insecure: z.boolean().default(false),
    confirmTimeoutMs: millis(100, 30_000),
  }),
  z.strictObject({
    method: z.literal('ssh'),
    /** Defaults to the host's managementAddress. */
    address: hostAddress.optional(),
    port: z.int().min(1).max(65535).default(22),
    user: text('a user name').default('root'),
    keyFile: filePath,
    knownHostsFile: filePath,
    /** Run on the host to power it off at once. */
    command: text('a command'),
    /** Run by keizokud to confirm off (exit 0 printing `off`); absent: the host stops answering ping. */
    statusCommand: z.array(text('a command word')).min(1).optional(),
    confirmTimeoutMs: millis(100, 30_000),
  }),
]);

const hostSchema = z.strictObject({
  name,
  uri: parsedText(LIBVIRT_URI_EXAMPLE, parseLibvirtUri),
  site: name,
  managementAddress: hostAddress,
  /** Must be true for qemu+tcp:// (no encryption, no authentication): lab only. */
  insecure: z.boolean().default(false),
  /** Overrides what libvirt reports, e.g. to hold back room for the host itself. */
  capacity: z.strictObject({ cpus: positiveInt.optional(), memoryMiB: positiveInt.optional() }).optional(),
  fence: fenceSchema.prefault({ method: 'none' }),
  /** The URI other hosts' libvirtd use to reach this one in a peer-to-peer migration (default: uri). */
  migrationUri: parsedText(LIBVIRT_URI_EXAMPLE, parseLibvirtUri).optional(),
});

const libvirtSchema = z.strictObject({
  tls: z.strictObject({ caFile: filePath, certFile: filePath, keyFile: filePath }).optional(),
  ssh: z
    .strictObject({ keyFile: filePath, knownHostsFile: filePath, user: text('a user name').optional() })
    .optional(),
  /** A lost host is noticed after interval x count seconds of silence: failover starts there. */
  keepaliveIntervalSec: z.int().min(1).max(3600).default(1),
  keepaliveCount: z.int().min(1).max(100).default(3),
  callTimeoutMs: millis(100, 30_000),
  /** Reconnect backoff to a host that cannot be reached: from min, doubling, up to max. */
  reconnectMinMs: millis(100, 500),
  reconnectMaxMs: millis(100, 30_000),
});

const apiSchema = z.strictObject({
  listen: listen.default('127.0.0.1:7480'),
  tls: z
    .strictObject({
      certFile: filePath,
      keyFile: filePath,
      /** Set to require a client certificate signed by this CA (mutual TLS), on top of the token. */
      clientCaFile: filePath.optional(),
    })
    .optional(),
  /** Plain HTTP beyond loopback is refused unless this is true (behind a TLS-terminating proxy). */
  allowPlainHttp: z.boolean().default(false),
  /** Largest request body accepted, in bytes. */
  bodyLimitBytes: z
    .int()
    .min(1024)
    .max(16 * 1024 * 1024)
    .default(65_536),
  /** Requests per minute per token; per client address for requests without a valid token or refused, and for open routes. */
  rateLimitPerMinute: z.int().min(1).max(1_000_000).default(1200),
  /** How far a vm-admin may override the migration policy in POST migrate (operators and admins: no limit). */
  vmAdminMigrationPolicy: z
    .strictObject({
      maxTimeoutMs: z.int().min(1_000).max(86_400_000).default(300_000),
      /** 0 (unlimited) is always allowed. */
      minBandwidthMiBs: z.int().min(0).max(100_000).default(100),
      allowPostCopy: z.boolean().default(false),
    })
    .prefault({}),
});

/** libvirt's migration compression methods: xbzrle and mt on one connection, zlib and zstd on parallel ones. */
export const MIGRATION_COMPRESSION = ['xbzrle', 'mt', 'zlib', 'zstd'] as const;
const compression = z.array(z.enum(MIGRATION_COMPRESSION)).max(2);
const parallelConnections = z.int().min(0).max(255);

/**
 * Settings of a move between two sites (the WAN), over the migration defaults. The first rule
 * whose sites and tier fit the move applies; a field it leaves out keeps the default.
 */
/**
 * A raise of the switch-over limit once the move has reached a pre-copy iteration: a guest
 * that did not converge within the starting limit gets a longer one instead of being
 * throttled further by auto-converge (oVirt's migration policies step their downtime alike).
 */
const downtimeStepSchema = z.strictObject({
  afterIterations: z.int().min(2).max(1000),
  maxDowntimeMs: z.int().min(1).max(60_000),
});

const crossSiteRuleSchema = z.strictObject({
  /** The two sites, either direction (absent: any two sites). */
  sites: z.array(name).length(2).optional(),
  /** Only VMs of this tier (absent: every tier). */
  tier: name.optional(),
  bandwidthMiBs: z.int().min(0).max(100_000).optional(),
  compression: compression.optional(),
  parallelConnections: parallelConnections.optional(),
  maxDowntimeMs: z.int().min(1).max(60_000).optional(),
  maxDowntimeSteps: z.array(downtimeStepSchema).max(16).optional(),
  autoConverge: z.boolean().optional(),
  postCopyAfterIterations: z.int().min(0).max(1000).optional(),
  postCopyAfterMs: z.int().min(0).max(3_600_000).optional(),
  timeoutMs: z.int().min(1_000).max(86_400_000).optional(),
});

const migrationSchema = z.strictObject({
  /**
   * Longest pause of the guest libvirt may choose for the final switch-over, at the start of
   * the move. Below QEMU's own 300 ms (what raw `virsh migrate` gets): in bench:migrate, 50 ms
   * halved the outage of virsh's moves of the same guest (docs/operations.md).
   */
  maxDowntimeMs: z.int().min(1).max(60_000).default(50),
  /**
   * Raises of that limit as the move goes on (a limit never goes down): 50 ms alone left busy
   * guests of an evacuation throttled by auto-converge for seconds; from the third iteration on
   * they get the 100 ms that moved them without it (docs/operations.md).
   */
  maxDowntimeSteps: z
    .array(downtimeStepSchema)
    .max(16)
    .default([{ afterIterations: 3, maxDowntimeMs: 100 }]),
  /** MiB/s; 0 = unlimited. */
  bandwidthMiBs: z.int().min(0).max(100_000).default(0),
  /** Throttle the guest's vCPUs when memory is dirtied faster than it is sent. */
  autoConverge: z.boolean().default(true),
  /** Switch to post-copy after this many pre-copy iterations or this long (0 = never). */
  postCopyAfterIterations: z.int().min(0).max(1000).default(0),
  postCopyAfterMs: z.int().min(0).max(3_600_000).default(0),
  /** The whole migration is aborted (the VM stays on the source) after this long. */
  timeoutMs: millis(1_000, 300_000),
  /** Compression of the memory stream (libvirt --compressed with --comp-methods); none by default. */
  compression: compression.default([]),
  /** Parallel migration connections (libvirt --parallel); 0: one connection. */
  parallelConnections: parallelConnections.default(0),
  /** WAN settings for moves whose source and destination are in different sites. */
  crossSite: z.array(crossSiteRuleSchema).default([]),
  /** Migrations at once touching one host (as source or destination), and in the cluster. */
  perHostConcurrency: z.int().min(1).max(16).default(2),
  clusterConcurrency: z.int().min(1).max(64).default(4),
  /** How often progress is read from libvirt while a migration runs. */
  progressIntervalMs: millis(100, 500),
  /** A TCP port of the guest that echoes (e.g. 7): a session held open across the move says whether sessions survive. */
  sessionCheckPort: z.int().min(1).max(65535).optional(),
});

const placementSchema = z.strictObject({
  /** Committed vCPUs may reach this many times a host's CPUs. */
  cpuOvercommit: z.number().gt(0).max(64).default(4),
  /** Committed guest memory may reach this fraction of a host's memory. */
  memoryFraction: z.number().gt(0).max(1.5).default(0.9),
});

/** A named set of hosts, for VM-host rules (vms[].hostGroup). */
const hostGroupSchema = z.strictObject({
  name,
  hosts: z.array(name).min(1),
});

const cron = text('a cron expression like "0 20 * * 1-5" (minute hour day month weekday, seconds optional)');

const scheduleSchema = z.strictObject({
  name,
  /** VM names or globs. */
  vms: z.array(text('a VM name or glob like batch-*')).min(1),
  /** When to shut the VMs down (ACPI), and when to start them, in timeZone. */
  stop: cron.optional(),
  start: cron.optional(),
  /** Starts do not fire on days of the holiday calendar: the VMs stay off. */
  skipHolidays: z.boolean().default(true),
});

const maintenanceWindowSchema = z.strictObject({
  name,
  hosts: z.array(name).min(1),
  /** When the window opens (hosts enter maintenance, evacuating their VMs), in timeZone. */
  start: cron,
  durationMinutes: z
    .int()
    .min(1)
    .max(7 * 24 * 60),
  /** At the end, move back the VMs the evacuation moved off. */
  moveBack: z.boolean().default(true),
});

const drillsSchema = z.strictObject({
  /** Reports are kept here as ID.json, ID.md and ID.html (and in Redis for the API). */
  dir: filePath.default('/var/lib/keizoku/drills'),
  /** Drills run on a cron schedule, in timeZone. */
  scheduled: z
    .array(
      z.strictObject({
        name,
        cron,
        scenario: z.enum(['live-migration', 'site-migration', 'host-failure']),
        vm: name,
        count: z.int().min(1).max(1000).optional(),
        to: name.optional(),
      }),
    )
    .default([]),
});

const auditSchema = z.strictObject({
  /** Append-only JSON lines, one file per day (audit-YYYY-MM-DD.jsonl, in timeZone). */
  dir: filePath.default('/var/lib/keizoku/audit'),
  /** Day files older than this are deleted. */
  retentionDays: z.int().min(1).max(3650).default(400),
  /** Entries kept in the Redis stream that the API queries (the files keep everything). */
  streamMaxEntries: z.int().min(1000).max(10_000_000).default(100_000),
});

const loopsSchema = z.strictObject({
  inventoryIntervalMs: millis(100, 10_000),
  healthIntervalMs: millis(100, 500),
  limitsIntervalMs: millis(100, 30_000),
  drsIntervalMs: millis(100, 60_000),
  haIntervalMs: millis(100, 2_000),
  maintenanceIntervalMs: millis(100, 10_000),
  schedulesIntervalMs: millis(100, 60_000),
});

/** What DRS does with the moves it plans: nothing, list them for an operator, or run them. */
export const DRS_MODES = ['off', 'manual', 'automatic'] as const;
const drsMode = z.enum(DRS_MODES);

const drsSchema = z.strictObject({
  /** The cluster's mode; vms[].drs overrides it per VM. */
  mode: drsMode.default('off'),
  /** 1 (only real contention, only moves that clearly pay) to 5 (also evens out load); docs/drs.md. */
  aggressiveness: z.int().min(1).max(5).default(3),
  /** Time between two plans; a VM that bursts is planned for at its next inventory sample. */
  intervalSec: z.int().min(1).max(3600).default(30),
});

/** Automatic failover timing (core/ha/machine.ts HaConfig; loops.haIntervalMs is its pass interval). */
const haSchema = z.strictObject({
  /** How long a host stays `down` (controller, ICMP and a witness majority agree) before it is fenced. */
  declareAfterMs: millis(0, 3_000),
  /**
   * How far back a witness (probe agent) looks at a lost host's VMs: all probes lost over it is
   * a vote down. It must hold at least 3 of the agents' probes (an agent with fewer abstains).
   */
  witnessWindowMs: millis(500, 1_500),
  /** The first retry after a failed fence; doubled at each failure, up to fenceBackoffMaxMs. */
  fenceBackoffMs: millis(100, 2_000),
  fenceBackoffMaxMs: millis(100, 60_000),
  /** A fence with no result by then counts as failed. */
  fenceTimeoutMs: millis(1_000, 60_000),
  /** How soon VMs that fit nowhere are planned again. */
  replanAfterMs: millis(100, 10_000),
  restartsPerHour: z.int().min(0).max(100).default(3),
  /**
   * When a failover's next priority class (tier, then haPriority) starts: `answer` once every
   * VM of the better classes answers the probe (or priorityGateTimeoutMs after it runs; a VM no
   * probe agent reports on holds no one), `running` once they run, `none` all at once.
   */
  priorityGate: z.enum(['none', 'running', 'answer']).default('answer'),
  priorityGateTimeoutMs: millis(1_000, 60_000),
  /**
   * Admission control: host failures the HA VMs must survive. A start through the API that
   * would leave some HA VM unable to restart after the worst that many hosts fail is refused
   * (409, with the reason). 0: nothing is reserved, starts are not checked.
   */
  toleratedHostFailures: z.int().min(0).max(16).default(0),
});

const leaderSchema = z.strictObject({
  leaseMs: millis(1_000, 10_000),
  renewMs: millis(100, 3_000),
});

const SENTINEL_EXAMPLE = 'host:port of a Redis Sentinel like 10.0.0.5:26379';
const sentinelAddress = parsedText(SENTINEL_EXAMPLE, (s) => {
  const p = parseListen(s);
  return p.ok ? p : { ok: false, expected: SENTINEL_EXAMPLE };
});

/**
 * Where Redis is. With `sentinels`, the primary is the one they name `sentinelName` (a promoted
 * replica is followed); `url` still gives the database, user, password and TLS, not the address.
 */
const redisSchema = z.strictObject({
  url: redisUrl,
  sentinels: z.array(sentinelAddress).min(1).optional(),
  /** The name the sentinels monitor the primary under (`sentinel monitor NAME ...`). */
  sentinelName: text('the name the sentinels monitor the primary under, like keizoku').optional(),
  /** The sentinels' own password (`requirepass` of sentinel.conf), read from this file. */
  sentinelPasswordFile: filePath.optional(),
});

const policiesSchema = z.strictObject({
  tiersFile: filePath.optional(),
  limitsFile: filePath.optional(),
});

const labelKey = text('a label name', (s) => s.length > 0 && s.length <= 253);

const matchSchema = z
  .strictObject({
    /** A VM name or a glob (`*` any run of characters, `?` one character). */
    name: text('a VM name or glob like web-*').optional(),
    /** Every label listed must be on the VM with this value. */
    labels: z.record(labelKey, z.string()).optional(),
  })
  .refine((m) => m.name !== undefined || Object.keys(m.labels ?? {}).length > 0, {
    params: { expected: 'name, labels or both' },
  });

const vmSchema = z.strictObject({
  match: matchSchema,
  tier: name,
  limits: name.optional(),
  /** Higher restarts first after a host failure. */
  haPriority: z.int().min(0).max(1000).default(0),
  affinityGroup: name.optional(),
  antiAffinityGroup: name.optional(),
  /**
   * One of hostGroups: the hosts the VM runs on (must), prefers (should), never runs on
   * (must-not) or avoids (should-not).
   */
  hostGroup: name.optional(),
  hostGroupRule: z.enum(['must', 'should', 'must-not', 'should-not']).optional(),
  /** The site the VM belongs in; one of sites[].name. */
  homeSite: name.optional(),
  /**
   * The site it may go to by its tier's cross-site mechanisms (moved live, restarted,
   * rebalanced): required for a tier that has any, and not the home site.
   */
  recoverySite: name.optional(),
  /** Overrides drs.mode for the VM (a tier without the drs mechanism is never moved either way). */
  drs: drsMode.optional(),
  /** Overrides the tier's data class (the guideline sets it per system). */
  dataClass: z.enum(DATA_CLASS_IDS).optional(),
});

export const configSchema = z.strictObject({
  timeZone: timeZone.default('Asia/Tokyo'),
  sites: z.array(siteSchema).min(1),
  hosts: z.array(hostSchema).min(1),
  libvirt: libvirtSchema.prefault({}),
  redis: redisSchema,
  api: apiSchema.prefault({}),
  audit: auditSchema.prefault({}),
  migration: migrationSchema.prefault({}),
  /** Days on which scheduled starts are skipped; see policies/holidays-jp.yaml. */
  holidaysFile: filePath.optional(),
  schedules: z.array(scheduleSchema).default([]),
  maintenanceWindows: z.array(maintenanceWindowSchema).default([]),
  drills: drillsSchema.prefault({}),
  placement: placementSchema.prefault({}),
  hostGroups: z.array(hostGroupSchema).default([]),
  /** Absent: /metrics is served on the API listener. */
  metrics: z.strictObject({ listen }).optional(),
  loops: loopsSchema.prefault({}),
  ha: haSchema.prefault({}),
  leader: leaderSchema.prefault({}),
  drs: drsSchema.prefault({}),
  policies: policiesSchema.prefault({}),
  vms: z.array(vmSchema).default([]),
});

export type SiteConfig = z.output<typeof siteSchema>;
export type FenceConfig = z.output<typeof fenceSchema>;
export type HostConfig = z.output<typeof hostSchema>;
export type LibvirtConfig = z.output<typeof libvirtSchema>;
export type ApiConfig = z.output<typeof apiSchema>;
export type AuditConfig = z.output<typeof auditSchema>;
export type MigrationConfig = z.output<typeof migrationSchema>;
export type CrossSiteMigrationRule = z.output<typeof crossSiteRuleSchema>;
export type DowntimeStep = z.output<typeof downtimeStepSchema>;
export type PlacementConfig = z.output<typeof placementSchema>;
export type ScheduleConfig = z.output<typeof scheduleSchema>;
export type MaintenanceWindowConfig = z.output<typeof maintenanceWindowSchema>;
export type LoopsConfig = z.output<typeof loopsSchema>;
export type RedisConfig = z.output<typeof redisSchema>;
export type LeaderConfig = z.output<typeof leaderSchema>;
export type DrsConfig = z.output<typeof drsSchema>;
export type DrsMode = (typeof DRS_MODES)[number];
export type HaTimingConfig = z.output<typeof haSchema>;
export type VmMatch = z.output<typeof matchSchema>;
export type VmAssignment = z.output<typeof vmSchema>;

/** The validated config; file paths are absolute and the policy files resolved. */
export type KeizokuConfig = Omit<z.output<typeof configSchema>, 'policies'> & {
  policies: { tiersFile: string; limitsFile: string };
};
