import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The systems a Redfish endpoint serves: each one's power state, and its resets. */
export interface RedfishSystems {
  /** undefined: no such system (404). */
  powerOf(id: string): 'On' | 'Off' | undefined;
  /** false: the reset is refused (500). */
  reset(id: string, type: string): boolean;
}

/** A Redfish endpoint over HTTPS: basic auth, a self-signed certificate made with openssl at start. */
export interface RedfishEndpoint {
  port: number;
  dir: string;
  caFile: string;
  passwordFile: string;
  username: string;
  /** Authorization headers seen that did not match. */
  readonly rejected: number;
  close(): Promise<void>;
}

const SYSTEM = /^\/redfish\/v1\/Systems\/([^/]+)$/;
const RESET = /^\/redfish\/v1\/Systems\/([^/]+)\/Actions\/ComputerSystem\.Reset$/;

export async function startRedfishEndpoint(
  systems: RedfishSystems,
  listen: { host?: string; port?: number } = {},
): Promise<RedfishEndpoint> {
  const host = listen.host ?? '127.0.0.1';
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
      `/CN=${host}`,
      '-addext',
      `subjectAltName=IP:${host}`,
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
  let rejected = 0;
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
        rejected++;
        return reply(401, { error: 'unauthorized' });
      }
      const url = req.url ?? '';
      const sys = SYSTEM.exec(url);
      if (req.method === 'GET' && sys) {
        const id = decodeURIComponent(sys[1]!);
        const power = systems.powerOf(id);
        return power === undefined
          ? reply(404, { error: `no system ${id}` })
          : reply(200, { Id: id, PowerState: power });
      }
      const reset = RESET.exec(url);
      if (req.method === 'POST' && reset) {
        const id = decodeURIComponent(reset[1]!);
        if (systems.powerOf(id) === undefined) return reply(404, { error: `no system ${id}` });
        let type: unknown;
        try {
          type = (JSON.parse(body) as { ResetType?: unknown }).ResetType;
        } catch {
          return reply(400, { error: 'body is not JSON' });
        }
        return systems.reset(id, String(type)) ? reply(204) : reply(500, { error: 'reset refused' });
      }
      reply(404, { error: `no ${req.method} ${url}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(listen.port ?? 0, host, resolve));
  return {
    dir,
    caFile,
    passwordFile,
    username,
    get rejected() {
      return rejected;
    },
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A small Redfish BMC on 127.0.0.1: one system whose PowerState turns Off a moment after a ForceOff. */
export interface RedfishBmc extends RedfishEndpoint {
  /** ResetType of every accepted reset, in order. */
  resets: string[];
  state: { power: 'On' | 'Off'; offAfterMs: number; neverOff: boolean; refuseReset: boolean };
}

export async function startRedfishBmc(systemId = '1'): Promise<RedfishBmc> {
  const resets: string[] = [];
  const state = { power: 'On' as 'On' | 'Off', offAfterMs: 200, neverOff: false, refuseReset: false };
  const endpoint = await startRedfishEndpoint({
    powerOf: (id) => (id === systemId ? state.power : undefined),
    reset: (_id, type) => {
      if (state.refuseReset) return false;
      resets.push(type);
      if (type === 'ForceOff' && !state.neverOff)
        setTimeout(() => {
          state.power = 'Off';
        }, state.offAfterMs);
      if (type === 'On') state.power = 'On';
      return true;
    },
  });
  return {
    port: endpoint.port,
    dir: endpoint.dir,
    caFile: endpoint.caFile,
    passwordFile: endpoint.passwordFile,
    username: endpoint.username,
    get rejected() {
      return endpoint.rejected;
    },
    close: () => endpoint.close(),
    resets,
    state,
  };
}
