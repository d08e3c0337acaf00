import { connect, type Socket } from 'node:net';

export interface TcpSessionResult {
  /** The connection stayed open and no heartbeat waited longer than the break threshold. */
  survived: boolean;
  heartbeats: number;
  echoed: number;
  /** Longest time between two echoes (or start and the first), ms. */
  longestGapMs: number;
  /** Why the session counts as broken, when it does. */
  reason?: string;
}

export interface TcpSessionOptions {
  host: string;
  port: number;
  heartbeatMs: number;
  /** A session with no echo for this long counts as broken (what an application timeout would do). */
  breakAfterMs: number;
  connectTimeoutMs?: number;
  /** One connection attempt (tests replace it); the default is a TCP connect. */
  attempt?: (host: string, port: number, ms: number) => Promise<Socket>;
}

/**
 * The echo service runs in the guest, which the controller does not trust: a heartbeat line is
 * `hb N` (a few bytes), so more than this without a newline ends the check rather than growing
 * a buffer for as long as the tenant likes. Likewise heartbeats the guest never reads.
 */
export const MAX_LINE_CHARS = 256;
export const MAX_UNSENT_BYTES = 64 * 1024;

/**
 * A TCP connection held open to an echo service with a numbered heartbeat: did the session
 * survive the move? Clocks come from performance.now(), so this is an adapter, not core.
 * stop() may be called any number of times; every path of its user must call it once.
 */
export class TcpSessionCheck {
  private socket: Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private sent = 0;
  private echoed = 0;
  private lastEcho = 0;
  private longestGap = 0;
  private broken: string | null = null;
  private buffer = '';
  private released = false;

  constructor(private readonly o: TcpSessionOptions) {}

  /**
   * Connects, trying again every quarter second until the connect timeout: an unreachable
   * first attempt (a neighbour entry not yet resolved after the last move) says nothing about
   * the move this session is to measure. A refusal ends it at once: the guest answers, and has
   * no echo service on that port (a move must not wait for one that will not come).
   */
  async start(): Promise<void> {
    const limit = this.o.connectTimeoutMs ?? 5_000;
    const deadline = performance.now() + limit;
    let last = '';
    for (let attempts = 1; ; attempts++) {
      const left = deadline - performance.now();
      if (left > 0 && !this.released) {
        try {
          this.open(await (this.o.attempt ?? connectWithin)(this.o.host, this.o.port, left));
          return;
        } catch (e) {
          last = (e as Error).message;
          if ((e as NodeJS.ErrnoException).code === 'ECONNREFUSED')
            throw new Error(`tcp ${this.o.host}:${this.o.port}: ${last}`);
        }
      }
      if (this.released || performance.now() >= deadline)
        throw new Error(
          `tcp ${this.o.host}:${this.o.port}: no connection within ${limit} ms (${attempts} attempts; last: ${last})`,
        );
      await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - performance.now()))));
    }
  }

  private open(s: Socket): void {
    if (this.released) {
      s.destroy();
      throw new Error('stopped before the session was open');
    }
    s.setNoDelay(true);
    this.socket = s;
    this.lastEcho = performance.now();
    s.setEncoding('utf8');
    s.on('data', (d: string) => this.onData(d));
    s.on('close', () => this.break('connection closed'));
    s.on('error', (e: Error) => this.break(`connection error: ${e.message}`));
    this.timer = setInterval(() => this.beat(), this.o.heartbeatMs);
  }

  private beat(): void {
    const silent = performance.now() - this.lastEcho;
    if (silent > this.o.breakAfterMs) this.break(`no echo for ${Math.round(silent)} ms`);
    if (this.broken || !this.socket || this.socket.destroyed) return;
    if (this.socket.writableLength > MAX_UNSENT_BYTES) {
      this.abandon(`the echo service read none of the last ${this.socket.writableLength} bytes sent`);
      return;
    }
    this.sent++;
    this.socket.write(`hb ${this.sent}\n`);
  }

  private onData(d: string): void {
    if (this.released) return;
    this.buffer += d;
    const lines = this.buffer.split('\n');
    this.buffer = lines.pop() ?? '';
    if (this.buffer.length > MAX_LINE_CHARS) {
      this.abandon(`the echo service sent more than ${MAX_LINE_CHARS} characters without a newline`);
      return;
    }
    for (const l of lines) {
      if (!/^hb \d+$/.test(l)) continue;
      const now = performance.now();
      this.longestGap = Math.max(this.longestGap, now - this.lastEcho);
      this.lastEcho = now;
      this.echoed++;
    }
  }

  private break(reason: string): void {
    this.broken ??= reason;
  }

  /** The guest misbehaves: the check is over, broken for that reason; nothing more is read. */
  private abandon(reason: string): void {
    this.broken ??= reason;
    this.buffer = '';
    this.release();
  }

  private release(): void {
    this.released = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.socket?.removeAllListeners('close');
    this.socket?.removeAllListeners('data');
    this.socket?.destroy();
  }

  stop(): TcpSessionResult {
    const open = this.socket !== null && !this.socket.destroyed;
    this.release();
    const gap = Math.max(this.longestGap, performance.now() - this.lastEcho);
    return {
      survived: open && this.broken === null,
      heartbeats: this.sent,
      echoed: this.echoed,
      longestGapMs: Math.round(gap),
      ...(this.broken ? { reason: this.broken } : {}),
    };
  }
}

/** One connection attempt: the socket once connected, or why not (an error, or the time ran out). */
function connectWithin(host: string, port: number, ms: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error('timed out'));
    }, ms);
    s.once('connect', () => {
      clearTimeout(t);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}
