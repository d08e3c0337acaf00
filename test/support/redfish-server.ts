import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A small Redfish BMC over HTTPS on 127.0.0.1: one system whose PowerState turns Off a moment
 * after a ForceOff, basic auth, and a self-signed certificate made with openssl at start.
 */
export interface RedfishBmc {
  port: number;
  dir: string;
  caFile: string;
  passwordFile: string;
  username: string;
  /** ResetType of every accepted reset, in order. */
  resets: string[];
  /** Authorization headers seen that did not match. */
  rejected: number;
  state: { power: 'On' | 'Off'; offAfterMs: number; neverOff: boolean; refuseReset: boolean };
  close(): Promise<void>;
}

export async function startRedfishBmc(systemId = '1'): Promise<RedfishBmc> {
  const dir = mkdtempSync(join(tmpdir(), 'keizoku-redfish-'));
  const key = join(dir, 'key.pem');
  const caFile = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      caFile,
    ],
    { stdio: 'ignore' },
  );
  const passwordFile = join(dir, 'password');
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  const username = 'fence';
  const expected = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  const bmc = {
    dir,
    caFile,
    passwordFile,
    username,
    resets: [] as string[],
    rejected: 0,
    state: { power: 'On' as 'On' | 'Off', offAfterMs: 200, neverOff: false, refuseReset: false },
  };
  const system = `/redfish/v1/Systems/${systemId}`;
  const server: Server = createServer({ key: readFileSync(key), cert: readFileSync(caFile) }, (req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      const reply = (status: number, json?: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(json === undefined ? '' : JSON.stringify(json));
      };
      if (req.headers.authorization !== expected) {
        bmc.rejected++;
        return reply(401, { error: 'unauthorized' });
      }
      if (req.method === 'GET' && req.url === system)
        return reply(200, { Id: systemId, PowerState: bmc.state.power });
      if (req.method === 'POST' && req.url === `${system}/Actions/ComputerSystem.Reset`) {
        if (bmc.state.refuseReset) return reply(500, { error: 'reset refused' });
        const type = (JSON.parse(body) as { ResetType: string }).ResetType;
        bmc.resets.push(type);
        if (type === 'ForceOff' && !bmc.state.neverOff)
          setTimeout(() => {
            bmc.state.power = 'Off';
          }, bmc.state.offAfterMs);
        if (type === 'On') bmc.state.power = 'On';
        return reply(204);
      }
      reply(404, { error: `no ${req.method} ${req.url}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    ...bmc,
    get resets() {
      return bmc.resets;
    },
    get rejected() {
      return bmc.rejected;
    },
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
