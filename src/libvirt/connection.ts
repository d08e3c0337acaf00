import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import {
  CallTimeoutError,
  ConnectionClosedError,
  ConnectionError,
  KeepaliveTimeoutError,
  LibvirtError,
  ProtocolError,
} from './errors.ts';
import { FrameDecoder } from './frame-decoder.ts';
import {
  KEEPALIVE_PROC_PING,
  KEEPALIVE_PROC_PONG,
  KEEPALIVE_PROGRAM,
  KEEPALIVE_PROTOCOL_VERSION,
} from './protocol/generated/keepalive.ts';
import {
  decodeVirNetMessageError,
  decodeVirNetMessageHeader,
  encodeVirNetMessageHeader,
  VIR_NET_CALL,
  VIR_NET_ERROR,
  VIR_NET_MESSAGE,
  VIR_NET_OK,
  VIR_NET_REPLY,
  type VirNetMessageHeader,
} from './protocol/generated/virnet.ts';
import { XdrError, XdrReader, XdrWriter } from './xdr.ts';

/** The header of a keepalive PING or PONG (a message of its own program, no body). */
export function keepaliveMessage(proc: number): VirNetMessageHeader {
  return {
    prog: KEEPALIVE_PROGRAM,
    vers: KEEPALIVE_PROTOCOL_VERSION,
    proc,
    type: VIR_NET_MESSAGE,
    serial: 0,
    status: VIR_NET_OK,
  };
}

export interface ConnectionOptions {
  /** Deadline of a call unless the call gives its own (default 60 s). */
  callTimeoutMs?: number;
  /** Keepalive: PING after this much silence (default 5 s); 0 disables. */
  keepaliveIntervalMs?: number;
  /** Peer declared dead after interval x count of silence (default 5). */
  keepaliveCount?: number;
  /** Largest frame accepted (default VIR_NET_MESSAGE_MAX, 32 MiB). */
  maxFrameBytes?: number;
  log?: (msg: string) => void;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  decode: ((r: XdrReader) => unknown) | null;
  timer: NodeJS.Timeout;
  procedure: number;
}

/**
 * One libvirt RPC connection over any byte stream: framing, serials, many calls in flight,
 * replies matched by serial, typed errors, keepalive, event messages. Emits 'event'
 * (program, procedure, body) and 'close' (error or undefined) once.
 */
export class LibvirtConnection extends EventEmitter {
  private serial = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly decoder: FrameDecoder;
  private lastHeard = Date.now();
  private lastPing = 0;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private corked = false;
  private closedWith: Error | null = null;
  private readonly callTimeoutMs: number;
  private readonly log: (msg: string) => void;

  constructor(
    private readonly stream: Duplex,
    private readonly opts: ConnectionOptions = {},
  ) {
    super();
    this.callTimeoutMs = opts.callTimeoutMs ?? 60_000;
    this.log = opts.log ?? (() => undefined);
    this.decoder = new FrameDecoder(opts.maxFrameBytes);
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (e: Error) => this.fail(new ConnectionClosedError(`connection error: ${e.message}`)));
    stream.on('close', () => this.fail(new ConnectionClosedError('connection closed by peer')));
    // A dialer may hand the stream over paused (TLS reads libvirtd's verdict byte first).
    stream.resume();
    // Reset between the dial and here: its 'close' has already gone by.
    if (stream.destroyed)
      this.closedWith = new ConnectionClosedError('connection closed before it was opened');
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Starts sending PINGs and watching for silence (after the server agreed to keepalive). */
  startKeepalive(): void {
    const interval = this.opts.keepaliveIntervalMs ?? 5_000;
    const count = this.opts.keepaliveCount ?? 5;
    if (interval <= 0 || this.keepaliveTimer || this.closed) return;
    this.lastHeard = Date.now();
    const tick = Math.max(10, Math.min(interval / 4, 1_000));
    let confirming = false;
    this.keepaliveTimer = setInterval(() => {
      const silent = Date.now() - this.lastHeard;
      if (silent >= interval * count) {
        // Confirmed after the event loop's next read of its sockets: when this process was busy
        // (a stall of the main thread longer than interval x count), timers run before the
        // reads, and the peer's answers of that time are still waiting unread in the socket.
        if (confirming) return;
        confirming = true;
        setImmediate(() => {
          confirming = false;
          const still = Date.now() - this.lastHeard;
          if (still >= interval * count)
            this.fail(
              new KeepaliveTimeoutError(
                `no keepalive answer for ${still} ms (${count} x ${interval} ms): peer presumed dead`,
              ),
            );
        });
      } else if (silent >= interval && Date.now() - this.lastPing >= interval) {
        this.lastPing = Date.now();
        this.send(keepaliveMessage(KEEPALIVE_PROC_PING));
      }
    }, tick);
    this.keepaliveTimer.unref();
  }

