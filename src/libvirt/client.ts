import { EventEmitter } from 'node:events';
import {
  Affect,
  BlockCopy,
  BlockCopyParam,
  BlockJobAbort,
  blockJobTypeNames,
  DomainEventId,
  DomainStats,
  domainStateNames,
  JOB_STATS_COMPLETED,
  jobTypeNames,
  ListDomains,
  lifecycleEventNames,
  Migrate,
  MigrateParam,
  NODE_CPU_STATS_ALL_CPUS,
  NODE_MEMORY_STATS_ALL_CELLS,
  TYPED_PARAM_STRING_OKAY,
} from './constants.ts';
import { LibvirtError } from './errors.ts';
import type { XdrCodec } from './protocol/generated/common.ts';
import {
  remoteProcedures as P,
  type RemoteNonnullDomain,
  type RemoteTypedParam,
  remoteProceduresByNumber,
  remoteProgram,
} from './protocol/generated/remote.ts';
import { fromTypedParams, type ParamKind, type TypedParams, toTypedParams } from './typed-params.ts';
import { XdrReader, type XdrWriter } from './xdr.ts';

/** What the client needs of a connection: typed calls and event messages. */
export interface RpcChannel {
  call<R>(
    program: number,
    version: number,
    procedure: number,
    encodeArgs: ((w: XdrWriter) => void) | null,
    decodeRet: ((r: XdrReader) => R) | null,
    opts?: { timeoutMs?: number },
  ): Promise<R>;
  on(event: 'event', listener: (program: number, procedure: number, body: Buffer) => void): unknown;
  on(event: 'close', listener: (err: Error) => void): unknown;
  close(): Promise<void>;
}

/** A domain reference as libvirt sends it: name, 16-byte UUID, id (-1 when not running). */
export type DomainRef = RemoteNonnullDomain;

export interface NodeInfo {
  model: string;
  memoryKiB: number;
  cpus: number;
  mhz: number;
  nodes: number;
  sockets: number;
  cores: number;
  threads: number;
}

export interface DomainSummary {
  name: string;
  uuid: string;
  id: number;
  state: string;
  persistent: boolean;
}

export interface DomainStatsRecord {
  name: string;
  uuid: string;
  stats: TypedParams;
}

export interface JobStats {
  type: string;
  stats: TypedParams;
}

export interface MigrationOptions {
  /** Destination libvirt URI as the source host reaches it (peer-to-peer). */
  destinationUri: string;
  /** Extra migration URI (e.g. tcp://addr) when the default address is wrong. */
  migrateUri?: string;
  bandwidthMiBs?: number;
  persistent?: boolean;
  undefineSource?: boolean;
  copyStorage?: 'all' | 'inc';
  /** With copyStorage: only these disks (target devs) are copied; default every writable disk. */
  migrateDisks?: string[];
  autoConverge?: boolean;
  postCopy?: boolean;
  parallelConnections?: number;
  compression?: ('xbzrle' | 'mt' | 'zlib' | 'zstd')[];
  /** Deadline of the whole perform call; the migration itself is aborted separately by its owner. */
  timeoutMs?: number;
}

export interface BlockCopyOptions {
  /** Guest writes complete only once the destination has them (no acknowledged write lost). */
  synchronousWrites?: boolean;
  /** The destination exists (always so for a network destination such as NBD). */
  reuseExternal?: boolean;
  /** Required for a persistent domain: the copy is not part of its definition. */
  transientJob?: boolean;
  /** Cap of the initial copy, bytes/s (absent: unlimited). */
  bandwidthBytes?: number;
}

/**
 * A block job of one disk as libvirt reports it. `caughtUp`: cur == end at this read. libvirt
 * keeps cur below end until the job is ready, but a ready mirror of a disk being written can
 * read cur < end for an instant, so whether a copy mirrors is the live XML's `ready='yes'`
 * (mirrorReady in src/replication/mirror.ts), not this.
 */
