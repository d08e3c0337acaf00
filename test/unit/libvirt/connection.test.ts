import { once } from 'node:events';
import { connect } from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { keepaliveMessage, LibvirtConnection } from '../../../src/libvirt/connection.ts';
import {
  AuthUnsupportedError,
  CallTimeoutError,
  ConnectionClosedError,
  InsecureTransportError,
  KeepaliveTimeoutError,
  LibvirtError,
  ProtocolError,
  UriError,
} from '../../../src/libvirt/errors.ts';
import { FrameDecoder } from '../../../src/libvirt/frame-decoder.ts';
import { connectLibvirt, dialerFor } from '../../../src/libvirt/index.ts';
import {
  KEEPALIVE_PROC_PING,
  KEEPALIVE_PROC_PONG,
  KEEPALIVE_PROGRAM,
} from '../../../src/libvirt/protocol/generated/keepalive.ts';
import {
  REMOTE_AUTH_SASL,
  REMOTE_PROC_AUTH_LIST,
  REMOTE_PROC_CONNECT_GET_HOSTNAME,
  REMOTE_PROC_CONNECT_OPEN,
  REMOTE_PROC_CONNECT_SUPPORTS_FEATURE,
  REMOTE_PROGRAM,
  REMOTE_PROTOCOL_VERSION,
} from '../../../src/libvirt/protocol/generated/remote.ts';
import {
  encodeVirNetMessageHeader,
  VIR_NET_MESSAGE,
  VIR_NET_OK,
  type VirNetMessageHeader,
} from '../../../src/libvirt/protocol/generated/virnet.ts';
import { XdrReader, XdrWriter } from '../../../src/libvirt/xdr.ts';
import { type FakePeer, type Handler, startFakeServer } from '../../support/fake-libvirt-server.ts';

let stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops) await s();
  stops = [];
});

async function pair(handler: Handler, opts: ConstructorParameters<typeof LibvirtConnection>[1] = {}) {
  const srv = await startFakeServer(handler);
  const socket = connect({ path: srv.path });
  await new Promise((r) => socket.once('connect', r));
  const conn = new LibvirtConnection(socket, opts);
  stops.push(async () => {
    await conn.close();
    await srv.stop();
  });
  return { conn, srv };
}

