import { execFile } from 'node:child_process';
import { LabError } from './errors.ts';

export interface RunOptions {
  /** Kill the command after this long; no lab command may hang. */
  timeoutMs?: number;
  input?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command without a shell; rejects with a LabError naming the command and its stderr. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        if (err) {
          const why = stderr.trim().split('\n').filter(Boolean).pop() ?? err.message;
          const timedOut = (err as { killed?: boolean }).killed ? ' (timed out)' : '';
          reject(new LabError(`${cmd} ${args.join(' ')}: ${why}${timedOut}`));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Runs a command and reports only whether it succeeded (for teardown of what may be gone). */
export async function tryRun(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<boolean> {
  try {
    await run(cmd, args, opts);
    return true;
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns true or the deadline passes. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(intervalMs);
  }
  throw new LabError(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
