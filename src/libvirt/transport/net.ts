import { connect } from 'node:net';
import type { Dialer } from './index.ts';
import { whenConnected } from './index.ts';

/** libvirtd's local socket. */
export function unixDialer(path: string): Dialer {
  return {
    describe: `unix:${path}`,
    dial: (timeoutMs) => whenConnected(connect({ path }), 'connect', `unix socket ${path}`, timeoutMs),
  };
}

/** Plain TCP: no encryption, no authentication. Only for labs; the caller must have opted in. */
export function tcpDialer(host: string, port: number): Dialer {
  return {
    describe: `tcp:${host}:${port}`,
    dial: async (timeoutMs) => {
      const s = await whenConnected(connect({ host, port }), 'connect', `tcp ${host}:${port}`, timeoutMs);
      s.setNoDelay(true);
      return s;
    },
  };
}
