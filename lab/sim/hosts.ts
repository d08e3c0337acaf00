// Simulated libvirt hosts: each a TCP listener of its own (one loopback address per host)
// that speaks libvirt's remote protocol, with the same framing and the generated XDR codecs
// as the client, for the calls keizokud's inventory makes: auth (AUTH_NONE), keepalive,
// connect open and features, node info and CPU / memory stats, bulk domain stats, domain list,
// lookup, metadata, XML, state, event registration. A call it does not simulate is answered
// with libvirt's VIR_ERR_NO_SUPPORT, as libvirtd answers a procedure its driver lacks.
import { createServer, type Server, type Socket } from 'node:net';
import { keepaliveMessage } from '../../src/libvirt/connection.ts';
import { DomainStats } from '../../src/libvirt/constants.ts';
import { ERROR_CODE_NAMES } from '../../src/libvirt/error-codes.ts';
import {
  VIR_TYPED_PARAM_INT,
  VIR_TYPED_PARAM_UINT,
  VIR_TYPED_PARAM_ULLONG,
} from '../../src/libvirt/protocol/generated/common.ts';
import {
  KEEPALIVE_PROC_PING,
  KEEPALIVE_PROC_PONG,
  KEEPALIVE_PROGRAM,
} from '../../src/libvirt/protocol/generated/keepalive.ts';
import {
  remoteProcedures as P,
  REMOTE_AUTH_NONE,
  type RemoteNonnullDomain,
  type RemoteTypedParam,
  remoteProceduresByNumber,
  remoteProgram,
} from '../../src/libvirt/protocol/generated/remote.ts';
import type { VirNetMessageHeader } from '../../src/libvirt/protocol/generated/virnet.ts';
import { XdrReader, type XdrWriter } from '../../src/libvirt/xdr.ts';
import { type FakePeer, serveLibvirt } from '../../test/support/fake-libvirt-server.ts';

const code = (name: string) => ERROR_CODE_NAMES.indexOf(name);

export interface SimDomain {
  name: string;
  uuid: Buffer;
  id: number;
  vcpus: number;
  memoryKiB: number;
  /** Share of its vCPUs the guest keeps busy (0..1); its cpu.time grows with it. */
  load: number;
  startedAt: number;
}

export interface SimHostSpec {
  name: string;
  address: string;
  port: number;
  cpus: number;
  memoryKiB: number;
}

/** One simulated libvirtd: its domains, its listener and the clients connected to it. */
export class SimHost {
  readonly domains = new Map<string, SimDomain>();
  readonly peers = new Set<FakePeer>();
  private server: Server | null = null;
  private readonly bootedAt = Date.now();
  private nextId = 1;
  /** Calls answered, by procedure number (what keizokud asked of this host). */
  readonly calls = new Map<number, number>();

  constructor(readonly spec: SimHostSpec) {}

  get uri(): string {
    return `qemu+tcp://${this.spec.address}:${this.spec.port}/system`;
  }

  addDomain(d: Omit<SimDomain, 'id' | 'startedAt'>): SimDomain {
    const dom = { ...d, id: this.nextId++, startedAt: Date.now() };
    this.domains.set(d.uuid.toString('hex'), dom);
    return dom;
  }

