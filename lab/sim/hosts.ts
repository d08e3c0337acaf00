// Simulated libvirt hosts: each a TCP listener of its own (one address per host) that speaks
// libvirt's remote protocol, with the same framing and the generated XDR codecs as the
// client, for the calls keizokud makes: auth (AUTH_NONE), keepalive, connect open and
// features, node info and CPU / memory stats, bulk domain stats, domain list, lookup,
// metadata, XML, state, define/undefine/create/start/shutdown/destroy with lifecycle events.
// A call it does not simulate is answered with libvirt's VIR_ERR_NO_SUPPORT, as libvirtd
// answers a procedure its driver lacks. Faults: power off (no listener, every link closed,
// its address removed when it has an address control, running domains gone), partition
// (links and connects stay open, nothing is answered), restore.
import { createServer, type Server, type Socket } from 'node:net';
import { keepaliveMessage } from '../../src/libvirt/connection.ts';
import { ERROR_CODE_NAMES } from '../../src/libvirt/error-codes.ts';
import {
  KEEPALIVE_PROC_PING,
  KEEPALIVE_PROC_PONG,
  KEEPALIVE_PROGRAM,
} from '../../src/libvirt/protocol/generated/keepalive.ts';
import {
  encodeRemoteDomainEventCallbackLifecycleMsg,
  remoteProcedures as P,
  REMOTE_AUTH_NONE,
  type RemoteNonnullDomain,
  remoteProceduresByNumber,
  remoteProgram,
} from '../../src/libvirt/protocol/generated/remote.ts';
import {
  VIR_NET_MESSAGE,
  VIR_NET_OK,
  type VirNetMessageHeader,
} from '../../src/libvirt/protocol/generated/virnet.ts';
import { XdrReader, type XdrWriter } from '../../src/libvirt/xdr.ts';
import { type FakePeer, serveLibvirt } from '../../test/support/fake-libvirt-server.ts';
import { type GuestAddresses, guestAddresses, type SimAddressControl } from './addresses.ts';
import {
  cpuTimeNs,
  DomainState,
  domainStats,
  domainXml,
  parseDefinition,
  ShutoffReason,
  type SimDomain,
  vmAddress,
  vmMetadata,
} from './domains.ts';

export type { SimDomain } from './domains.ts';

const code = (name: string) => ERROR_CODE_NAMES.indexOf(name);

/** virDomainEventType and the details the simulator sends. */
export const LifecycleEvent = { DEFINED: 0, UNDEFINED: 1, STARTED: 2, STOPPED: 5, SHUTDOWN: 6 } as const;
export const StoppedDetail = { SHUTDOWN: 0, DESTROYED: 1, MIGRATED: 3 } as const;
const EVENT_ID_LIFECYCLE = 0;
/** virConnectListAllDomainsFlags / virConnectGetAllDomainStatsFlags: the state filter bits. */
const ACTIVE = 1;
const INACTIVE = 2;

export interface SimHostSpec {
  name: string;
  address: string;
  port: number;
  cpus: number;
  memoryKiB: number;
  /** How long a guest takes to power down after a shutdown request (default 300 ms). */
  shutdownMs?: number;
}

export type SimPower = 'on' | 'off' | 'partitioned';

/** One simulated libvirtd: its domains, its listener and the clients connected to it. */
export class SimHost {
  readonly domains = new Map<string, SimDomain>();
  readonly peers = new Set<FakePeer>();
  /** Each client's event registrations: event id to its callback id. */
  private readonly callbacks = new Map<FakePeer, Map<number, number>>();
  private server: Server | null = null;
  private bootedAt = Date.now();
  private nextId = 1;
  private readonly timers = new Set<NodeJS.Timeout>();
  power: SimPower = 'on';
  /** Calls answered, by procedure number (what keizokud asked of this host). */
  readonly calls = new Map<number, number>();

