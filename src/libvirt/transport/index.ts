import type { Duplex } from 'node:stream';

/** Opens the byte stream a libvirt connection runs over. */
export interface Dialer {
  /** What is dialled, for messages (never contains secrets). */
  readonly describe: string;
  dial(timeoutMs: number): Promise<Duplex>;
}

/** Resolves once `socket` emits `readyEvent`, rejects on error or after timeoutMs. */
export function whenConnected<S extends Duplex>(
  socket: S,
  readyEvent: string,
  what: string,
  timeoutMs: number,
): Promise<S> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${what}: no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once(readyEvent, () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (e: Error) => {
      clearTimeout(timer);
      reject(new Error(`${what}: ${e.message}`));
    });
  });
}
