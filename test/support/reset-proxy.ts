import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/**
 * A TCP proxy that sends a reset (RST) to the client at a chosen point of a connection: at
 * once, or after a number of bytes has passed in one direction. It never looks inside the
 * stream, so the same proxy cuts a TLS handshake, libvirtd's verdict byte or an RPC.
 */
export type ResetPoint =
  | { at: 'accept' }
  /** After `after` bytes in `direction`, or after `orAfterMs` if that many never pass. */
  | { at: 'bytes'; direction: 'toServer' | 'toClient'; after: number; orAfterMs?: number }
  /** Forward until resetOpen() is called (for points only the server can see). */
  | { at: 'manual' };

export interface ResetProxy {
  port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Connections reset so far. */
  readonly resets: number;
  /** Resets every connection that is open now. */
  resetOpen(): void;
  close(): Promise<void>;
}

export async function startResetProxy(o: {
  listenHost: string;
  listenPort?: number;
  targetHost: string;
  targetPort: number;
  /** Where connection n (from 0) is reset; null forwards it untouched. */
  plan: (n: number) => ResetPoint | null;
}): Promise<ResetProxy> {
  let connections = 0;
  let resets = 0;
  const open = new Set<() => void>();
  const server: Server = createServer((client: Socket) => {
    const point = o.plan(connections++);
    client.on('error', () => undefined);
    let done = false;
    let upstream: Socket | undefined;
    const reset = () => {
      if (done) return;
      done = true;
      resets++;
      open.delete(reset);
      client.resetAndDestroy();
      upstream?.destroy();
    };
    if (point?.at === 'accept') {
      reset();
      return;
    }
    const up = tcpConnect({ host: o.targetHost, port: o.targetPort });
    upstream = up;
    up.on('error', () => client.destroy());
    open.add(reset);
    const deadline =
      point?.at === 'bytes' && point.orAfterMs !== undefined ? setTimeout(reset, point.orAfterMs) : null;
    const sent = { toServer: 0, toClient: 0 };
    const forward = (from: Socket, to: Socket, direction: 'toServer' | 'toClient') =>
      from.on('data', (chunk: Buffer) => {
        if (done) return;
        if (
          point?.at === 'bytes' &&
          point.direction === direction &&
          sent[direction] + chunk.length >= point.after
        ) {
          const head = chunk.subarray(0, point.after - sent[direction]);
          sent[direction] += head.length;
          from.pause();
          // The reset goes out only once the bytes before it are on their way.
          if (head.length === 0) reset();
          else to.write(head, () => reset());
          return;
        }
        sent[direction] += chunk.length;
        to.write(chunk);
      });
    forward(client, up, 'toServer');
    forward(up, client, 'toClient');
    const end = () => {
      if (deadline) clearTimeout(deadline);
      open.delete(reset);
      client.destroy();
      up.destroy();
    };
    client.on('close', end);
    up.on('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.listenPort ?? 0, o.listenHost, resolve);
  });
  return {
    port: (server.address() as { port: number }).port,
    get connections() {
      return connections;
    },
    get resets() {
      return resets;
    },
    resetOpen: () => {
      for (const r of [...open]) r();
    },
    close: async () => {
      for (const r of [...open]) r();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