  constructor(
    readonly spec: SimHostSpec,
    private readonly addresses: SimAddressControl | null = null,
    /** The guests' own addresses: up while they run (a probe agent pings them). */
    private readonly guests: GuestAddresses | null = null,
  ) {}

  get uri(): string {
    return `qemu+tcp://${this.spec.address}:${this.spec.port}/system`;
  }

  /** A running persistent domain, as found at boot. */
  addDomain(d: Pick<SimDomain, 'name' | 'uuid' | 'vcpus' | 'memoryKiB' | 'load'>): SimDomain {
    const dom: SimDomain = {
      ...d,
      id: this.nextId++,
      startedAt: Date.now(),
      state: DomainState.RUNNING,
      reason: 1,
      persistent: true,
    };
    this.domains.set(d.uuid.toString('hex'), dom);
    this.guests?.up(vmAddress(dom.uuid));
    return dom;
  }

  async listen(): Promise<void> {
    const server = createServer((socket: Socket) => {
      socket.setNoDelay(true);
      const peer = serveLibvirt(socket, (h, body, p) => this.answer(h, body, p));
      this.peers.add(peer);
      socket.once('close', () => {
        this.peers.delete(peer);
        this.callbacks.delete(peer);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.spec.port, this.spec.address, () => resolve());
    });
    this.server = server;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const p of this.peers) p.socket.destroy();
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  /**
   * Power off: every link closed, no listener, the address removed (when controlled): nothing
   * answers. Running guests are gone; persistent definitions stay, shut off, as on a disk.
   */
  async powerOff(): Promise<void> {
    if (this.power === 'off') return;
    this.power = 'off';
    // The address first: a machine that loses power says nothing more on its links.
    await this.addresses?.remove([this.spec.address]);
    await this.close();
    for (const [k, d] of this.domains) {
      if (!d.persistent) this.domains.delete(k);
      else if (d.state === DomainState.RUNNING) this.stop(d, ShutoffReason.UNKNOWN);
    }
  }

  /** Partition: connections stay open and new ones are accepted, but nothing is answered. */
  partition(): void {
    if (this.power === 'on') this.power = 'partitioned';
  }

  /** Power on again after a power off (booted now, guests off), or heal a partition. */
  async restore(): Promise<void> {
    if (this.power === 'partitioned') {
      this.power = 'on';
      return;
    }
    if (this.power !== 'off') return;
    await this.addresses?.add([this.spec.address]);
    this.bootedAt = Date.now();
    await this.listen();
    this.power = 'on';
  }

  private ref(d: SimDomain): RemoteNonnullDomain {
    return { name: d.name, uuid: d.uuid, id: d.id };
  }

  private byUuid(uuid: Buffer): SimDomain | undefined {
    return this.domains.get(uuid.toString('hex'));
  }

  private byName(name: string): SimDomain | undefined {
    for (const d of this.domains.values()) if (d.name === name) return d;
    return undefined;
  }

  private later(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
  }

  /** Sends a lifecycle event to every client registered for them (none while not answering). */
  private lifecycle(d: SimDomain, event: number, detail: number): void {
    if (this.power !== 'on') return;
    for (const [peer, ids] of this.callbacks) {
      const callbackID = ids.get(EVENT_ID_LIFECYCLE);
      if (callbackID === undefined) continue;
      const h = {
        prog: remoteProgram.program,
        vers: remoteProgram.version,
        proc: P.REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE.number,
        type: VIR_NET_MESSAGE,
        serial: 0,
        status: VIR_NET_OK,
      } as VirNetMessageHeader;
      peer.raw(
        peer.frame(h, (w) =>
          encodeRemoteDomainEventCallbackLifecycleMsg(w, {
            callbackID,
            msg: { dom: this.ref(d), event, detail },
          }),
        ),
      );
    }
  }

  private start(d: SimDomain, reason = 1): void {
    d.state = DomainState.RUNNING;
    d.reason = reason;
    d.id = this.nextId++;
    d.startedAt = Date.now();
    this.guests?.up(vmAddress(d.uuid));
    this.lifecycle(d, LifecycleEvent.STARTED, 0);
  }

  /** Stops a running domain; a transient one is gone with it. */
  private stop(d: SimDomain, reason: number, detail?: number): void {
    const ref = this.ref(d);
    d.state = DomainState.SHUTOFF;
    d.reason = reason;
    d.id = -1;
    this.guests?.down(vmAddress(d.uuid));
    if (detail !== undefined) this.lifecycle({ ...d, id: ref.id }, LifecycleEvent.STOPPED, detail);
    if (!d.persistent) this.domains.delete(d.uuid.toString('hex'));
  }

  /** A definition taken in: a new domain, or the same name and UUID defined again. */
  private define(xml: string, persistent: boolean): SimDomain | { code: string; message: string } {
    const f = parseDefinition(xml);
    if ('error' in f) return { code: 'VIR_ERR_XML_ERROR', message: f.error };
    const sameUuid = this.byUuid(f.uuid);
    const sameName = this.byName(f.name);
    if (sameName && sameName !== sameUuid)
      return {
        code: 'VIR_ERR_OPERATION_FAILED',
        message: `domain '${f.name}' already exists with another uuid`,
      };
    if (sameUuid && sameUuid.name !== f.name)
      return {
        code: 'VIR_ERR_OPERATION_FAILED',
        message: `domain '${sameUuid.name}' already exists with uuid`,
      };
    if (sameUuid) {
      if (!persistent)
        return { code: 'VIR_ERR_OPERATION_INVALID', message: `domain '${f.name}' already exists` };
      Object.assign(sameUuid, { memoryKiB: f.memoryKiB, vcpus: f.vcpus, persistent: true });
      return sameUuid;
    }
    const d: SimDomain = {
      ...f,
      id: -1,
      load: 0.1,
      startedAt: Date.now(),
      state: DomainState.SHUTOFF,
      reason: ShutoffReason.UNKNOWN,
      persistent,
    };
    this.domains.set(f.uuid.toString('hex'), d);
    return d;
  }

  private selected(flags: number): SimDomain[] {
    const all = [...this.domains.values()];
    const want = flags & (ACTIVE | INACTIVE);
    if (want === 0 || want === (ACTIVE | INACTIVE)) return all;
    const active = want === ACTIVE;
    return all.filter((d) => (d.state === DomainState.RUNNING) === active);
  }

  private answer(h: VirNetMessageHeader, body: Buffer, peer: FakePeer): unknown {
    if (this.power !== 'on') return; // partitioned: read and dropped
    if (h.prog === KEEPALIVE_PROGRAM) {
      if (h.proc === KEEPALIVE_PROC_PING) peer.raw(peer.frame(keepaliveMessage(KEEPALIVE_PROC_PONG)));
      return;
    }
    if (h.prog !== remoteProgram.program) return peer.error(h, code('VIR_ERR_RPC'), 'unknown program');
    this.calls.set(h.proc, (this.calls.get(h.proc) ?? 0) + 1);
    const def = remoteProceduresByNumber.get(h.proc);
    // biome-ignore lint/suspicious/noExplicitAny: each procedure's arguments, decoded by its own codec
    const args: any = def?.args ? def.args.decode(new XdrReader(body)) : undefined;
    const ok = (ret?: (w: XdrWriter) => void) => peer.reply(h, ret);
    // biome-ignore lint/suspicious/noExplicitAny: each procedure's reply, encoded by its own codec
    const ret = (proc: { ret: { encode(w: XdrWriter, v: any): void } | null }, v: unknown) =>
      ok((w) => proc.ret!.encode(w, v));
    const fail = (name: string, message: string) => peer.error(h, code(name), message);
    const now = Date.now();
    const noDomain = () => fail('VIR_ERR_NO_DOMAIN', 'Domain not found');
    const dom = (): SimDomain | undefined => (args?.dom ? this.byUuid(args.dom.uuid) : undefined);
    const notRunning = (d: SimDomain) =>
      fail('VIR_ERR_OPERATION_INVALID', `domain '${d.name}' is not running`);
    switch (h.proc) {
      case P.REMOTE_PROC_AUTH_LIST.number:
        return ret(P.REMOTE_PROC_AUTH_LIST, { types: [REMOTE_AUTH_NONE] });
      case P.REMOTE_PROC_CONNECT_SUPPORTS_FEATURE.number:
        return ret(P.REMOTE_PROC_CONNECT_SUPPORTS_FEATURE, { supported: 1 });
      case P.REMOTE_PROC_CONNECT_OPEN.number:
      case P.REMOTE_PROC_CONNECT_CLOSE.number:
        return ok();
      case P.REMOTE_PROC_CONNECT_GET_HOSTNAME.number:
        return ret(P.REMOTE_PROC_CONNECT_GET_HOSTNAME, { hostname: this.spec.name });
      case P.REMOTE_PROC_NODE_GET_INFO.number: {
        const model = Buffer.alloc(32);
        model.write('x86_64');
        return ret(P.REMOTE_PROC_NODE_GET_INFO, {
          model: [...model],
          memory: BigInt(this.spec.memoryKiB),
          cpus: this.spec.cpus,
          mhz: 2400,
          nodes: 1,
          sockets: 1,
          cores: this.spec.cpus / 2,
          threads: 2,
        });
      }
      case P.REMOTE_PROC_NODE_GET_CPU_STATS.number: {
        // The guests' CPU time plus a little of the host's own, the rest idle.
        let busy = 0n;
        for (const d of this.domains.values()) busy += cpuTimeNs(d, now);
        const total = BigInt(now - this.bootedAt) * 1_000_000n * BigInt(this.spec.cpus);
        const kernel = total / 50n;
        const params = [
          { field: 'kernel', value: kernel },
          { field: 'user', value: busy },
          { field: 'idle', value: total > busy + kernel ? total - busy - kernel : 0n },
          { field: 'iowait', value: total / 1000n },
        ];
        return ret(
          P.REMOTE_PROC_NODE_GET_CPU_STATS,
          args.nparams === 0 ? { params: [], nparams: 4 } : { params, nparams: 4 },
        );
      }
      case P.REMOTE_PROC_NODE_GET_MEMORY_STATS.number: {
        let used = 0;
        for (const d of this.domains.values()) if (d.state === DomainState.RUNNING) used += d.memoryKiB;
        const total = this.spec.memoryKiB;
        const params = [
          { field: 'total', value: BigInt(total) },
          { field: 'free', value: BigInt(Math.max(0, total - used - 4 * 1024 * 1024)) },
          { field: 'buffers', value: 512n * 1024n },
          { field: 'cached', value: 2n * 1024n * 1024n },
        ];
        return ret(
          P.REMOTE_PROC_NODE_GET_MEMORY_STATS,
          args.nparams === 0 ? { params: [], nparams: 4 } : { params, nparams: 4 },
        );
      }
      case P.REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS.number: {
        const list = this.selected(args.flags);
        return ret(P.REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS, {
          domains: list.map((d) => this.ref(d)),
          ret: list.length,
        });
      }
      case P.REMOTE_PROC_CONNECT_GET_ALL_DOMAIN_STATS.number: {
        const wanted: SimDomain[] =
          args.doms.length > 0
            ? args.doms.map((r: RemoteNonnullDomain) => this.byUuid(r.uuid)).filter(Boolean)
            : this.selected(args.flags);
        return ret(P.REMOTE_PROC_CONNECT_GET_ALL_DOMAIN_STATS, {
          retStats: wanted.map((d) => ({ dom: this.ref(d), params: domainStats(d, args.stats, now) })),
        });
      }
      case P.REMOTE_PROC_DOMAIN_LOOKUP_BY_UUID.number: {
        const d = this.byUuid(args.uuid);
        return d ? ret(P.REMOTE_PROC_DOMAIN_LOOKUP_BY_UUID, { dom: this.ref(d) }) : noDomain();
      }
      case P.REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME.number: {
        const d = this.byName(args.name);
        return d ? ret(P.REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME, { dom: this.ref(d) }) : noDomain();
      }
      case P.REMOTE_PROC_DOMAIN_GET_STATE.number: {
        const d = dom();
        return d ? ret(P.REMOTE_PROC_DOMAIN_GET_STATE, { state: d.state, reason: d.reason }) : noDomain();
      }
      case P.REMOTE_PROC_DOMAIN_GET_XML_DESC.number: {
        const d = dom();
        return d ? ret(P.REMOTE_PROC_DOMAIN_GET_XML_DESC, { xml: domainXml(d) }) : noDomain();
      }
      case P.REMOTE_PROC_DOMAIN_GET_METADATA.number: {
        const d = dom();
        if (!d) return noDomain();
        if (args.uri !== 'urn:keizoku:vm:1')
          return fail('VIR_ERR_NO_DOMAIN_METADATA', 'Requested metadata element is not present');
        return ret(P.REMOTE_PROC_DOMAIN_GET_METADATA, { metadata: vmMetadata(d.uuid) });
      }
      case P.REMOTE_PROC_DOMAIN_DEFINE_XML_FLAGS.number: {
        const known = parseDefinition(args.xml);
        const existed = !('error' in known) && this.byUuid(known.uuid) !== undefined;
        const d = this.define(args.xml, true);
        if ('code' in d) return fail(d.code, d.message);
        this.lifecycle(d, LifecycleEvent.DEFINED, existed ? 1 : 0); // updated / added
        return ret(P.REMOTE_PROC_DOMAIN_DEFINE_XML_FLAGS, { dom: this.ref(d) });
      }
      case P.REMOTE_PROC_DOMAIN_CREATE_XML.number: {
        const d = this.define(args.xmlDesc, false);
        if ('code' in d) return fail(d.code, d.message);
        this.start(d);
        return ret(P.REMOTE_PROC_DOMAIN_CREATE_XML, { dom: this.ref(d) });
      }
      case P.REMOTE_PROC_DOMAIN_CREATE_WITH_FLAGS.number: {
        const d = dom();
        if (!d) return noDomain();
        if (d.state === DomainState.RUNNING)
          return fail('VIR_ERR_OPERATION_INVALID', `domain '${d.name}' is already running`);
        this.start(d);
        return ret(P.REMOTE_PROC_DOMAIN_CREATE_WITH_FLAGS, { dom: this.ref(d) });
      }
      case P.REMOTE_PROC_DOMAIN_SHUTDOWN_FLAGS.number: {
        const d = dom();
        if (!d) return noDomain();
        if (d.state !== DomainState.RUNNING) return notRunning(d);
        // The guest powers down a moment after the request (ACPI), as a real one does.
        const id = d.id;
        this.later(this.spec.shutdownMs ?? 300, () => {
          if (d.state !== DomainState.RUNNING || d.id !== id) return;
          this.lifecycle(d, LifecycleEvent.SHUTDOWN, 0);
          this.stop(d, ShutoffReason.SHUTDOWN, StoppedDetail.SHUTDOWN);
        });
        return ok();
      }
      case P.REMOTE_PROC_DOMAIN_DESTROY_FLAGS.number: {
        const d = dom();
        if (!d) return noDomain();
        if (d.state !== DomainState.RUNNING) return notRunning(d);
        this.stop(d, ShutoffReason.DESTROYED, StoppedDetail.DESTROYED);
        return ok();
      }
      case P.REMOTE_PROC_DOMAIN_UNDEFINE_FLAGS.number: {
        const d = dom();
        if (!d) return noDomain();
        if (!d.persistent) return fail('VIR_ERR_OPERATION_INVALID', 'cannot undefine transient domain');
        // A running domain becomes transient and goes when it stops, as in libvirt.
        if (d.state === DomainState.RUNNING) d.persistent = false;
        else this.domains.delete(d.uuid.toString('hex'));
        this.lifecycle(d, LifecycleEvent.UNDEFINED, 0);
        return ok();
      }
      case P.REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY.number: {
        const ids = this.callbacks.get(peer) ?? new Map<number, number>();
        this.callbacks.set(peer, ids);
        const callbackID = args.eventID + 1;
        ids.set(args.eventID, callbackID);
        return ret(P.REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, { callbackID });
      }
      case P.REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY.number: {
        const ids = this.callbacks.get(peer);
        for (const [e, c] of ids ?? []) if (c === args.callbackID) ids?.delete(e);
        return ok();
      }
      default:
        return fail(
          'VIR_ERR_NO_SUPPORT',
          `this function is not supported by the simulated host: ${def?.name ?? h.proc}`,
        );
    }
  }
}

/** Host i's address (0-based): PREFIX.X.Y, Y in 1..250, one per host (127.1 on loopback). */
export function simAddress(i: number, prefix = '127.1'): string {
  return `${prefix}.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

export const simHostName = (i: number) => `h${String(i + 1).padStart(4, '0')}`;

/** A domain UUID unique to host h, VM v (16 bytes, version 4 form). */
export function simUuid(h: number, v: number): Buffer {
  const b = Buffer.alloc(16);
  b.write('5a4b0000', 0, 'hex');
  b.writeUInt16BE(0x4000, 6);
  b.writeUInt16BE(0x8000, 8);
  b.writeUIntBE(h * 1000 + v, 10, 6);
  return b;
}

export interface SimClusterOptions {
  hosts: number;
  vmsPerHost: number;
  /** The TCP port every host listens on, each at its own address. */
  port: number;
  cpus?: number;
  memoryKiB?: number;
  /** The first two octets of the hosts' addresses (default 127.1, on loopback). */
  addressPrefix?: string;
  /** Puts each host's address on an interface and takes it away at power off; the guests'
   *  addresses likewise while they run. */
  addresses?: SimAddressControl;
  shutdownMs?: number;
}

export interface SimCluster {
  hosts: SimHost[];
  byName(name: string): SimHost | undefined;
  /** Resolves once every guest address change so far is on the interface. */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts `hosts` simulated hosts with `vmsPerHost` running domains each. */
export async function startSimHosts(o: SimClusterOptions): Promise<SimCluster> {
  const hosts: SimHost[] = [];
  const specs = Array.from({ length: o.hosts }, (_, i) => ({
    name: simHostName(i),
    address: simAddress(i, o.addressPrefix),
    port: o.port,
    cpus: o.cpus ?? 64,
    memoryKiB: o.memoryKiB ?? 256 * 1024 * 1024,
    ...(o.shutdownMs !== undefined ? { shutdownMs: o.shutdownMs } : {}),
  }));
  await o.addresses?.add(specs.map((s) => s.address));
  const guests = o.addresses ? guestAddresses(o.addresses) : null;
  try {
    for (const [i, spec] of specs.entries()) {
      const host = new SimHost(spec, o.addresses ?? null, guests);
      for (let v = 0; v < o.vmsPerHost; v++)
        host.addDomain({
          name: `vm-${host.spec.name}-${String(v + 1).padStart(2, '0')}`,
          uuid: simUuid(i, v),
          vcpus: 2,
          memoryKiB: 4 * 1024 * 1024,
          load: 0.05 + ((i * 7 + v * 13) % 40) / 100,
        });
      await host.listen();
      hosts.push(host);
    }
    await guests?.flushed();
  } catch (e) {
    await Promise.all(hosts.map((h) => h.close()));
    throw e;
  }
  const index = new Map(hosts.map((h) => [h.spec.name, h]));
  return {
    hosts,
    byName: (name) => index.get(name),
    settled: () => guests?.flushed() ?? Promise.resolve(),
    stop: async () => void (await Promise.all(hosts.map((h) => h.close()))),
  };
}
