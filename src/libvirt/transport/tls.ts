import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
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
      const read = (f: string, what: string) => {
        try {
          return readFileSync(f);
        } catch (e) {
          throw new Error(`TLS ${what} ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
      };
      const socket = connect({
        host,
        port,
        servername: host,
        ca: read(material.caFile, 'CA certificate'),
        cert: read(material.certFile, 'client certificate'),
        key: read(material.keyFile, 'client key'),
        rejectUnauthorized: verify,
      });
      const s = await whenConnected(socket, 'secureConnect', `tls ${host}:${port}`, timeoutMs);
      s.setNoDelay(true);
      return s;
    },
  };
}
