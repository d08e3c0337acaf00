import type { DeepReadonly, FenceConfig } from '../config/index.ts';
import { type ConfirmTiming, confirmOff, type FenceResult, firstLine, run } from './run.ts';

export type IpmiFence = DeepReadonly<Extract<FenceConfig, { method: 'ipmi' }>>;

const CALL_TIMEOUT_MS = 20_000;

/** ipmitool's argv; the password is read by ipmitool from the file (`-f`), so `ps` never shows it. */
export function ipmiArgs(c: IpmiFence, command: string[]): string[] {
  return [
    '-I',
    c.interface,
    '-H',
    c.address,
    '-p',
    String(c.port),
    '-U',
    c.username,
    '-f',
    c.passwordFile,
    ...(c.cipherSuite === undefined ? [] : ['-C', String(c.cipherSuite)]),
    ...command,
  ];
}

async function ipmi(c: IpmiFence, command: string[]) {
  return run('ipmitool', ipmiArgs(c, command), CALL_TIMEOUT_MS);
}

/** `Chassis Power is off` -> off; anything else (on, an error) is not off. */
async function powerStatus(c: IpmiFence): Promise<{ off: boolean; seen: string }> {
  const r = await ipmi(c, ['chassis', 'power', 'status']);
  if (r.code !== 0) throw new Error(`chassis power status: ${firstLine(r.stderr) || `exit ${r.code}`}`);
  const seen = firstLine(r.stdout);
  return { off: /\bpower is off\b/i.test(seen), seen };
}

/** Power off through the BMC, then read the chassis status until it says off. */
export async function fenceIpmi(host: string, c: IpmiFence, t: ConfirmTiming): Promise<FenceResult> {
  const startedAt = Date.now();
  const target = `${c.address}:${c.port}`;
  const done = (r: Omit<FenceResult, 'host' | 'method' | 'startedAt' | 'endedAt'>): FenceResult => ({
    host,
    method: 'ipmi',
    startedAt,
    endedAt: Date.now(),
    ...r,
  });
  const off = await ipmi(c, ['chassis', 'power', 'off']);
  if (off.code !== 0) {
    const why = firstLine(off.stderr) || firstLine(off.stdout) || `exit ${off.code}`;
    return done({
      ok: false,
      confirmedOff: false,
      error: `ipmi ${target}: chassis power off failed: ${why}`,
      evidence: `ipmitool chassis power off at ${target} exited ${off.code}: ${why}`,
    });
  }
  const confirm = await confirmOff(() => powerStatus(c), t);
  const evidence = `ipmitool chassis power off at ${target}: ${firstLine(off.stdout)}; then ${confirm.attempts} status read(s), last: ${confirm.seen}`;
  if (!confirm.off)
    return done({
      ok: false,
      confirmedOff: false,
      attempts: confirm.attempts,
      error: `ipmi ${target}: power off sent but not confirmed within ${t.timeoutMs} ms (last status: ${confirm.seen})`,
      evidence,
    });
  return done({ ok: true, confirmedOff: true, attempts: confirm.attempts, evidence });
}

export async function powerOnIpmi(c: IpmiFence): Promise<string | null> {
  const r = await ipmi(c, ['chassis', 'power', 'on']);
  return r.code === 0
    ? null
    : `ipmi ${c.address}:${c.port}: chassis power on failed: ${firstLine(r.stderr) || `exit ${r.code}`}`;
}
