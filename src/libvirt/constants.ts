// Values of libvirt's public C API (include/libvirt/libvirt-domain.h, libvirt-host.h) that the
// remote protocol carries as plain ints and strings: flags, typed-parameter field names, event ids.
// The .x files do not define these; they are stable ABI and never change meaning.

export const DomainState = {
  NOSTATE: 0,
  RUNNING: 1,
  BLOCKED: 2,
  PAUSED: 3,
  SHUTDOWN: 4,
  SHUTOFF: 5,
  CRASHED: 6,
  PMSUSPENDED: 7,
} as const;
export const domainStateNames: Record<number, string> = {
  0: 'nostate',
  1: 'running',
  2: 'blocked',
  3: 'paused',
  4: 'shutdown',
  5: 'shutoff',
  6: 'crashed',
  7: 'pmsuspended',
};

/** virDomainPausedReason (the `state.reason` of a paused domain) */
export const PausedReason = { USER: 1, MIGRATION: 2 } as const;

/** virDomainShutoffReason: CRASHED when QEMU died without the guest shutting down, or the guest crashed. */
export const ShutoffReason = { SHUTDOWN: 1, DESTROYED: 2, CRASHED: 3 } as const;

/**
 * The `detail` of a lifecycle event that is a live migration's step (virDomainEventStartedDetailType,
 * virDomainEventSuspendedDetailType): the incoming domain starts on the destination; the source
 * pauses its guest for the switch-over.
 */
export const MigrationEventDetail = { STARTED_MIGRATED: 1, SUSPENDED_MIGRATED: 1 } as const;

/** virDomainXMLFlags */
export const DomainXmlFlags = {
  SECURE: 1 << 0,
  /** The persistent definition, as it boots next (not the live one). */
  INACTIVE: 1 << 1,
  UPDATE_CPU: 1 << 2,
  MIGRATABLE: 1 << 3,
} as const;

/** virDomainModificationImpact */
export const Affect = { CURRENT: 0, LIVE: 1, CONFIG: 2 } as const;

/** virConnectListAllDomainsFlags */
export const ListDomains = {
  ACTIVE: 1 << 0,
  INACTIVE: 1 << 1,
  PERSISTENT: 1 << 2,
  TRANSIENT: 1 << 3,
} as const;

/** virDomainStatsTypes */
export const DomainStats = {
  STATE: 1 << 0,
  CPU_TOTAL: 1 << 1,
  BALLOON: 1 << 2,
  VCPU: 1 << 3,
  INTERFACE: 1 << 4,
  BLOCK: 1 << 5,
  PERF: 1 << 6,
  IOTHREAD: 1 << 7,
  MEMORY: 1 << 8,
  DIRTYRATE: 1 << 9,
} as const;

/** virConnectGetAllDomainStatsFlags (the ones keizoku uses) */
export const DomainStatsFlags = {
  /** Only what needs no domain job: a busy domain (e.g. mid-migration) does not block the call. */
  NOWAIT: 1 << 29,
} as const;

/** virDomainMigrateFlags */
export const Migrate = {
  LIVE: 1 << 0,
  PEER2PEER: 1 << 1,
  TUNNELLED: 1 << 2,
  PERSIST_DEST: 1 << 3,
  UNDEFINE_SOURCE: 1 << 4,
  PAUSED: 1 << 5,
  NON_SHARED_DISK: 1 << 6,
  NON_SHARED_INC: 1 << 7,
  CHANGE_PROTECTION: 1 << 8,
  UNSAFE: 1 << 9,
  OFFLINE: 1 << 10,
  COMPRESSED: 1 << 11,
  ABORT_ON_ERROR: 1 << 12,
  AUTO_CONVERGE: 1 << 13,
  POSTCOPY: 1 << 15,
  TLS: 1 << 16,
  PARALLEL: 1 << 17,
} as const;

/** Typed-parameter names of virDomainMigrate*Params. */
export const MigrateParam = {
  URI: 'migrate_uri',
  DEST_NAME: 'destination_name',
  DEST_XML: 'destination_xml',
  PERSIST_XML: 'persistent_xml',
  BANDWIDTH: 'bandwidth',
  BANDWIDTH_POSTCOPY: 'bandwidth.postcopy',
  LISTEN_ADDRESS: 'listen_address',
  MIGRATE_DISKS: 'migrate_disks',
  COMPRESSION: 'compression',
  AUTO_CONVERGE_INITIAL: 'auto_converge.initial',
  AUTO_CONVERGE_INCREMENT: 'auto_converge.increment',
  PARALLEL_CONNECTIONS: 'parallel.connections',
} as const;

/** virDomainJobType */
export const JobType = { NONE: 0, BOUNDED: 1, UNBOUNDED: 2, COMPLETED: 3, FAILED: 4, CANCELLED: 5 } as const;
export const jobTypeNames: Record<number, string> = {
  0: 'none',
  1: 'bounded',
  2: 'unbounded',
  3: 'completed',
  4: 'failed',
  5: 'cancelled',
};
export const JOB_STATS_COMPLETED = 1 << 0;

/** virDomainEventID */
export const DomainEventId = {
  LIFECYCLE: 0,
  REBOOT: 1,
  TUNABLE: 17,
  MIGRATION_ITERATION: 20,
  JOB_COMPLETED: 21,
} as const;

/** virDomainEventType (lifecycle event kinds) */
export const lifecycleEventNames: Record<number, string> = {
  0: 'defined',
  1: 'undefined',
  2: 'started',
  3: 'suspended',
  4: 'resumed',
  5: 'stopped',
  6: 'shutdown',
  7: 'pmsuspended',
  8: 'crashed',
};

export const NODE_CPU_STATS_ALL_CPUS = -1;
export const NODE_MEMORY_STATS_ALL_CELLS = -1;

/** virDomainUndefineFlagsValues */
export const Undefine = { MANAGED_SAVE: 1 << 0, SNAPSHOTS_METADATA: 1 << 1, NVRAM: 1 << 2 } as const;

/** Flag of get*Parameters calls: the caller accepts VIR_TYPED_PARAM_STRING values. */
export const TYPED_PARAM_STRING_OKAY = 1 << 2;

/** virDomainBlockCopyFlags */
export const BlockCopy = {
  SHALLOW: 1 << 0,
  /** The destination exists already (an NBD export cannot be created by libvirt). */
  REUSE_EXT: 1 << 1,
  /** The copy need not survive the domain's persistent definition (required for persistent domains). */
  TRANSIENT_JOB: 1 << 2,
  /** A guest write completes only once the destination has it too (QEMU's write-blocking mirror). */
  SYNCHRONOUS_WRITES: 1 << 3,
} as const;

/** Typed-parameter names of virDomainBlockCopy. */
export const BlockCopyParam = {
  BANDWIDTH: 'bandwidth',
  GRANULARITY: 'granularity',
  BUF_SIZE: 'buf-size',
} as const;

/** virDomainBlockJobAbortFlags */
export const BlockJobAbort = { ASYNC: 1 << 0, PIVOT: 1 << 1 } as const;

/** virDomainBlockJobType */
export const blockJobTypeNames: Record<number, string> = {
  0: 'unknown',
  1: 'pull',
  2: 'copy',
  3: 'commit',
  4: 'active-commit',
  5: 'backup',
};
