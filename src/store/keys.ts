/**
 * Every Redis key keizokud uses, in one place, with its type and its bound. All keys of one
 * cluster start with its prefix (`keizoku:default:`), so several clusters can share a Redis.
 * Code takes its key names from here and nowhere else (test/unit/store/keys.test.ts fails on a
 * key built elsewhere). The files that read and write a key say what its values mean; this map
 * says where it is, what type it is and how big it may grow.
 */

/** The prefix of the one cluster keizokud runs today. */
export const CLUSTER_PREFIX = 'keizoku:default:';

export function redisKeys(prefix: string) {
  return {
    /** BullMQ's own keys for every queue (`{prefix}bull:{queue}:*`: migrate, power and evacuate
     *  keep 5,000 completed and 5,000 failed jobs each (jobs/queue.ts), drill 1,000 each
     *  (drills/runner.ts)). vm-lock.ts reads a holder's job hash `{bullPrefix}:{queue}:{id}`. */
    bullPrefix: `${prefix}bull`,

    // ---- the leader lease (store/lease.ts)
    /** string `{replicaId}:{token}`, PX the lease (renewed by its holder); one key. */
    leader: `${prefix}leader`,
    /** string counter: the fencing token, incremented at each election; one key. */
    leaderToken: `${prefix}leader:token`,

    // ---- VMs (store/store.ts)
    /** set: names of every VM with state here (one per VM ever seen; never pruned). */
    vms: `${prefix}vms`,
    /** string JSON DesiredVm, written fenced; one per VM. */
    vmDesired: (vm: string) => `${prefix}vm:${vm}:desired`,
    /** string JSON DomainRecord: the last known domain XML and its host, written fenced; one per VM. */
    vmDomain: (vm: string) => `${prefix}vm:${vm}:domain`,
    /** string JSON Placement: where it was last seen running, written fenced; one per VM. */
    vmPlacement: (vm: string) => `${prefix}vm:${vm}:placement`,
    /** stream: placement changes and moves (with jobId and decisionId when known), appended
     *  fenced, MAXLEN ~1,000. */
    vmHistory: (vm: string) => `${prefix}vm:${vm}:history`,
    /** hash job, queue, gen, at: the one job that holds the VM's lock (jobs/vm-lock.ts); one per
     *  VM, deleted by its owner's release (an older version's string holder is still read). */
    vmJob: (vm: string) => `${prefix}vm:${vm}:job`,
    /** zset: decision ids by time, per VM, the newest 50 (store/decisions.ts `perVm`). */
    vmDecisions: (vm: string) => `${prefix}vm:${vm}:decisions`,
    /** string JSON CpuRaise (store/cpu-raises.ts): a CPU cap DRS raised within the VM's burst
     *  allowance, PX until the raise lapses (renewed while the burst lasts); one per bursting VM. */
    vmCpuRaise: (vm: string) => `${prefix}vm:${vm}:cpu-raise`,

    // ---- decisions (store/decisions.ts)
    /** string JSON DecisionRecord; deleted when its id is trimmed from `decisions`. */
    decision: (id: string) => `${prefix}decision:${id}`,
    /** zset: every decision id by time, trimmed to the newest 10,000 (`max`). */
    decisions: `${prefix}decisions`,

    // ---- jobs (jobs/)
    /** string "1", EX 1 day: cancel requested (jobs/queue.ts); deleted by the run's release. */
    jobCancel: (id: string) => `${prefix}job:${id}:cancel`,
    /** string JSON {startedAt}, EX 7 days, set only while the run owns the lock: libvirt was
     *  asked to move the VM (a re-run reconciles, not replays); deleted by the run's release. */
    jobAttempt: (id: string) => `${prefix}job:${id}:attempt`,
    /** zset holder (`{job}:{gen}`) -> expiry ms: the concurrency slots `host:{h}` and `cluster`
     *  (jobs/slots.ts); expired holders dropped at each take, the key PEXPIRE 1 h; one per host
     *  and one for the cluster. */
    slots: (name: string) => `${prefix}slots:${name}`,

    // ---- hosts and maintenance (store/maintenance.ts, written by jobs/evacuate.ts)
    /** hash host -> JSON FenceRecord: the last confirmed fence of each host (store/fences.ts). */
    fences: `${prefix}fences`,
    /** string JSON HaRecord (store/ha.ts): the failover state machine (core/ha/machine.ts) and its jobs, written fenced by
     *  the leader after every step (store/ha.ts); one key. */
    haState: `${prefix}ha:state`,
    /** string JSON HaPause, PX until it ends (expires by itself); one key. */
    haPause: `${prefix}ha:pause`,
    /** hash id -> JSON FailoverRecord (core/ha/timeline.ts, store/failovers.ts): one per host
     *  failure, written fenced by the leader's ha loop; the newest 500 kept (`haFailoversIndex`). */
    haFailovers: `${prefix}ha:failovers`,
    /** zset failover id by detectedAt; trimmed to the newest 500, the hash with it. */
    haFailoversIndex: `${prefix}ha:failovers:index`,
    /** set: VMs an operator cleared from `error`, taken by the leader's next ha pass (store/ha.ts). */
    haClear: `${prefix}ha:clear`,
    /** set: the hosts in maintenance (one member per host). */
    maintenance: `${prefix}maintenance`,
    /** hash vm -> host: what evacuations moved off the host since it entered maintenance (at
     *  most one field per VM); deleted when it leaves. An older version's JSON list string is
     *  turned into the hash when read. */
    hostEvacuated: (host: string) => `${prefix}host:${host}:evacuated`,

    // ---- schedules and windows (loops/schedules.ts)
    /** list JSON ScheduleRun, newest first, 20 kept (LTRIM); one per schedule or window. */
    scheduleRuns: (name: string) => `${prefix}schedule:${name}:runs`,
    /** string epoch ms while the window is open; deleted by whoever closes it. */
    windowClosesAt: (name: string) => `${prefix}window:${name}:closesAt`,

    // ---- drills (drills/runner.ts)
    /** hash id -> JSON DrillRecord with its report; the newest 1,000 kept (`drillsIndex`). */
    drills: `${prefix}drills`,
    /** hash id -> JSON record without the report (for the list); same bound. */
    drillsSummary: `${prefix}drills:summary`,
    /** zset id by createdAt; trimmed to the newest 1,000, the two hashes with it. */
    drillsIndex: `${prefix}drills:index`,

    // ---- API (api/auth/tokens.ts, store/policy-book.ts, store/audit.ts)
    /** hash id -> JSON TokenRecord (sha-256 of the secret only); one per token created, a
     *  revoked one kept with its revokedAt. */
    tokens: `${prefix}tokens`,
    /** hash vm -> JSON PolicyOverride set through the API; one per overridden VM, removed when cleared. */
    policyOverrides: `${prefix}policy-overrides`,
    /** stream: the audit log, MAXLEN ~`audit.streamMaxEntries` (default 100,000; the daily files keep everything). */
    audit: `${prefix}audit`,

    // ---- probes (store/probe-book.ts)
    /** hash name -> JSON registration of each keizoku-probe agent; dropped after 10 min unrenewed. */
    probes: `${prefix}probes`,
    /** zset name by last registration (ms): the live ones are read, the stale ones pruned. */
    probesSeen: `${prefix}probes:seen`,
    /** zset JSON outage by startMs, per agent: at most 100,000, 400 days, expires unreported.
     *  (Under its own `probe:` segment: `outages:{probe}` met `outages:probes` for an agent named `probes`.) */
    probeOutages: (probe: string) => `${prefix}probe:${probe}:outages`,
    /** zset agent name by its last report (ms); pruned after 400 days. */
    outageReporters: `${prefix}outages:probes`,
    /** stream: the single outage stream of earlier versions; no longer read or written. */
    outages: `${prefix}outages`,
  } as const;
}

export type RedisKeys = ReturnType<typeof redisKeys>;
