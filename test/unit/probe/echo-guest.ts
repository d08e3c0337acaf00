import { createServer, type Server, type Socket } from 'node:net';

/** A loopback "guest" whose echo service the test scripts; it records how each connection ended. */
export async function guest(onConnection: (s: Socket) => void) {
  const closed: Promise<void>[] = [];
  const server: Server = createServer((s) => {
    s.on('error', () => undefined);
    closed.push(new Promise((r) => s.once('close', () => r())));
    onConnection(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    /** Whether every connection made so far has closed within `ms`. */
    allClosed: async (ms = 2_000) => {
      let t: NodeJS.Timeout | undefined;
      const late = new Promise<boolean>((r) => {
        t = setTimeout(() => r(false), ms);
      });
      const ok = await Promise.race([Promise.all(closed).then(() => true), late]);
      clearTimeout(t);
      return ok;
    },
    connections: () => closed.length,
    /**
     * The number of connections once it reaches `n` or `ms` passes: the server hears of a
     * connection on its own turn of the event loop, which may come after the client's.
     */
    connectionsReaching: async (n: number, ms = 2_000) => {
      for (const end = Date.now() + ms; closed.length < n && Date.now() < end; )
        await new Promise((r) => setTimeout(r, 10));
      return closed.length;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
