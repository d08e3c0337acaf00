import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** keizokud's metrics: one registry, names in Prometheus conventions (base units, _total). */
export function createMetrics() {
  const registry = new Registry();
  const m = {
    registry,
    hostUp: new Gauge({
      name: 'keizoku_host_up',
      help: '1 when the host answers libvirt, else 0',
      labelNames: ['host', 'site'],
      registers: [registry],
    }),
    hostHealth: new Gauge({
      name: 'keizoku_host_health',
      help: "1 for the host's health: up, suspect, unreachable, partitioned, down, fenced, unknown",
      labelNames: ['host', 'site', 'state'],
      registers: [registry],
    }),
    vmConflicts: new Gauge({
      name: 'keizoku_vm_conflicts',
      help: 'VMs active on more than one host at once (split-brain, or a move at its switch-over)',
      registers: [registry],
    }),
    hostVms: new Gauge({
      name: 'keizoku_host_vms',
      help: 'Domains on the host by state',
      labelNames: ['host', 'state'],
      registers: [registry],
    }),
    hostCpuUtilisation: new Gauge({
      name: 'keizoku_host_cpu_utilisation_ratio',
      help: 'Busy fraction of all host CPUs between the last two observations',
      labelNames: ['host'],
      registers: [registry],
    }),
    hostMemoryUsed: new Gauge({
      name: 'keizoku_host_memory_used_bytes',
      help: 'Host memory in use (total - free - buffers - cached)',
      labelNames: ['host'],
      registers: [registry],
    }),
    hostMemoryTotal: new Gauge({
      name: 'keizoku_host_memory_bytes',
      help: 'Host memory offered to VMs',
      labelNames: ['host'],
      registers: [registry],
    }),
    vmCpuUsage: new Gauge({
      name: 'keizoku_vm_cpu_usage_vcpus',
      help: 'CPU used by the VM, in vCPUs (1 = one vCPU busy)',
      labelNames: ['vm', 'host'],
      registers: [registry],
    }),
    vmMemory: new Gauge({
      name: 'keizoku_vm_memory_bytes',
      help: 'Memory assigned to the VM',
      labelNames: ['vm', 'host'],
      registers: [registry],
    }),
    vmLimitsCompliance: new Gauge({
      name: 'keizoku_vm_limits_compliance',
      help: "1 for the VM's limits status: compliant, fixed (drift repaired this pass), failed, unmanaged",
      labelNames: ['vm', 'host', 'status'],
      registers: [registry],
    }),
    probeRegistrations: new Counter({
      name: 'keizoku_probe_registrations_total',
      help: 'Registrations taken from probe agents (not audited: one every 10 s per agent)',
      labelNames: ['probe'],
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'keizoku_leader',
      help: '1 while this replica holds the leader lease',
      registers: [registry],
    }),
    leaderToken: new Gauge({
      name: 'keizoku_leader_fencing_token',
      help: "Fencing token of this replica's current lease (0 when not leader)",
      registers: [registry],
    }),
    loopRuns: new Counter({
      name: 'keizoku_loop_runs_total',
      help: 'Loop passes by result',
      labelNames: ['loop', 'result'],
      registers: [registry],
    }),
    loopDuration: new Histogram({
      name: 'keizoku_loop_duration_seconds',
      help: 'Duration of loop passes',
      labelNames: ['loop'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    libvirtCallDuration: new Histogram({
      name: 'keizoku_libvirt_call_duration_seconds',
      help: 'Duration of libvirt calls made by keizokud',
      labelNames: ['host', 'call'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: [registry],
    }),
    libvirtErrors: new Counter({
      name: 'keizoku_libvirt_errors_total',
      help: 'Failed libvirt calls and connections',
      labelNames: ['host', 'kind'],
      registers: [registry],
    }),
    migrations: new Counter({
      name: 'keizoku_migrations_total',
      help: 'Finished migration jobs by outcome (succeeded, refused, aborted, cancelled, failed) and why they ran',
      labelNames: ['outcome', 'reason'],
      registers: [registry],
    }),
    migrationDuration: new Histogram({
      name: 'keizoku_migration_duration_seconds',
      help: "libvirt's migration call of a successful job, start to end",
      buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
      registers: [registry],
    }),
    migrationDowntime: new Histogram({
      name: 'keizoku_migration_downtime_seconds',
      help: "The guest's pause at the switch-over, as libvirt reported it",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2],
      registers: [registry],
    }),
    migrationOutage: new Histogram({
      name: 'keizoku_migration_outage_seconds',
      help: 'The longest outage (通信断) a probe agent saw during a migration',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 30, 60],
      registers: [registry],
    }),
    drsImbalance: new Gauge({
      name: 'keizoku_drs_imbalance_ratio',
      help: "Standard deviation of the hosts' CPU demand / CPUs at DRS's last plan (0: even)",
      registers: [registry],
    }),
    drsContention: new Gauge({
      name: 'keizoku_drs_contention_vcpus',
      help: "CPU demand above the hosts' CPUs at DRS's last plan, summed over hosts (vCPUs)",
      registers: [registry],
    }),
    drsRecommendations: new Gauge({
      name: 'keizoku_drs_recommendations',
      help: 'DRS moves waiting for an operator (VMs in manual mode)',
      registers: [registry],
    }),
    drsMoves: new Counter({
      name: 'keizoku_drs_moves_total',
      help: 'DRS moves by outcome of the submit (submitted, conflict, refused) and mode (automatic, manual: applied by an operator); the jobs end in keizoku_migrations_total{reason="drs"}',
      labelNames: ['outcome', 'mode'],
      registers: [registry],
    }),
    drsCapRaises: new Counter({
      name: 'keizoku_drs_cap_raises_total',
      help: 'CPU caps DRS raised within a burst allowance instead of a move, by outcome of the submit (submitted, conflict, refused) and kind (raise, renewal); the jobs are raise-cpu-cap power jobs',
      labelNames: ['outcome', 'kind'],
      registers: [registry],
    }),
    haHostPhase: new Gauge({
      name: 'keizoku_ha_host_phase',
      help: "Each host's failover phase (ok, suspect, declared-down, fencing, fenced, recovering, done): 1 for the current one",
      labelNames: ['host', 'phase'],
      registers: [registry],
    }),
    haEvents: new Counter({
      name: 'keizoku_ha_events_total',
      help: 'Failover events by kind (health, phase, fence-failed, alert, restart, refused, vm)',
      labelNames: ['kind'],
      registers: [registry],
    }),
    haPaused: new Gauge({
      name: 'keizoku_ha_paused',
      help: '1 while automatic failover is paused (keizoku ha pause)',
      registers: [registry],
    }),
    fences: new Counter({
      name: 'keizoku_fences_total',
      help: 'Fences run by failover, by outcome (confirmed-off, failed)',
      labelNames: ['host', 'outcome'],
      registers: [registry],
    }),
    failoverRto: new Histogram({
      name: 'keizoku_failover_rto_seconds',
      help: "Failover RTO per VM by tier: the host's failure (last seen up) to the probe's first reply from the VM restarted elsewhere",
      labelNames: ['tier'],
      buckets: [1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300],
      registers: [registry],
    }),
    migrationsActive: new Gauge({
      name: 'keizoku_migrations_active',
      help: 'Migration jobs being run by this replica',
      registers: [registry],
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
