import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './exec.ts';
import type { LabLayout } from './layout.ts';

/** A lab's own certificate authority and the certificates libvirt's TLS transport needs. */
export interface LabPki {
  caFile: string;
  /** A client certificate and key any lab user may use (libvirt's clientcert/clientkey). */
  clientCertFile: string;
  clientKeyFile: string;
  /** Per host: server certificate and key, named for its management address. */
  hosts: Record<string, { certFile: string; keyFile: string; sshHostKeyFile: string }>;
  /** SSH: the client key every lab sshd accepts for root, and known_hosts with every host key. */
  sshClientKeyFile: string;
  sshKnownHostsFile: string;
  sshAuthorizedKeysFile: string;
}

async function sshKey(file: string, comment: string): Promise<string> {
  if (!existsSync(file))
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  chmodSync(file, 0o600);
  return readFileSync(`${file}.pub`, 'utf8').trim();
}

export const pkiDir = (labDir: string) => join(labDir, 'pki');

async function issue(
  dir: string,
  name: string,
  subject: string,
  ext: string,
  ca: { cert: string; key: string },
) {
  const key = join(dir, `${name}-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}-cert.pem`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, ext);
  await run('openssl', [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    csr,
    '-subj',
    subject,
  ]);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    // A random serial per certificate: certificates are issued in parallel, and
    // -CAcreateserial's shared serial file is not safe for that (truncated reads).
    '-set_serial',
    `0x${randomBytes(15).toString('hex')}`,
    '-days',
    '30',
    '-out',
    cert,
    '-extfile',
    extFile,
  ]);
  // keizokud refuses a key group or others can read; openssl makes it 0600 today, say so.
  chmodSync(key, 0o600);
  return { certFile: cert, keyFile: key };
}

/** Makes the CA, one server certificate per host (IP SAN) and a client certificate. */
export async function createLabPki(labDir: string, layout: LabLayout): Promise<LabPki> {
  const dir = pkiDir(labDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = { cert: join(dir, 'ca-cert.pem'), key: join(dir, 'ca-key.pem') };
  if (!existsSync(ca.cert)) {
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '30',
      '-keyout',
      ca.key,
      '-out',
      ca.cert,
      '-subj',
      `/O=keizoku lab ${layout.id}/CN=keizoku lab ${layout.id} CA`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  }
  const hosts: LabPki['hosts'] = {};
  const known: string[] = [];
  await Promise.all(
    layout.hosts.map(async (h) => {
      const sshHostKeyFile = join(dir, `${h.name}-ssh-host-key`);
      const pub = await sshKey(sshHostKeyFile, `${h.name} lab ${layout.id}`);
      known.push(`${h.mgmtAddress} ${pub.split(' ').slice(0, 2).join(' ')}`);
      const tls = await issue(
        dir,
        h.name,
        `/O=keizoku lab ${layout.id}/CN=${h.mgmtAddress}`,
        `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:${h.mgmtAddress}\n`,
        ca,
      );
      hosts[h.name] = { ...tls, sshHostKeyFile };
    }),
  );
  const sshClientKeyFile = join(dir, 'ssh-client-key');
  const sshKnownHostsFile = join(dir, 'known_hosts');
  const sshAuthorizedKeysFile = join(dir, 'authorized_keys');
  writeFileSync(sshAuthorizedKeysFile, `${await sshKey(sshClientKeyFile, `keizoku lab ${layout.id}`)}\n`);
  writeFileSync(sshKnownHostsFile, `${known.sort().join('\n')}\n`);
  const client = await issue(
    dir,
    'client',
    `/O=keizoku lab ${layout.id}/CN=keizoku`,
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
    ca,
  );
  return {
    caFile: ca.cert,
    clientCertFile: client.certFile,
    clientKeyFile: client.keyFile,
    hosts,
    sshClientKeyFile,
    sshKnownHostsFile,
    sshAuthorizedKeysFile,
  };
}