  call<R>(
    program: number,
    version: number,
    procedure: number,
    encodeArgs: ((w: XdrWriter) => void) | null,
    decodeRet: ((r: XdrReader) => R) | null,
    opts: { timeoutMs?: number } = {},
  ): Promise<R> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const serial = this.serial;
    this.serial = (this.serial + 1) >>> 0 || 1;
    return new Promise<R>((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? this.callTimeoutMs;
      const timer = setTimeout(() => {
        this.pending.delete(serial);
        reject(new CallTimeoutError(`call ${procedure} not answered within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(serial, {
        resolve: resolve as (v: unknown) => void,
        reject,
        decode: decodeRet,
        timer,
        procedure,
      });
      try {
        this.send(
          { prog: program, vers: version, proc: procedure, type: VIR_NET_CALL, serial, status: VIR_NET_OK },
          encodeArgs,
        );
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(serial);
        reject(
          e instanceof XdrError
            ? new ProtocolError(`cannot encode call ${procedure}: ${e.message}`)
            : (e as Error),
        );
      }
    });
  }

  /** Closes the stream and fails every pending call; idempotent. */
  async close(): Promise<void> {
    if (this.closedWith) return;
    this.fail(new ConnectionClosedError('connection closed'));
  }

  private send(header: VirNetMessageHeader, encodeBody: ((w: XdrWriter) => void) | null = null): void {
    const w = new XdrWriter();
    w.uint(0); // length, filled in below
    encodeVirNetMessageHeader(w, header);
    encodeBody?.(w);
    const frame = w.finish();
    frame.writeUInt32BE(frame.length, 0);
    // The frames of one tick (calls made together, a PONG) go out in one write.
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      process.nextTick(() => {
        this.corked = false;
        this.stream.uncork();
      });
    }
    this.stream.write(frame);
  }

  private onData(chunk: Buffer): void {
    if (this.closedWith) return;
    this.lastHeard = Date.now();
    let frames: Buffer[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    for (const f of frames) {
      try {
        this.onFrame(f);
      } catch (e) {
        this.fail(
          e instanceof ConnectionError ? e : new ProtocolError(`bad message: ${(e as Error).message}`),
        );
        return;
      }
    }
  }

  private onFrame(frame: Buffer): void {
    const r = new XdrReader(frame);
    const h = decodeVirNetMessageHeader(r);
    const body = frame.subarray(r.offset);
    if (h.prog === KEEPALIVE_PROGRAM) {
      if (h.proc === KEEPALIVE_PROC_PING) {
        this.send(keepaliveMessage(KEEPALIVE_PROC_PONG));
      }
      return;
    }
    if (h.type === VIR_NET_MESSAGE) {
      this.emit('event', h.prog, h.proc, body);
      return;
    }
    if (h.type !== VIR_NET_REPLY) {
      this.log(`ignoring message of type ${h.type} for procedure ${h.proc}`);
      return;
    }
    const p = this.pending.get(h.serial);
    if (!p) {
      this.log(`reply for unknown serial ${h.serial} (procedure ${h.proc}) dropped`);
      return;
    }
    this.pending.delete(h.serial);
    clearTimeout(p.timer);
    const br = new XdrReader(body);
    try {
      if (h.status === VIR_NET_ERROR) {
        p.reject(new LibvirtError(decodeVirNetMessageError(br)));
      } else if (h.status === VIR_NET_OK) {
        const v = p.decode ? p.decode(br) : undefined;
        br.assertEnd();
        p.resolve(v);
      } else {
        p.reject(
          new ProtocolError(
            `reply status ${h.status} for procedure ${p.procedure} (streams are not supported)`,
          ),
        );
      }
    } catch (e) {
      // A reply that does not decode fails its call only; the stream itself is still in sync.
      p.reject(new ProtocolError(`cannot decode reply of procedure ${p.procedure}: ${(e as Error).message}`));
    }
  }

  private fail(err: Error): void {
    if (this.closedWith) return;
    this.closedWith = err;
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.stream.destroy();
    this.emit('close', err);
  }
}