const hostname = (conn: LibvirtConnection, timeoutMs?: number) =>
  conn.call(
    REMOTE_PROGRAM,
    REMOTE_PROTOCOL_VERSION,
    REMOTE_PROC_CONNECT_GET_HOSTNAME,
    null,
    (r: XdrReader) => r.string(),
    { timeoutMs },
  );

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LibvirtConnection against a fake server', () => {
  it('matches many concurrent replies answered out of order by serial', async () => {
    const calls: [VirNetMessageHeader, FakePeer][] = [];
    const { conn } = await pair((h, _b, peer) => {
      calls.push([h, peer]);
      if (calls.length === 20)
        for (const [c, p] of [...calls].reverse()) p.reply(c, (w) => w.string(`host-${c.serial}`));
    });
    const results = await Promise.all(Array.from({ length: 20 }, () => hostname(conn)));
    expect(new Set(results).size).toBe(20);
    expect(results[0]).toBe(`host-${calls[0]![0].serial}`);
  });

  it('sends the calls made in one tick in one write', async () => {
    const srv = await startFakeServer((h, _b, peer) => peer.reply(h, (w) => w.string('h')));
    const socket = connect({ path: srv.path });
    await once(socket, 'connect');
    const s = socket as unknown as Record<'_write' | '_writev', (...a: unknown[]) => void>;
    let writes = 0;
    for (const k of ['_write', '_writev'] as const) {
      const orig = s[k].bind(socket);
      s[k] = (...a: unknown[]) => {
        writes++;
        orig(...a);
      };
    }
    const conn = new LibvirtConnection(socket);
    stops.push(async () => {
      await conn.close();
      await srv.stop();
    });
    expect(await Promise.all([hostname(conn), hostname(conn), hostname(conn)])).toEqual(['h', 'h', 'h']);
    expect(writes).toBe(1);
    await hostname(conn);
    expect(writes).toBe(2);
  });

  it('turns an error reply into a LibvirtError with libvirt code and domain names', async () => {
    const { conn } = await pair((h, _b, peer) =>
      peer.error(h, 42, "Domain not found: no domain with matching name 'x'"),
    );
    const e = await hostname(conn).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(LibvirtError);
    expect(e).toMatchObject({ codeName: 'VIR_ERR_NO_DOMAIN', domainName: 'VIR_FROM_QEMU' });
    expect((e as LibvirtError).isNotFound()).toBe(true);
    expect(conn.closed).toBe(false);
  });

  it('gives every call a deadline and drops the late reply', async () => {
    const { conn } = await pair((h, _b, peer) =>
      setTimeout(() => peer.reply(h, (w) => w.string('late')), 150),
    );
    await expect(hostname(conn, 50)).rejects.toBeInstanceOf(CallTimeoutError);
    await sleep(200);
    expect(conn.closed).toBe(false);
    expect(await hostname(conn, 1_000)).toBe('late');
  });

  it('ignores a reply for an unknown serial and keeps working', async () => {
    const { conn } = await pair((h, _b, peer) => {
      peer.reply({ ...h, serial: h.serial + 1000 }, (w) => w.string('stray'));
      peer.reply(h, (w) => w.string('mine'));
    });
    expect(await hostname(conn)).toBe('mine');
  });

  it('fails pending calls when the peer closes mid-frame', async () => {
    const { conn } = await pair((h, _b, peer) => {
      const f = peer.frame({ ...h, type: 1, status: 0 }, (w) => w.string('truncated'));
      peer.raw(f.subarray(0, f.length - 3));
      setTimeout(() => peer.socket.end(), 20);
    });
    await expect(hostname(conn)).rejects.toBeInstanceOf(ConnectionClosedError);
    expect(conn.closed).toBe(true);
  });

  it('refuses an oversized length prefix without allocating it, and closes', async () => {
    const { conn } = await pair((_h, _b, peer) => {
      const b = Buffer.alloc(8);
      b.writeUInt32BE(0xfffffff0, 0);
      peer.raw(b);
    });
    const e = await hostname(conn).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ProtocolError);
    expect((e as Error).message).toMatch(/frame length 4294967280/);
    expect(conn.closed).toBe(true);
  });

  it('refuses a header with an unknown message type', async () => {
    const { conn } = await pair((h, _b, peer) => {
      const f = peer.frame(h);
      f.writeUInt32BE(99, 4 + 12); // type field
      peer.raw(f);
    });
    await expect(hostname(conn)).rejects.toBeInstanceOf(ProtocolError);
  });

  it('fails only the call whose reply body does not decode', async () => {
    let n = 0;
    const { conn } = await pair((h, _b, peer) =>
      n++ === 0 ? peer.reply(h, (w) => w.uint(5000)) : peer.reply(h, (w) => w.string('ok')),
    );
    await expect(hostname(conn)).rejects.toBeInstanceOf(ProtocolError);
    expect(await hostname(conn)).toBe('ok');
  });

  it('answers the server PING with PONG and delivers event messages', async () => {
    let pong: VirNetMessageHeader | null = null;
    const { conn, srv } = await pair((h) => {
      if (h.prog === KEEPALIVE_PROGRAM) pong = h;
    });
    const events: number[] = [];
    conn.on('event', (_prog: number, proc: number) => events.push(proc));
    await sleep(20);
    const peer = srv.peers[0]!;
    peer.raw(
      peer.frame({
        prog: KEEPALIVE_PROGRAM,
        vers: 1,
        proc: KEEPALIVE_PROC_PING,
        type: VIR_NET_MESSAGE,
        serial: 0,
        status: VIR_NET_OK,
      }),
    );
    peer.raw(
      peer.frame({
        prog: REMOTE_PROGRAM,
        vers: 1,
        proc: 318,
        type: VIR_NET_MESSAGE,
        serial: 0,
        status: VIR_NET_OK,
      }),
    );
    await sleep(50);
    expect(pong).toMatchObject({ proc: KEEPALIVE_PROC_PONG, type: VIR_NET_MESSAGE });
    expect(events).toEqual([318]);
  });

  it('stays up while the server answers keepalive PINGs', async () => {
    const { conn } = await pair(
      (h, _b, peer) => {
        if (h.prog === KEEPALIVE_PROGRAM && h.proc === KEEPALIVE_PROC_PING)
          peer.raw(peer.frame({ ...h, proc: KEEPALIVE_PROC_PONG }));
      },
      { keepaliveIntervalMs: 50, keepaliveCount: 3 },
    );
    conn.startKeepalive();
    await sleep(400);
    expect(conn.closed).toBe(false);
  });

  it('declares a silent peer dead after interval x count and fails every pending call at once', async () => {
    const { conn } = await pair(() => undefined, { keepaliveIntervalMs: 50, keepaliveCount: 3 });
    conn.startKeepalive();
    const t0 = Date.now();
    // A timer of interval x count started with the calls measures how late this machine's
    // timers run right now: the peer is declared dead that late plus one keepalive tick.
    const timer = sleep(150).then(() => Date.now() - t0);
    const results = await Promise.all(
      [hostname(conn), hostname(conn), hostname(conn)].map((p) => p.catch((e: unknown) => e)),
    );
    const elapsed = Date.now() - t0;
    const timerMs = await timer;
    for (const r of results) expect(r).toBeInstanceOf(KeepaliveTimeoutError);
    // Not before interval x count of silence, and then at once: not at a later tick or timeout.
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed, `a 150 ms timer took ${timerMs} ms`).toBeLessThan(timerMs + 50 / 4 + 100);
    await expect(hostname(conn)).rejects.toBeInstanceOf(KeepaliveTimeoutError);
  });
});

