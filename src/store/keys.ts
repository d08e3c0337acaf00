/**
 * Every Redis key keizokud uses, in one place, with its type and its bound. All keys of one
 * cluster start with its prefix (`keizoku:default:`), so several clusters can share a Redis.
 * The files that read and write a key say what its values mean; this map says where it is and
 * how big it may grow.
 */
export function redisKeys(prefix: string) {
  return {
    /** BullMQ's own keys for every queue (`{prefix}bull:{queue}:*`: migrate, power, evacuate,
     *  drill); jobs kept 5,000 per state. */
    bullPrefix: `${prefix}bull`,

    // ---- the leader lease (store/lease.ts)
    /** string: the leader's replica id, PX the lease. */
    leader: `${prefix}leader`,
    /** string counter: the fencing token, incremented at each election. */
    leaderToken: `${prefix}leader:token`,

    // ---- VMs (store/store.ts)
    /** set: names of every VM with state here (one per VM ever seen). */
    vms: `${prefix}vms`,
    /** string JSON DesiredVm; one per VM. */
    vmDesired: (vm: string) => `${prefix}vm:${vm}:desired`,
    /** string JSON DomainRecord: the last known domain XML and its host; one per VM. */
    vmDomain: (vm: string) => `${prefix}vm:${vm}:domain`,
    /** string JSON Placement: where it was last seen running; one per VM. */
    vmPlacement: (vm: string) => `${prefix}vm:${vm}:placement`,
    /** stream: placement changes and moves (with jobId and decisionId when known), MAXLEN ~1,000. */
    vmHistory: (vm: string) => `${prefix}vm:${vm}:history`,
    /** hash job, queue, gen, at: the one job that holds the VM's lock (jobs/vm-lock.ts); one per VM. */
    vmJob: (vm: string) => `${prefix}vm:${vm}:job`,
    /** zset: decision ids by time, the newest 50 (store/decisions.ts). */
    vmDecisions: (vm: string) => `${prefix}vm:${vm}:decisions`,

    // ---- decisions (store/decisions.ts)
    /** string JSON DecisionRecord; as many as the index keeps. */
    decision: (id: string) => `${prefix}decision:${id}`,
    /** zset: every decision id by time, trimmed to the newest 10,000. */
    decisions: `${prefix}decisions`,

    // ---- jobs (jobs/)
    /** string "1", EX 1 day: cancel requested. */
    jobCancel: (id: string) => `${prefix}job:${id}:cancel`,
    /** string JSON {startedAt}, EX 7 days: libvirt was asked to move the VM (reconcile, not replay). */
    jobAttempt: (id: string) => `${prefix}job:${id}:attempt`,
    /** zset holder -> expiry ms: concurrency slots `host:{h}` and `cluster` (jobs/slots.ts). */
    slots: (name: string) => `${prefix}slots:${name}`,

    // ---- hosts and maintenance (store/maintenance.ts)
    /** set: hosts in maintenance (at most one per host). */
    maintenance: `${prefix}maintenance`,
    /** hash vm -> host: what evacuations moved off the host since it entered maintenance. */
    hostEvacuated: (host: string) => `${prefix}host:${host}:evacuated`,

    // ---- schedules and windows (loops/schedules.ts)
    /** list JSON ScheduleRun, newest first, 20 kept. */
    scheduleRuns: (name: string) => `${prefix}schedule:${name}:runs`,
    /** string epoch ms while the window is open. */
    windowClosesAt: (name: string) => `${prefix}window:${name}:closesAt`,

    // ---- drills (drills/runner.ts)
    /** hash id -> JSON DrillRecord with its report; the newest 1,000 kept. */
    drills: `${prefix}drills`,
    /** hash id -> JSON record without the report (for the list); same bound. */
    drillsSummary: `${prefix}drills:summary`,
    /** zset id by createdAt; trimmed to the newest 1,000. */
    drillsIndex: `${prefix}drills:index`,

    // ---- API (api/, store/)
    /** hash id -> JSON TokenRecord (sha-256 of the secret only). */
    tokens: `${prefix}tokens`,
    /** hash vm -> JSON PolicyOverride set through the API. */
    policyOverrides: `${prefix}policy-overrides`,
    /** stream: the audit log, MAXLEN ~100,000 (the daily files keep everything). */
    audit: `${prefix}audit`,

    // ---- probes (store/probe-book.ts)
    /** hash name -> JSON registration of each keizoku-probe agent; dropped after 10 min unrenewed. */
    probes: `${prefix}probes`,
    /** zset name by last registration (ms): the live ones are read, the stale ones pruned. */
    probesSeen: `${prefix}probes:seen`,
    /** zset JSON outage by startMs, per agent: at most 100,000, 400 days, expires unreported. */
    probeOutages: (probe: string) => `${prefix}outages:${probe}`,
    /** zset agent name by its last report (ms); pruned after 400 days. */
    outageReporters: `${prefix}outages:probes`,
    /** stream: the single outage stream of earlier versions; no longer read or written. */
    outages: `${prefix}outages`,
  } as const;
}

export type RedisKeys = ReturnType<typeof redisKeys>;
