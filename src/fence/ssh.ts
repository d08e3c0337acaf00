import type { DeepReadonly, FenceConfig } from '../config/index.ts';
import { type ConfirmTiming, confirmOff, type FenceResult, firstLine, run } from './run.ts';

export type SshFence = DeepReadonly<Extract<FenceConfig, { method: 'ssh' }>>;

const CALL_TIMEOUT_MS = 20_000;

/**
 * ssh's argv for `command` on the management path: the configured key only, the host key
 * checked against the configured known_hosts (never trusted on first use), no prompts.
 */
export type SshLogin = Pick<SshFence, 'keyFile' | 'knownHostsFile' | 'port' | 'user'>;

export function sshArgs(c: SshLogin, address: string, command: string): string[] {
  return [
    '-i',
    c.keyFile,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${c.knownHostsFile}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=5',
    '-p',
    String(c.port),
    '-l',
    c.user,
    '--',
    address,
    command,
  ];
}

/**
 * Whether the power-off command was carried out: it exited 0, or the host dropped the session
 * while running it (ssh's 255 with the connection closed or reset after it was established).
 * A connection that never opened is a failed fence: the host may be fine and unreachable.
 */
export function commandRan(code: number, stderr: string): boolean {
  if (code === 0) return true;
  return code === 255 && /closed by remote host|connection reset|broken pipe/i.test(stderr);
}

/** ICMP echo once; a host that answers is not off. */
async function answersPing(address: string): Promise<boolean> {
  return (await run('ping', ['-n', '-q', '-c', '1', '-W', '1', address], 5_000)).code === 0;
}

/** The configured status command, run by keizokud (e.g. a PDU query): exit 0 printing `off` means off. */
async function statusOff(argv: readonly string[]) {
  const r = await run(argv[0]!, argv.slice(1), CALL_TIMEOUT_MS);
  const out = firstLine(r.stdout);
  return { off: r.code === 0 && out.toLowerCase() === 'off', seen: `status command exit ${r.code}: ${out}` };
}

export async function fenceSsh(
  host: string,
  c: SshFence,
  managementAddress: string,
  t: ConfirmTiming,
): Promise<FenceResult> {
  const startedAt = Date.now();
  const address = c.address ?? managementAddress;
  const done = (r: Omit<FenceResult, 'host' | 'method' | 'startedAt' | 'endedAt'>): FenceResult => ({
    host,
    method: 'ssh',
    startedAt,
    endedAt: Date.now(),
    ...r,
  });
  const r = await run('ssh', sshArgs(c, address, c.command), CALL_TIMEOUT_MS);
  if (!commandRan(r.code, r.stderr)) {
    const why = firstLine(r.stderr) || `exit ${r.code}`;
    return done({
      ok: false,
      confirmedOff: false,
      error: `ssh ${c.user}@${address}: the power-off command did not run: ${why}`,
      evidence: `ssh exited ${r.code}: ${why}`,
    });
  }
  // Without a status command the management path is the only view ssh fencing has: "off" is
  // the host no longer answering there.
  const statusCommand = c.statusCommand;
  const confirm = await confirmOff(
    statusCommand === undefined
      ? async () => {
          const up = await answersPing(address);
          return { off: !up, seen: up ? `${address} answers ping` : `${address} does not answer ping` };
        }
      : () => statusOff(statusCommand),
    t,
  );
  const evidence = `ssh ${c.user}@${address} ran the power-off command (exit ${r.code}); then ${confirm.attempts} check(s), last: ${confirm.seen}`;
  if (!confirm.off)
    return done({
      ok: false,
      confirmedOff: false,
      attempts: confirm.attempts,
      error: `ssh ${address}: power-off command ran but the host was not seen off within ${t.timeoutMs} ms (last: ${confirm.seen})`,
      evidence,
    });
  return done({ ok: true, confirmedOff: true, attempts: confirm.attempts, evidence });
}
