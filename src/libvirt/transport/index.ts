import type { Duplex } from 'node:stream';

/** Opens the byte stream a libvirt connection runs over. */
export interface Dialer {
  /** What is dialled, for messages (never contains secrets). */
  readonly describe: string;
  dial(timeoutMs: number): Promise<Duplex>;
}

/**
 * An 'error' listener that stays on a dialled stream for its whole life. An 'error' with no
 * listener is thrown and kills the process; a reset can come at any step (between the
 * handshake and libvirtd's verdict byte, or before LibvirtConnection attaches its own
 * listener). The 'close' that follows every error is what the later steps watch.
 */
export function guardErrors(stream: Duplex): void {
  stream.on('error', () => undefined);
}

/** Resolves once `socket` emits `readyEvent`, rejects on error or after timeoutMs. */
export function whenConnected<S extends Duplex>(
  socket: S,
  readyEvent: string,
  what: string,
  timeoutMs: number,
): Promise<S> {
  guardErrors(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off('error', onError);
      socket.destroy();
      reject(new Error(`${what}: no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    const onError = (e: Error) => {
      clearTimeout(timer);
      socket.off(readyEvent, onReady);
      socket.destroy();
      reject(new Error(`${what}: ${e.message}`));
    };
    const onReady = () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    };
    socket.once(readyEvent, onReady);
    socket.once('error', onError);
  });
}
