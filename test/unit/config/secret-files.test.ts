import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatConfigError, isConfigError, loadConfig } from '../../../src/config/index.ts';
import { sshDialer } from '../../../src/libvirt/transport/ssh.ts';
import { tlsDialer } from '../../../src/libvirt/transport/tls.ts';

const PKI = fileURLToPath(new URL('../../fixtures/config/valid/pki/', import.meta.url));

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kz-secret-'));
  for (const f of ['ca.pem', 'cert.pem', 'key.pem']) copyFileSync(join(PKI, f), join(dir, f));
  chmodSync(join(dir, 'key.pem'), 0o600);
  writeFileSync(join(dir, 'ipmi.password'), 'hunter2\n', { mode: 0o600 });
  writeFileSync(
    join(dir, 'keizokud.yaml'),
    [
      'sites: [{ name: dc1 }]',
      'hosts:',
      '  - { name: h1, uri: "qemu+tls://h1.example.org/system", site: dc1, managementAddress: h1.example.org,',
      '      fence: { method: ipmi, address: 10.0.9.1, username: admin, passwordFile: ipmi.password } }',
      'libvirt: { tls: { caFile: ca.pem, certFile: cert.pem, keyFile: key.pem } }',
      'redis: { url: "redis://127.0.0.1:6379/0" }',
      '',
    ].join('\n'),
  );
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function problems(): Promise<string | null> {
  return loadConfig(join(dir, 'keizokud.yaml'), {}).then(
    () => null,
    (e: unknown) => (isConfigError(e) ? formatConfigError(e) : String(e)),
  );
}

describe('secret files keizokud reads', () => {
  it('F25: key and password files only their owner can read are accepted', async () => {
    expect(await problems()).toBeNull();
  });

  it('F25: --check-config refuses a key file group or others can read, naming the file and field', async () => {
    chmodSync(join(dir, 'key.pem'), 0o640);
    expect(await problems()).toMatch(
      /keizokud\.yaml: libvirt\.tls\.keyFile: readable by group or others \(mode 0640\): chmod 600 .*key\.pem$/,
    );
  });

  it('F25: --check-config refuses a fence password file others can read', async () => {
    chmodSync(join(dir, 'ipmi.password'), 0o604);
    expect(await problems()).toMatch(
      /hosts\[0\]\.fence\.passwordFile: readable by group or others \(mode 0604\): chmod 600 .*ipmi\.password$/,
    );
  });

  it('F25: a TLS client key named by the URI (pkipath) that others can read fails the dial, naming it', async () => {
    chmodSync(join(dir, 'key.pem'), 0o644);
    const material = {
      caFile: join(dir, 'ca.pem'),
      certFile: join(dir, 'cert.pem'),
      keyFile: join(dir, 'key.pem'),
    };
    await expect(tlsDialer('127.0.0.1', 1, material).dial(1_000)).rejects.toThrow(
      `TLS client key ${join(dir, 'key.pem')}: readable by group or others (mode 0644): chmod 600 it`,
    );
  });

  it('F25: an SSH key (keyfile= in the URI) that others can read fails the dial, naming it', async () => {
    chmodSync(join(dir, 'key.pem'), 0o644);
    const d = sshDialer({
      host: '127.0.0.1',
      port: 1,
      keyFile: join(dir, 'key.pem'),
      noVerify: true,
      remoteName: 'qemu:///system',
    });
    await expect(d.dial(1_000)).rejects.toThrow(
      `ssh 127.0.0.1:1: key ${join(dir, 'key.pem')}: readable by group or others (mode 0644): chmod 600 it`,
    );
  });
});
