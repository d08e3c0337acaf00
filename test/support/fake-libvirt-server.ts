import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameDecoder } from '../../src/libvirt/frame-decoder.ts';
import {
  decodeVirNetMessageHeader,
  encodeVirNetMessageError,
  encodeVirNetMessageHeader,
  VIR_NET_ERROR,
  VIR_NET_OK,
  VIR_NET_REPLY,
  type VirNetMessageHeader,
} from '../../src/libvirt/protocol/generated/virnet.ts';
import { XdrReader, XdrWriter } from '../../src/libvirt/xdr.ts';

export type Handler = (h: VirNetMessageHeader, body: Buffer, peer: FakePeer) => void;

/** The server side of one client connection, speaking libvirt's real framing. */
export class FakePeer {
  constructor(readonly socket: Socket) {}

  frame(h: VirNetMessageHeader, body?: (w: XdrWriter) => void): Buffer {
    const w = new XdrWriter();
    w.uint(0);
    encodeVirNetMessageHeader(w, h);
    body?.(w);
    const f = w.finish();
    f.writeUInt32BE(f.length, 0);
    return f;
  }

  reply(call: VirNetMessageHeader, body?: (w: XdrWriter) => void): void {
    this.socket.write(this.frame({ ...call, type: VIR_NET_REPLY, status: VIR_NET_OK }, body));
  }

  error(call: VirNetMessageHeader, code: number, message: string): void {
    this.socket.write(
      this.frame({ ...call, type: VIR_NET_REPLY, status: VIR_NET_ERROR }, (w) =>
        encodeVirNetMessageError(w, {
          code,
          domain: 10,
          message,
          level: 2,
          dom: null,
          str1: message,
          str2: null,
          str3: null,
          int1: -1,
          int2: -1,
          net: null,
        }),
      ),
    );
  }

  raw(bytes: Buffer): void {
    this.socket.write(bytes);
  }
}

/** Speaks libvirt's framing on one accepted socket (plain or TLS); the handler answers. */
export function serveLibvirt(socket: Socket, handler: Handler): FakePeer {
  const peer = new FakePeer(socket);
  const dec = new FrameDecoder();
  socket.on('data', (chunk: Buffer) => {
    for (const f of dec.push(chunk)) {
      const r = new XdrReader(f);
      const h = decodeVirNetMessageHeader(r);
      handler(h, f.subarray(r.offset), peer);
    }
  });
  socket.on('error', () => undefined);
  return peer;
}

/** A libvirt RPC server on a unix socket in a temp dir; the handler decides every answer. */
export async function startFakeServer(
  handler: Handler,
): Promise<{ path: string; uri: string; peers: FakePeer[]; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'kz-fake-libvirt-'));
  const path = join(dir, 'sock');
  const peers: FakePeer[] = [];
  const server: Server = createServer((socket) => {
    peers.push(serveLibvirt(socket, handler));
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    uri: `qemu+unix:///system?socket=${path}`,
    peers,
    stop: async () => {
      for (const p of peers) p.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