// A peer in a thread of its own: it sends a keepalive PING every 10 ms whatever the main
// thread is doing.
const PINGING_PEER = `
const { workerData, parentPort } = require('node:worker_threads');
const net = require('node:net');
const srv = net.createServer((s) => {
  const t = setInterval(() => s.write(workerData.ping), 10);
  s.on('close', () => clearInterval(t));
  s.on('error', () => undefined);
  s.resume();
});
srv.listen(0, '127.0.0.1', () => parentPort.postMessage(srv.address().port));
`;

describe('LibvirtConnection keepalive while this process is busy', () => {
  it('a stall of the main thread longer than interval x count is no silence of the peer: its answers wait unread in the socket', async () => {
    const w = new XdrWriter();
    w.uint(0);
    encodeVirNetMessageHeader(w, keepaliveMessage(KEEPALIVE_PROC_PING));
    const ping = w.finish();
    ping.writeUInt32BE(ping.length, 0);
    const worker = new Worker(PINGING_PEER, { eval: true, workerData: { ping } });
    stops.push(() => worker.terminate().then(() => undefined));
    const [port] = (await once(worker, 'message')) as [number];
    const socket = connect({ port, host: '127.0.0.1' });
    await once(socket, 'connect');
    const conn = new LibvirtConnection(socket, { keepaliveIntervalMs: 50, keepaliveCount: 3 });
    stops.push(() => conn.close());
    conn.startKeepalive();
    await sleep(100);
    expect(conn.closed).toBe(false);
    // Busy for 400 ms in the check phase: the keepalive timer runs next, before the socket is read.
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        const until = Date.now() + 400;
        while (Date.now() < until);
        resolve();
      }),
    );
    await sleep(100);
    expect(conn.closed).toBe(false);
    // A peer that does go silent is still declared dead.
    await worker.terminate();
    for (let i = 0; i < 50 && !conn.closed; i++) await sleep(20);
    expect(conn.closed).toBe(true);
  });
});