export interface BlockJobInfo {
  type: string;
  bandwidthMiBs: number;
  cur: number;
  end: number;
  caughtUp: boolean;
}

export type DomainEvent =
  | { kind: 'lifecycle'; domain: string; uuid: string; event: string; detail: number }
  | { kind: 'job-completed'; domain: string; uuid: string; stats: TypedParams }
  | { kind: 'migration-iteration'; domain: string; uuid: string; iteration: number }
  | { kind: 'reboot'; domain: string; uuid: string };

const SCHED_KINDS: Record<string, ParamKind> = {
  cpu_shares: 'ullong',
  vcpu_period: 'ullong',
  vcpu_quota: 'llong',
  global_period: 'ullong',
  global_quota: 'llong',
  emulator_period: 'ullong',
  emulator_quota: 'llong',
};
const MEMORY_KINDS: Record<string, ParamKind> = {
  hard_limit: 'ullong',
  soft_limit: 'ullong',
  swap_hard_limit: 'ullong',
  min_guarantee: 'ullong',
};
const BLKIO_KINDS: Record<string, ParamKind> = {
  weight: 'uint',
  device_weight: 'string',
  device_read_iops_sec: 'string',
  device_write_iops_sec: 'string',
  device_read_bytes_sec: 'string',
  device_write_bytes_sec: 'string',
};
const IFACE_KINDS: Record<string, ParamKind> = {
  'inbound.average': 'uint',
  'inbound.peak': 'uint',
  'inbound.burst': 'uint',
  'inbound.floor': 'uint',
  'outbound.average': 'uint',
  'outbound.peak': 'uint',
  'outbound.burst': 'uint',
};

