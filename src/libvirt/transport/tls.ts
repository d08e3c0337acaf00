import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { readSecretFileSync } from '../../config/secret-file.ts';
import type { Dialer } from './index.ts';
import { whenConnected } from './index.ts';

export interface TlsMaterial {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** libvirt's default client PKI paths (pkipath= in the URI replaces the directory). */
export function defaultTlsMaterial(pkipath?: string): TlsMaterial {
  if (pkipath)
    return {
      caFile: `${pkipath}/cacert.pem`,
      certFile: `${pkipath}/clientcert.pem`,
      keyFile: `${pkipath}/clientkey.pem`,
    };
  return {
    caFile: '/etc/pki/CA/cacert.pem',
    certFile: '/etc/pki/libvirt/clientcert.pem',
    keyFile: '/etc/pki/libvirt/private/clientkey.pem',
  };
}

/** TLS with a client certificate; the server certificate must chain to the CA and name the host. */
export function tlsDialer(host: string, port: number, material: TlsMaterial, verify = true): Dialer {
  return {
    describe: `tls:${host}:${port}`,
    dial: async (timeoutMs) => {
      const read = (f: string, what: string, secret = false) => {
        try {
          return secret ? readSecretFileSync(f) : readFileSync(f);
        } catch (e) {
          if (!(e as NodeJS.ErrnoException).code) throw new Error(`TLS ${what} ${(e as Error).message}`);
          throw new Error(`TLS ${what} ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
      };
      const socket = connect({
        host,
        port,
        // SNI takes names only; an IP address is still checked against the certificate's IP SANs.
        ...(isIP(host) ? {} : { servername: host }),
        ca: read(material.caFile, 'CA certificate'),
        cert: read(material.certFile, 'client certificate'),
        key: read(material.keyFile, 'client key', true),
        rejectUnauthorized: verify,
      });
      const s = await whenConnected(socket, 'secureConnect', `tls ${host}:${port}`, timeoutMs);
      s.setNoDelay(true);
      await readCertificateVerdict(s, `tls ${host}:${port}`, timeoutMs);
      return s;
    },
  };
}

/**
 * After the TLS handshake libvirtd checks the client certificate and sends one byte: 1 when
 * it accepts it. Anything else (or a close) means refused; libvirt's own client reads it too.
 */
function readCertificateVerdict(s: TLSSocket, what: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('close', onClose);
      s.off('error', onError);
      if (err) {
        s.destroy();
        reject(err);
      } else resolve();
    };
    const onData = (chunk: Buffer) => {
      s.pause();
      if (chunk[0] !== 1) return done(new Error(`${what}: libvirtd refused the client certificate`));
      if (chunk.length > 1) s.unshift(chunk.subarray(1));
      done();
    };
    const onClose = () =>
      done(
        new Error(
          `${what}: libvirtd closed the connection after the TLS handshake (client certificate refused?)`,
        ),
      );
    // A reset while waiting (libvirtd restarting, a firewall, a fenced host) fails the dial.
    const onError = (e: Error) => done(new Error(`${what}: ${e.message} before the certificate verdict`));
    const timer = setTimeout(
      () => done(new Error(`${what}: no certificate verdict within ${timeoutMs} ms`)),
      timeoutMs,
    );
    s.on('data', onData);
    s.once('close', onClose);
    s.once('error', onError);
  });
}
