import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import type { DeepReadonly, FenceConfig } from '../config/index.ts';
import { type ConfirmTiming, confirmOff, type FenceResult } from './run.ts';

export type RedfishFence = DeepReadonly<Extract<FenceConfig, { method: 'redfish' }>>;

const CALL_TIMEOUT_MS = 20_000;

interface Reply {
  status: number;
  body: string;
}

/** One HTTPS call to the BMC; basic auth from the password file, which never reaches a message. */
async function call(c: RedfishFence, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Reply> {
  const password = (await readFile(c.passwordFile, 'utf8')).replace(/\r?\n$/, '');
  const ca = c.caFile === undefined ? undefined : await readFile(c.caFile);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: c.address,
        port: c.port,
        method,
        path,
        ca,
        rejectUnauthorized: !c.insecure,
        timeout: CALL_TIMEOUT_MS,
        headers: {
          authorization: `Basic ${Buffer.from(`${c.username}:${password}`).toString('base64')}`,
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no reply within ${CALL_TIMEOUT_MS} ms`)));
    req.on('error', (e) => reject(new Error(`${method} ${path}: ${e.message}`)));
    req.end(payload);
  });
}

const systemPath = (c: RedfishFence) => `/redfish/v1/Systems/${encodeURIComponent(c.systemId)}`;

async function powerState(c: RedfishFence): Promise<{ off: boolean; seen: string }> {
  const r = await call(c, 'GET', systemPath(c));
  if (r.status !== 200) throw new Error(`GET ${systemPath(c)}: HTTP ${r.status}`);
  let state: unknown;
  try {
    state = (JSON.parse(r.body) as { PowerState?: unknown }).PowerState;
  } catch {
    throw new Error(`GET ${systemPath(c)}: not JSON`);
  }
  return { off: state === 'Off', seen: `PowerState ${String(state)}` };
}

async function reset(c: RedfishFence, resetType: 'ForceOff' | 'On'): Promise<string | null> {
  const path = `${systemPath(c)}/Actions/ComputerSystem.Reset`;
  try {
    const r = await call(c, 'POST', path, { ResetType: resetType });
    return r.status >= 200 && r.status < 300 ? null : `POST ${path} ${resetType}: HTTP ${r.status}`;
  } catch (e) {
    return (e as Error).message;
  }
}

/** ComputerSystem.Reset ForceOff, then read the system until PowerState is Off. */
export async function fenceRedfish(host: string, c: RedfishFence, t: ConfirmTiming): Promise<FenceResult> {
  const startedAt = Date.now();
  const target = `https://${c.address}:${c.port}${systemPath(c)}`;
  const done = (r: Omit<FenceResult, 'host' | 'method' | 'startedAt' | 'endedAt'>): FenceResult => ({
    host,
    method: 'redfish',
    startedAt,
    endedAt: Date.now(),
    ...r,
  });
  const failed = await reset(c, 'ForceOff');
  if (failed !== null)
    return done({
      ok: false,
      confirmedOff: false,
      error: `redfish ${target}: ForceOff failed: ${failed}`,
      evidence: `ForceOff not accepted: ${failed}`,
    });
  const confirm = await confirmOff(() => powerState(c), t);
  const evidence = `ForceOff accepted by ${target}; then ${confirm.attempts} read(s), last: ${confirm.seen}`;
  if (!confirm.off)
    return done({
      ok: false,
      confirmedOff: false,
      attempts: confirm.attempts,
      error: `redfish ${target}: ForceOff accepted but PowerState not Off within ${t.timeoutMs} ms (last: ${confirm.seen})`,
      evidence,
    });
  return done({ ok: true, confirmedOff: true, attempts: confirm.attempts, evidence });
}

export async function powerOnRedfish(c: RedfishFence): Promise<string | null> {
  const failed = await reset(c, 'On');
  return failed === null ? null : `redfish ${c.address}: power on failed: ${failed}`;
}