export const uuidString = (b: Buffer) => {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
const uuidBytes = (s: string) => Buffer.from(s.replace(/-/g, ''), 'hex');

/**
 * The handle of a domain already listed (a stats record, a list): what a lookup by UUID would
 * answer. libvirtd finds the domain of a call by the handle's UUID, so no lookup call is needed.
 */
export const domainRef = (d: { name: string; uuid: string; id?: number }): DomainRef => ({
  name: d.name,
  uuid: uuidBytes(d.uuid),
  id: d.id ?? -1,
});

/** Procedure definitions with their generated codecs, typed by the table entry. */
type Proc<A, R> = { number: number; args: XdrCodec<A> | null; ret: XdrCodec<R> | null };

/**
 * Typed operations over one libvirt connection. Every call has a deadline (the channel's default
 * unless given); events arrive as 'domain-event' after `subscribeDomainEvents()`.
 */
export class LibvirtClient extends EventEmitter {
  private readonly callbacks = new Map<number, number>();

  constructor(readonly channel: RpcChannel) {
    super();
    channel.on('event', (program, procedure, body) => this.onEvent(program, procedure, body));
  }

  /** One remote procedure call with the generated codecs of that procedure. */
  rpc<A, R>(proc: Proc<A, R>, args?: A, opts?: { timeoutMs?: number }): Promise<R> {
    const { args: a, ret } = proc;
    return this.channel.call(
      remoteProgram.program,
      remoteProgram.version,
      proc.number,
      a ? (w) => a.encode(w, args as A) : null,
      ret ? (r) => ret.decode(r) : null,
      opts,
    ) as Promise<R>;
  }

  /** Tells libvirtd the connection ends (bounded wait), then closes it. Idempotent. */
  async close(): Promise<void> {
    await this.rpc(P.REMOTE_PROC_CONNECT_CLOSE, undefined, { timeoutMs: 2_000 }).catch(() => undefined);
    await this.channel.close();
  }

  // ---- host ----

  async hostname(): Promise<string> {
    return (await this.rpc(P.REMOTE_PROC_CONNECT_GET_HOSTNAME)).hostname;
  }

  async capabilities(): Promise<string> {
    return (await this.rpc(P.REMOTE_PROC_CONNECT_GET_CAPABILITIES)).capabilities;
  }

  async nodeInfo(): Promise<NodeInfo> {
    const r = await this.rpc(P.REMOTE_PROC_NODE_GET_INFO);
    const model = Buffer.from(r.model.filter((c) => c !== 0)).toString('latin1');
    return {
      model,
      memoryKiB: Number(r.memory),
      cpus: r.cpus,
      mhz: r.mhz,
      nodes: r.nodes,
      sockets: r.sockets,
      cores: r.cores,
      threads: r.threads,
    };
  }

  /** Host CPU times in ns summed over all CPUs: user, kernel, idle, iowait. */
  async nodeCpuStats(): Promise<Record<string, number>> {
    const base = { cpuNum: NODE_CPU_STATS_ALL_CPUS, flags: 0 };
    const { nparams } = await this.rpc(P.REMOTE_PROC_NODE_GET_CPU_STATS, { ...base, nparams: 0 });
    const r = await this.rpc(P.REMOTE_PROC_NODE_GET_CPU_STATS, { ...base, nparams });
    return Object.fromEntries(r.params.map((p) => [p.field, Number(p.value)]));
  }

  /** Host memory in KiB: total, free, buffers, cached. */
  async nodeMemoryStats(): Promise<Record<string, number>> {
    const base = { cellNum: NODE_MEMORY_STATS_ALL_CELLS, flags: 0 };
    const { nparams } = await this.rpc(P.REMOTE_PROC_NODE_GET_MEMORY_STATS, { ...base, nparams: 0 });
    const r = await this.rpc(P.REMOTE_PROC_NODE_GET_MEMORY_STATS, { ...base, nparams });
    return Object.fromEntries(r.params.map((p) => [p.field, Number(p.value)]));
  }

  // ---- domains ----

  async listAllDomains(flags = 0): Promise<DomainRef[]> {
    return (await this.rpc(P.REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags })).domains;
  }

  /** Every domain with its state, from two calls whatever the number of domains. */
  async listDomainsWithState(): Promise<DomainSummary[]> {
    const [persistent, records] = await Promise.all([
      this.listAllDomains(ListDomains.PERSISTENT),
      this.getAllDomainStats(DomainStats.STATE),
    ]);
    const persistentUuids = new Set(persistent.map((d) => uuidString(d.uuid)));
    return records.map((r) => ({
      name: r.name,
      uuid: r.uuid,
      id: r.id,
      state: domainStateNames[Number(r.stats['state.state'])] ?? 'unknown',
      persistent: persistentUuids.has(r.uuid),
    }));
  }

  async lookupByName(name: string): Promise<DomainRef> {
    return (await this.rpc(P.REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME, { name })).dom;
  }

  async lookupByUuid(uuid: string): Promise<DomainRef> {
    return (await this.rpc(P.REMOTE_PROC_DOMAIN_LOOKUP_BY_UUID, { uuid: uuidBytes(uuid) })).dom;
  }

  async getState(dom: DomainRef): Promise<{ state: string; reason: number }> {
    const r = await this.rpc(P.REMOTE_PROC_DOMAIN_GET_STATE, { dom, flags: 0 });
    return { state: domainStateNames[r.state] ?? 'unknown', reason: r.reason };
  }

  async getXml(dom: DomainRef, flags = 0): Promise<string> {
    return (await this.rpc(P.REMOTE_PROC_DOMAIN_GET_XML_DESC, { dom, flags })).xml;
  }

  /**
   * The application element of the domain's <metadata> in namespace `uri` (libvirt's
   * VIR_DOMAIN_METADATA_ELEMENT), or null when the domain has none.
   */
  async getMetadataElement(dom: DomainRef, uri: string): Promise<string | null> {
    try {
      return (await this.rpc(P.REMOTE_PROC_DOMAIN_GET_METADATA, { dom, type: 2, uri, flags: 0 })).metadata;
    } catch (e) {
      if (e instanceof LibvirtError && e.codeName === 'VIR_ERR_NO_DOMAIN_METADATA') return null;
      throw e;
    }
  }

  /**
   * virConnectCompareHypervisorCPU: can this host's hypervisor give a guest of this virt type,
   * arch and machine the CPU described? 0 incompatible, 1 identical, 2 the host is a superset.
   */
  async compareHypervisorCpu(
    cpuXml: string,
    o: { virttype?: string | null; arch?: string | null; machine?: string | null } = {},
  ): Promise<number> {
    return (
      await this.rpc(P.REMOTE_PROC_CONNECT_COMPARE_HYPERVISOR_CPU, {
        emulator: null,
        arch: o.arch ?? null,
        machine: o.machine ?? null,
        virttype: o.virttype ?? null,
        xmlCPU: cpuXml,
        flags: 0,
      })
    ).result;
  }

  /** Whether a storage volume with this path exists on the host (in any pool). */
  async hasVolumePath(path: string): Promise<boolean> {
    try {
      await this.rpc(P.REMOTE_PROC_STORAGE_VOL_LOOKUP_BY_PATH, { path });
      return true;
    } catch (e) {
      if (e instanceof LibvirtError && e.codeName === 'VIR_ERR_NO_STORAGE_VOL') return false;
      throw e;
    }
  }

  /** The type of the storage pool holding the volume at `path` (dir, netfs, rbd…), or null when no pool has it. */
  async storagePoolTypeOf(path: string): Promise<string | null> {
    try {
      const { vol } = await this.rpc(P.REMOTE_PROC_STORAGE_VOL_LOOKUP_BY_PATH, { path });
      const { pool } = await this.rpc(P.REMOTE_PROC_STORAGE_POOL_LOOKUP_BY_VOLUME, { vol });
      const { xml } = await this.rpc(P.REMOTE_PROC_STORAGE_POOL_GET_XML_DESC, { pool, flags: 0 });
      return /<pool\b[^>]*\btype=['"]([^'"]+)['"]/.exec(xml)?.[1] ?? null;
    } catch (e) {
      if (e instanceof LibvirtError && e.codeName === 'VIR_ERR_NO_STORAGE_VOL') return null;
      throw e;
    }
  }

  /** The type of the storage pool of this name (dir, logical, rbd…), or null when there is none. */
  async storagePoolTypeByName(name: string): Promise<string | null> {
    try {
      const { pool } = await this.rpc(P.REMOTE_PROC_STORAGE_POOL_LOOKUP_BY_NAME, { name });
      const { xml } = await this.rpc(P.REMOTE_PROC_STORAGE_POOL_GET_XML_DESC, { pool, flags: 0 });
      return /<pool\b[^>]*\btype=['"]([^'"]+)['"]/.exec(xml)?.[1] ?? null;
    } catch (e) {
      if (e instanceof LibvirtError && e.codeName === 'VIR_ERR_NO_STORAGE_POOL') return null;
      throw e;
    }
  }

  /** Whether the pool of this name exists and holds a volume of this name. */
  async hasVolume(poolName: string, volume: string): Promise<boolean> {
    try {
      const { pool } = await this.rpc(P.REMOTE_PROC_STORAGE_POOL_LOOKUP_BY_NAME, { name: poolName });
      await this.rpc(P.REMOTE_PROC_STORAGE_VOL_LOOKUP_BY_NAME, { pool, name: volume });
      return true;
    } catch (e) {
      if (
        e instanceof LibvirtError &&
        (e.codeName === 'VIR_ERR_NO_STORAGE_POOL' || e.codeName === 'VIR_ERR_NO_STORAGE_VOL')
      )
        return false;
      throw e;
    }
  }

  /** Whether a libvirt network of this name exists and is active on the host. */
  async networkActive(name: string): Promise<boolean> {
    try {
      const { net } = await this.rpc(P.REMOTE_PROC_NETWORK_LOOKUP_BY_NAME, { name });
      return (await this.rpc(P.REMOTE_PROC_NETWORK_IS_ACTIVE, { net })).active === 1;
    } catch (e) {
      if (e instanceof LibvirtError && e.codeName === 'VIR_ERR_NO_NETWORK') return false;
      throw e;
    }
  }

  async defineXml(xml: string, flags = 0): Promise<DomainRef> {
    return (await this.rpc(P.REMOTE_PROC_DOMAIN_DEFINE_XML_FLAGS, { xml, flags })).dom;
  }

  async undefine(dom: DomainRef, flags = 0): Promise<void> {
    await this.rpc(P.REMOTE_PROC_DOMAIN_UNDEFINE_FLAGS, { dom, flags });
  }

  /** Starts a transient domain from XML. */
  async createXml(xml: string, flags = 0): Promise<DomainRef> {
    return (await this.rpc(P.REMOTE_PROC_DOMAIN_CREATE_XML, { xmlDesc: xml, flags })).dom;
  }

  /** Starts a defined domain. */
  async start(dom: DomainRef, flags = 0): Promise<DomainRef> {
    return (await this.rpc(P.REMOTE_PROC_DOMAIN_CREATE_WITH_FLAGS, { dom, flags })).dom;
  }

  async destroy(dom: DomainRef, flags = 0): Promise<void> {
    await this.rpc(P.REMOTE_PROC_DOMAIN_DESTROY_FLAGS, { dom, flags });
  }

  async shutdown(dom: DomainRef, flags = 0): Promise<void> {
    await this.rpc(P.REMOTE_PROC_DOMAIN_SHUTDOWN_FLAGS, { dom, flags });
  }

  // ---- tuning ----

  async getSchedulerParameters(dom: DomainRef, flags: number = Affect.CURRENT): Promise<TypedParams> {
    const { nparams } = await this.rpc(P.REMOTE_PROC_DOMAIN_GET_SCHEDULER_TYPE, { dom });
    const r = await this.rpc(P.REMOTE_PROC_DOMAIN_GET_SCHEDULER_PARAMETERS_FLAGS, { dom, nparams, flags });
    return fromTypedParams(r.params);
  }

  /** cpu_shares, vcpu_period (µs), vcpu_quota (µs, -1 = no cap). */
  async setSchedulerParameters(
    dom: DomainRef,
    values: Record<string, number | undefined>,
    flags: number = Affect.LIVE,
  ): Promise<void> {
    const params = toTypedParams(values, SCHED_KINDS);
    await this.rpc(P.REMOTE_PROC_DOMAIN_SET_SCHEDULER_PARAMETERS_FLAGS, { dom, params, flags });
  }

  /** hard_limit, soft_limit, swap_hard_limit in KiB (unlimited = 9007199254740991). */
  async getMemoryParameters(dom: DomainRef, flags: number = Affect.CURRENT): Promise<TypedParams> {
    const first = await this.rpc(P.REMOTE_PROC_DOMAIN_GET_MEMORY_PARAMETERS, { dom, nparams: 0, flags });
    const r = await this.rpc(P.REMOTE_PROC_DOMAIN_GET_MEMORY_PARAMETERS, {
      dom,
      nparams: first.nparams,
      flags,
    });
    return fromTypedParams(r.params);
  }

  async setMemoryParameters(
    dom: DomainRef,
    values: Record<string, number | undefined>,
    flags: number = Affect.LIVE,
  ): Promise<void> {
    await this.rpc(P.REMOTE_PROC_DOMAIN_SET_MEMORY_PARAMETERS, {
      dom,
      params: toTypedParams(values, MEMORY_KINDS),
      flags,
    });
  }

  /** weight and per-device limits as 'path,value' strings. */
  async getBlkioParameters(dom: DomainRef, flags: number = Affect.CURRENT): Promise<TypedParams> {
    // Per-device limits are strings: libvirt leaves them out unless the caller accepts strings.
    const f = flags | TYPED_PARAM_STRING_OKAY;
    const first = await this.rpc(P.REMOTE_PROC_DOMAIN_GET_BLKIO_PARAMETERS, { dom, nparams: 0, flags: f });
    const r = await this.rpc(P.REMOTE_PROC_DOMAIN_GET_BLKIO_PARAMETERS, {
      dom,
      nparams: first.nparams,
      flags: f,
    });
    return fromTypedParams(r.params);
  }

  async setBlkioParameters(
    dom: DomainRef,
    values: Record<string, number | string | undefined>,
    flags: number = Affect.LIVE,
  ): Promise<void> {
    await this.rpc(P.REMOTE_PROC_DOMAIN_SET_BLKIO_PARAMETERS, {
      dom,
      params: toTypedParams(values, BLKIO_KINDS),
      flags,
    });
  }

  /** inbound./outbound. average, peak (KiB/s), burst (KiB) of one interface (target dev or MAC). */
  async getInterfaceParameters(
    dom: DomainRef,
    device: string,
    flags: number = Affect.CURRENT,
  ): Promise<TypedParams> {
    const first = await this.rpc(P.REMOTE_PROC_DOMAIN_GET_INTERFACE_PARAMETERS, {
      dom,
      device,
      nparams: 0,
      flags,
    });
    const r = await this.rpc(P.REMOTE_PROC_DOMAIN_GET_INTERFACE_PARAMETERS, {
      dom,
      device,
      nparams: first.nparams,
      flags,
    });
    return fromTypedParams(r.params);
  }

  async setInterfaceParameters(
    dom: DomainRef,
    device: string,
    values: Record<string, number | undefined>,
    flags: number = Affect.LIVE,
  ): Promise<void> {
    await this.rpc(P.REMOTE_PROC_DOMAIN_SET_INTERFACE_PARAMETERS, {
      dom,
      device,
      params: toTypedParams(values, IFACE_KINDS),
      flags,
    });
  }

  // ---- statistics ----

  /** Bulk statistics of all domains (or of `doms`) in one call: cpu, balloon, vcpu, interface, block... */
  async getAllDomainStats(
    stats: number = DomainStats.STATE |
      DomainStats.CPU_TOTAL |
      DomainStats.BALLOON |
      DomainStats.VCPU |
      DomainStats.INTERFACE |
      DomainStats.BLOCK,
    flags = 0,
    doms: DomainRef[] = [],
  ): Promise<(DomainStatsRecord & { id: number })[]> {
    // With `doms` empty this is virConnectGetAllDomainStats, else virDomainListGetStats.
    const r = await this.rpc(P.REMOTE_PROC_CONNECT_GET_ALL_DOMAIN_STATS, { doms, stats, flags });
    return r.retStats.map((s) => ({
      name: s.dom.name,
      uuid: uuidString(s.dom.uuid),
      id: s.dom.id,
      stats: fromTypedParams(s.params),
    }));
  }

  // ---- jobs and migration ----

  async jobStats(dom: DomainRef, completed = false): Promise<JobStats> {
    const r = await this.rpc(P.REMOTE_PROC_DOMAIN_GET_JOB_STATS, {
      dom,
      flags: completed ? JOB_STATS_COMPLETED : 0,
    });
    return { type: jobTypeNames[r.type] ?? String(r.type), stats: fromTypedParams(r.params) };
  }

  async abortJob(dom: DomainRef): Promise<void> {
    await this.rpc(P.REMOTE_PROC_DOMAIN_ABORT_JOB, { dom });
  }

  async migrateSetMaxDowntime(dom: DomainRef, downtimeMs: number): Promise<void> {
    await this.rpc(P.REMOTE_PROC_DOMAIN_MIGRATE_SET_MAX_DOWNTIME, {
      dom,
      downtime: BigInt(downtimeMs),
      flags: 0,
    });
  }

  async migrateSetMaxSpeed(dom: DomainRef, bandwidthMiBs: number): Promise<void> {
    await this.rpc(P.REMOTE_PROC_DOMAIN_MIGRATE_SET_MAX_SPEED, {
      dom,
      bandwidth: BigInt(bandwidthMiBs),
      flags: 0,
    });
  }

  async migrateStartPostCopy(dom: DomainRef): Promise<void> {
    await this.rpc(P.REMOTE_PROC_DOMAIN_MIGRATE_START_POST_COPY, { dom, flags: 0 });
  }

  /**
   * Peer-to-peer live migration: the source libvirtd connects to the destination itself, so
   * this one call covers the whole protocol. Resolves when the migration has completed.
   */
  async migrate(dom: DomainRef, o: MigrationOptions): Promise<void> {
    let flags = Migrate.LIVE | Migrate.PEER2PEER;
    if (o.persistent) flags |= Migrate.PERSIST_DEST;
    if (o.undefineSource) flags |= Migrate.UNDEFINE_SOURCE;
    if (o.copyStorage === 'all') flags |= Migrate.NON_SHARED_DISK;
    if (o.copyStorage === 'inc') flags |= Migrate.NON_SHARED_INC;
    if (o.autoConverge) flags |= Migrate.AUTO_CONVERGE;
    if (o.postCopy) flags |= Migrate.POSTCOPY;
    if (o.parallelConnections) flags |= Migrate.PARALLEL;
    if (o.compression?.length) flags |= Migrate.COMPRESSED;
    const params: RemoteTypedParam[] = toTypedParams(
      {
        [MigrateParam.URI]: o.migrateUri,
        [MigrateParam.BANDWIDTH]: o.bandwidthMiBs,
        [MigrateParam.PARALLEL_CONNECTIONS]: o.parallelConnections,
      },
      {
        [MigrateParam.URI]: 'string',
        [MigrateParam.BANDWIDTH]: 'ullong',
        [MigrateParam.PARALLEL_CONNECTIONS]: 'int',
      },
    );
    for (const c of o.compression ?? [])
      params.push(...toTypedParams({ compression: c }, { compression: 'string' }));
    for (const d of o.copyStorage ? (o.migrateDisks ?? []) : [])
      params.push(
        ...toTypedParams({ [MigrateParam.MIGRATE_DISKS]: d }, { [MigrateParam.MIGRATE_DISKS]: 'string' }),
      );
    await this.rpc(
      P.REMOTE_PROC_DOMAIN_MIGRATE_PERFORM3_PARAMS,
      { dom, dconnuri: o.destinationUri, params, cookieIn: Buffer.alloc(0), flags },
      { timeoutMs: o.timeoutMs ?? 3_600_000 },
    );
  }

  // ---- block jobs ----

  /**
   * Starts copying `disk` (target dev or path) to the disk described by `destXml`; once the copy
   * is ready it mirrors every write until aborted or pivoted (virDomainBlockCopy).
   */
  async blockCopy(dom: DomainRef, disk: string, destXml: string, o: BlockCopyOptions = {}): Promise<void> {
    let flags = 0;
    if (o.synchronousWrites) flags |= BlockCopy.SYNCHRONOUS_WRITES;
    if (o.reuseExternal) flags |= BlockCopy.REUSE_EXT;
    if (o.transientJob) flags |= BlockCopy.TRANSIENT_JOB;
    const params = toTypedParams(
      { [BlockCopyParam.BANDWIDTH]: o.bandwidthBytes },
      {
        [BlockCopyParam.BANDWIDTH]: 'ullong',
      },
    );
    await this.rpc(P.REMOTE_PROC_DOMAIN_BLOCK_COPY, { dom, path: disk, destxml: destXml, params, flags });
  }

  /** The disk's block job, or null when it has none (virDomainGetBlockJobInfo). */
  async blockJobInfo(dom: DomainRef, disk: string): Promise<BlockJobInfo | null> {
    const r = await this.rpc(P.REMOTE_PROC_DOMAIN_GET_BLOCK_JOB_INFO, { dom, path: disk, flags: 0 });
    if (r.found !== 1) return null;
    const cur = Number(r.cur);
    const end = Number(r.end);
    return {
      type: blockJobTypeNames[r.type] ?? String(r.type),
      bandwidthMiBs: Number(r.bandwidth),
      cur,
      end,
      caughtUp: end > 0 && cur === end,
    };
  }

  /** Ends the disk's block job; `pivot` switches a ready copy over to its destination. */
  async blockJobAbort(
    dom: DomainRef,
    disk: string,
    o: { pivot?: boolean; async?: boolean } = {},
  ): Promise<void> {
    let flags = 0;
    if (o.pivot) flags |= BlockJobAbort.PIVOT;
    if (o.async) flags |= BlockJobAbort.ASYNC;
    await this.rpc(P.REMOTE_PROC_DOMAIN_BLOCK_JOB_ABORT, { dom, path: disk, flags });
  }

  // ---- events ----

  /** Registers for lifecycle, reboot (a guest reset), job-completed and migration-iteration events of every domain. */
  async subscribeDomainEvents(): Promise<void> {
    for (const eventID of [
      DomainEventId.LIFECYCLE,
      DomainEventId.REBOOT,
      DomainEventId.JOB_COMPLETED,
      DomainEventId.MIGRATION_ITERATION,
    ]) {
      if (this.callbacks.has(eventID)) continue;
      const r = await this.rpc(P.REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, {
        eventID,
        dom: null,
      });
      this.callbacks.set(eventID, r.callbackID);
    }
  }

  async unsubscribeDomainEvents(): Promise<void> {
    for (const [eventID, callbackID] of this.callbacks) {
      await this.rpc(P.REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, { callbackID });
      this.callbacks.delete(eventID);
    }
  }

  private onEvent(program: number, procedure: number, body: Buffer): void {
    if (program !== remoteProgram.program) return;
    const def = remoteProceduresByNumber.get(procedure);
    if (!def?.msg) return;
    let ev: DomainEvent | null = null;
    try {
      ev = toDomainEvent(procedure, decodeBody(def.msg, body));
    } catch (e) {
      this.emit('error', e);
      return;
    }
    if (ev) this.emit('domain-event', ev);
  }
}