describe('connectLibvirt handshake', () => {
  it('names the mechanism when the server wants authentication this client lacks', async () => {
    const srv = await startFakeServer((h, _b, peer) => {
      if (h.proc === REMOTE_PROC_AUTH_LIST)
        peer.reply(h, (w) => w.arrayVar([REMOTE_AUTH_SASL], 20, (x, v) => x.int(v)));
    });
    stops.push(srv.stop);
    const e = await connectLibvirt(srv.uri).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AuthUnsupportedError);
    expect((e as Error).message).toMatch(/requires sasl authentication/);
  });

  it('opens with AUTH_NONE, starts keepalive and sends the URI without transport', async () => {
    const seen: number[] = [];
    let openedName = '';
    const srv = await startFakeServer((h, body, peer) => {
      seen.push(h.proc);
      if (h.proc === REMOTE_PROC_AUTH_LIST) peer.reply(h, (w) => w.arrayVar([0], 20, (x, v) => x.int(v)));
      if (h.proc === REMOTE_PROC_CONNECT_SUPPORTS_FEATURE) peer.reply(h, (w) => w.int(1));
      if (h.proc === REMOTE_PROC_CONNECT_OPEN) {
        openedName = new XdrReader(body).optional((r) => r.string()) ?? '';
        peer.reply(h);
      }
    });
    stops.push(srv.stop);
    const client = await connectLibvirt(srv.uri);
    stops.push(() => client.channel.close());
    expect(seen).toEqual([
      REMOTE_PROC_AUTH_LIST,
      REMOTE_PROC_CONNECT_SUPPORTS_FEATURE,
      REMOTE_PROC_CONNECT_OPEN,
    ]);
    expect(openedName).toBe('qemu:///system');
  });

  it('refuses plain TCP unless marked insecure, and bad URIs, before dialling', () => {
    expect(() => dialerFor('qemu+tcp://10.0.0.1/system')).toThrow(InsecureTransportError);
    expect(dialerFor('qemu+tcp://10.0.0.1/system', { insecure: true }).describe).toBe('tcp:10.0.0.1:16509');
    expect(dialerFor('qemu+tls://h.example/system').describe).toBe('tls:h.example:16514');
    expect(dialerFor('qemu:///system').describe).toBe('unix:/var/run/libvirt/libvirt-sock');
    expect(() => dialerFor('http://x/system')).toThrow(UriError);
  });
});

describe('FrameDecoder under garbage', () => {
  it('yields frames across arbitrary chunking, byte for byte', () => {
    // Two frames of different lengths with distinct bytes, so a lost, doubled or reordered
    // byte at a chunk boundary changes what comes out.
    const frame = (len: number, salt: number) => {
      const f = Buffer.alloc(len);
      f.writeUInt32BE(len, 0);
      for (let i = 4; i < len; i++) f[i] = (i * 7 + salt) & 0xff;
      return f;
    };
    const a = frame(32, 1);
    const b = frame(45, 2);
    const both = Buffer.concat([a, b]);
    for (let size = 1; size <= 33; size++) {
      const d = new FrameDecoder();
      const out: Buffer[] = [];
      for (let i = 0; i < both.length; i += size) out.push(...d.push(both.subarray(i, i + size)));
      expect(out, `chunk size ${size}`).toEqual([a.subarray(4), b.subarray(4)]);
      expect(d.bufferedBytes).toBe(0);
    }
  });

  it('throws only ProtocolError on random bytes and never buffers past the frame limit', () => {
    let seed = 1;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const limit = 1 << 10;
    let refused = 0;
    let maxBuffered = 0;
    for (let i = 0; i < 3000; i++) {
      const d = new FrameDecoder(limit);
      // Feed chunks until the decoder refuses the stream or 64 chunks have gone in.
      for (let k = 0; k < 64; k++) {
        const bytes = Buffer.alloc(1 + (rnd() % 64));
        for (let j = 0; j < bytes.length; j++) bytes[j] = rnd() & 0xff;
        let threw: unknown = null;
        try {
          d.push(bytes);
        } catch (e) {
          threw = e;
        }
        if (threw) {
          expect(threw).toBeInstanceOf(ProtocolError);
          refused++;
          break;
        }
        maxBuffered = Math.max(maxBuffered, d.bufferedBytes);
        expect(d.bufferedBytes).toBeLessThanOrEqual(limit);
      }
    }
    // Random length words are almost always outside [28, limit]: nearly every stream is refused.
    expect(refused).toBeGreaterThan(2900);
    expect(maxBuffered).toBeLessThanOrEqual(limit);
  });
});