  async listen(): Promise<void> {
    const server = createServer((socket: Socket) => {
      socket.setNoDelay(true);
      const peer = serveLibvirt(socket, (h, body, p) => this.answer(h, body, p));
      this.peers.add(peer);
      socket.once('close', () => this.peers.delete(peer));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.spec.port, this.spec.address, () => resolve());
    });
    this.server = server;
  }

  async close(): Promise<void> {
    for (const p of this.peers) p.socket.destroy();
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
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

  /** Guest CPU time so far in ns: its load times its vCPUs since it started. */
  private cpuTimeNs(d: SimDomain, now: number): bigint {
    return BigInt(Math.round((now - d.startedAt) * 1e6 * d.vcpus * d.load));
  }

  private stats(d: SimDomain, groups: number, now: number): RemoteTypedParam[] {
    const out: RemoteTypedParam[] = [];
    const int = (field: string, i: number) => out.push({ field, value: { type: VIR_TYPED_PARAM_INT, i } });
    const uint = (field: string, ui: number) =>
      out.push({ field, value: { type: VIR_TYPED_PARAM_UINT, ui } });
    const ull = (field: string, ul: bigint) =>
      out.push({ field, value: { type: VIR_TYPED_PARAM_ULLONG, ul } });
    const cpu = this.cpuTimeNs(d, now);
    if (groups & DomainStats.STATE) {
      int('state.state', 1); // running
      int('state.reason', 1); // booted
    }
    if (groups & DomainStats.CPU_TOTAL) {
      ull('cpu.time', cpu);
      ull('cpu.user', (cpu * 8n) / 10n);
      ull('cpu.system', (cpu * 2n) / 10n);
    }
    if (groups & DomainStats.BALLOON) {
      const kib = BigInt(d.memoryKiB);
      ull('balloon.current', kib);
      ull('balloon.maximum', kib);
      ull('balloon.swap_in', 0n);
      ull('balloon.swap_out', 0n);
      ull('balloon.major_fault', 120n);
      ull('balloon.minor_fault', 90_000n);
      ull('balloon.unused', kib / 2n);
      ull('balloon.available', (kib * 95n) / 100n);
      ull('balloon.usable', kib / 2n);
      ull('balloon.last-update', BigInt(Math.floor(now / 1000)));
      ull('balloon.rss', (kib * 6n) / 10n);
    }
    if (groups & DomainStats.VCPU) {
      uint('vcpu.current', d.vcpus);
      uint('vcpu.maximum', d.vcpus);
      for (let i = 0; i < d.vcpus; i++) {
        int(`vcpu.${i}.state`, 1);
        ull(`vcpu.${i}.time`, cpu / BigInt(d.vcpus));
        ull(`vcpu.${i}.wait`, 0n);
      }
    }
    return out;
  }

  private domainXml(d: SimDomain): string {
    const uuid = d.uuid.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');
    return `<domain type='kvm'>
  <name>${d.name}</name>
  <uuid>${uuid}</uuid>
  <metadata>
    <kz:vm xmlns:kz="urn:keizoku:vm:1"><kz:address>${vmAddress(d.uuid)}</kz:address></kz:vm>
  </metadata>
  <memory unit='KiB'>${d.memoryKiB}</memory>
  <currentMemory unit='KiB'>${d.memoryKiB}</currentMemory>
  <vcpu placement='static'>${d.vcpus}</vcpu>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><boot dev='hd'/></os>
  <cpu mode='host-model' check='partial'/>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source protocol='rbd' name='vms/${d.name}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'><source bridge='vmbr'/><model type='virtio'/></interface>
  </devices>
</domain>
`;
  }

  private answer(h: VirNetMessageHeader, body: Buffer, peer: FakePeer): unknown {
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
    const now = Date.now();
    const noDomain = () => peer.error(h, code('VIR_ERR_NO_DOMAIN'), 'Domain not found');
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
        for (const d of this.domains.values()) busy += this.cpuTimeNs(d, now);
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
        for (const d of this.domains.values()) used += d.memoryKiB;
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
      case P.REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS.number:
        return ret(P.REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS, {
          domains: [...this.domains.values()].map((d) => this.ref(d)),
          ret: this.domains.size,
        });
      case P.REMOTE_PROC_CONNECT_GET_ALL_DOMAIN_STATS.number: {
        const wanted: SimDomain[] =
          args.doms.length > 0
            ? args.doms.map((r: RemoteNonnullDomain) => this.byUuid(r.uuid)).filter(Boolean)
            : [...this.domains.values()];
        return ret(P.REMOTE_PROC_CONNECT_GET_ALL_DOMAIN_STATS, {
          retStats: wanted.map((d) => ({ dom: this.ref(d), params: this.stats(d, args.stats, now) })),
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
        const d = this.byUuid(args.dom.uuid);
        return d ? ret(P.REMOTE_PROC_DOMAIN_GET_STATE, { state: 1, reason: 1 }) : noDomain();
      }
      case P.REMOTE_PROC_DOMAIN_GET_XML_DESC.number: {
        const d = this.byUuid(args.dom.uuid);
        return d ? ret(P.REMOTE_PROC_DOMAIN_GET_XML_DESC, { xml: this.domainXml(d) }) : noDomain();
      }
      case P.REMOTE_PROC_DOMAIN_GET_METADATA.number: {
        const d = this.byUuid(args.dom.uuid);
        if (!d) return noDomain();
        if (args.uri !== 'urn:keizoku:vm:1')
          return peer.error(
            h,
            code('VIR_ERR_NO_DOMAIN_METADATA'),
            'Requested metadata element is not present',
          );
        return ret(P.REMOTE_PROC_DOMAIN_GET_METADATA, {
          metadata: `<kz:vm xmlns:kz="urn:keizoku:vm:1"><kz:address>${vmAddress(d.uuid)}</kz:address></kz:vm>`,
        });
      }
      case P.REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY.number:
        return ret(P.REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, {
          callbackID: args.eventID + 1,
        });
      case P.REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY.number:
        return ok();
      default:
        return peer.error(
          h,
          code('VIR_ERR_NO_SUPPORT'),
          `this function is not supported by the simulated host: ${def?.name ?? h.proc}`,
        );
    }
  }
}

/** A VM's address (its keizoku metadata) in 10.0.0.0/8, from its UUID's last bytes. */
function vmAddress(uuid: Buffer): string {
  return `10.${uuid[13]}.${uuid[14]}.${uuid[15]}`;
}

/** Host i's loopback address (0-based): 127.1.X.Y, Y in 1..250, one per host. */
export function simAddress(i: number): string {
  return `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
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
}

/** Starts `hosts` simulated hosts with `vmsPerHost` running domains each. */
export async function startSimHosts(
  o: SimClusterOptions,
): Promise<{ hosts: SimHost[]; stop(): Promise<void> }> {
  const hosts: SimHost[] = [];
  try {
    for (let i = 0; i < o.hosts; i++) {
      const host = new SimHost({
        name: simHostName(i),
        address: simAddress(i),
        port: o.port,
        cpus: o.cpus ?? 64,
        memoryKiB: o.memoryKiB ?? 256 * 1024 * 1024,
      });
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
  } catch (e) {
    await Promise.all(hosts.map((h) => h.close()));
    throw e;
  }
  return { hosts, stop: async () => void (await Promise.all(hosts.map((h) => h.close()))) };
}