function decodeBody(codec: XdrCodec<unknown>, body: Buffer): unknown {
  const r = new XdrReader(body);
  const v = codec.decode(r);
  r.assertEnd();
  return v;
}

function toDomainEvent(procedure: number, msg: unknown): DomainEvent | null {
  const ref = (d: RemoteNonnullDomain) => ({ domain: d.name, uuid: uuidString(d.uuid) });
  switch (procedure) {
    case P.REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE.number: {
      const m = (msg as { msg: { dom: RemoteNonnullDomain; event: number; detail: number } }).msg;
      return {
        kind: 'lifecycle',
        ...ref(m.dom),
        event: lifecycleEventNames[m.event] ?? String(m.event),
        detail: m.detail,
      };
    }
    case P.REMOTE_PROC_DOMAIN_EVENT_CALLBACK_JOB_COMPLETED.number: {
      const m = msg as { dom: RemoteNonnullDomain; params: RemoteTypedParam[] };
      return { kind: 'job-completed', ...ref(m.dom), stats: fromTypedParams(m.params) };
    }
    case P.REMOTE_PROC_DOMAIN_EVENT_CALLBACK_REBOOT.number: {
      const m = (msg as { msg: { dom: RemoteNonnullDomain } }).msg;
      return { kind: 'reboot', ...ref(m.dom) };
    }
    case P.REMOTE_PROC_DOMAIN_EVENT_CALLBACK_MIGRATION_ITERATION.number: {
      const m = msg as { dom: RemoteNonnullDomain; iteration: number };
      return { kind: 'migration-iteration', ...ref(m.dom), iteration: m.iteration };
    }
    default:
      return null;
  }
}
