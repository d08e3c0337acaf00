import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type TLSSocket } from 'node:tls';
import {
  REMOTE_PROC_AUTH_LIST,
  REMOTE_PROC_CONNECT_OPEN,
  REMOTE_PROC_CONNECT_SUPPORTS_FEATURE,
} from '../../src/libvirt/protocol/generated/remote.ts';
import { type FakePeer, type Handler, serveLibvirt } from './fake-libvirt-server.ts';

export interface TestPki {
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** libvirt's client side: CA, client certificate and key. */
  client: { caFile: string; certFile: string; keyFile: string };
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, in `dir` (keys 0600). */
export function makeTestPki(dir: string): TestPki {
  const ossl = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = { cert: join(dir, 'ca.pem'), key: join(dir, 'ca-key.pem') };
  ossl(['req', '-x509', ...ec, '-days', '1', '-keyout', ca.key, '-out', ca.cert, '-subj', '/CN=test CA']);
  const issue = (name: string, ext: string) => {
    const key = join(dir, `${name}-key.pem`);
    const cert = join(dir, `${name}.pem`);
    writeFileSync(join(dir, `${name}.ext`), ext);
    ossl(['req', '-new', ...ec, '-keyout', key, '-out', join(dir, `${name}.csr`), '-subj', `/CN=${name}`]);
    ossl([
      'x509',
      '-req',
      '-in',
      join(dir, `${name}.csr`),
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-set_serial',
      String(Date.now()),
      '-days',
      '1',
      '-out',
      cert,
      '-extfile',
      join(dir, `${name}.ext`),
    ]);
    chmodSync(key, 0o600);
    return { cert, key };
  };
  const server = issue('server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  const client = issue('client', 'extendedKeyUsage=clientAuth\n');
  return {
    caFile: ca.cert,
    serverCertFile: server.cert,
    serverKeyFile: server.key,
    client: { caFile: ca.cert, certFile: client.cert, keyFile: client.key },
  };
}

/** Answers what connectLibvirt asks while opening: AUTH_LIST (none), keepalive support, OPEN. */
export const openHandler: Handler = (h, _body, peer: FakePeer) => {
  if (h.proc === REMOTE_PROC_AUTH_LIST) peer.reply(h, (w) => w.arrayVar([0], 20, (x, v) => x.int(v)));
  if (h.proc === REMOTE_PROC_CONNECT_SUPPORTS_FEATURE) peer.reply(h, (w) => w.int(0));
  if (h.proc === REMOTE_PROC_CONNECT_OPEN) peer.reply(h);
};

/**
 * A libvirtd stand-in on 127.0.0.1 over TLS: after the handshake it sends the certificate
 * verdict byte (1, accepted) as libvirtd does, then speaks RPC through `handler`.
 * `onSecure` runs when the server side of the handshake is done, before the verdict is sent;
 * it may delay the verdict by returning false and calling `sendVerdict` later (or never).
 */
export async function startFakeTlsLibvirt(
  pki: TestPki,
  handler: Handler,
  onSecure?: (sendVerdict: () => void, socket: TLSSocket) => boolean | undefined,
): Promise<{ port: number; stop(): Promise<void> }> {
  const sockets = new Set<TLSSocket>();
  const server = createServer(
    {
      cert: readFileSync(pki.serverCertFile),
      key: readFileSync(pki.serverKeyFile),
      ca: readFileSync(pki.caFile),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
      const sendVerdict = () => {
        if (!socket.destroyed) socket.write(Buffer.from([1]));
      };
      if (onSecure?.(sendVerdict, socket) !== false) sendVerdict();
      serveLibvirt(socket, handler);
    },
  );
  // A reset by the proxy shows up here as a handshake error; it is expected.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
