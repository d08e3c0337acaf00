import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

/** What a fence returns: a failed fence is ok=false with the reason, never a throw. */
export interface FenceResult {
  host: string;
  method: string;
  /** Powered off and the off state confirmed: only then may the host's VMs restart elsewhere. */
  ok: boolean;
  confirmedOff: boolean;
  /** Epoch milliseconds. */
  startedAt: number;
  endedAt: number;
  /** Status reads until off was seen (or the confirm timed out). */
  attempts?: number;
  error?: string;
  /** What was done and seen, for the audit log; never a secret. */
  evidence: string;
}

export interface Exited {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command, resolving with its exit (127 when it cannot start, 124 on timeout). */
export function run(file: string, args: readonly string[], timeoutMs: number): Promise<Exited> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean }) | null;
      const code =
        e === null ? 0 : e.killed ? 124 : typeof e.code === 'number' ? e.code : e.code === 'ENOENT' ? 127 : 1;
      resolve({
        code,
        stdout: String(stdout),
        stderr: String(stderr || (e && code === 127 ? e.message : '')),
      });
    });
  });
}

/** The first line of a command's output, short enough for an error message. */
export function firstLine(s: string): string {
  return (s.trim().split('\n')[0] ?? '').slice(0, 200);
}

export interface ConfirmTiming {
  timeoutMs: number;
  intervalMs: number;
}

/**
 * Reads the power state until `check` reports off or the timeout passes. Errors of a single
 * read (a BMC busy for a moment) are kept as the last state seen and retried.
 */
export async function confirmOff(
  check: () => Promise<{ off: boolean; seen: string }>,
  t: ConfirmTiming,
): Promise<{ off: boolean; attempts: number; seen: string }> {
  const deadline = Date.now() + t.timeoutMs;
  let attempts = 0;
  let seen = 'nothing read';
  for (;;) {
    attempts++;
    try {
      const r = await check();
      seen = r.seen;
      if (r.off) return { off: true, attempts, seen };
    } catch (e) {
      seen = (e as Error).message;
    }
    if (Date.now() + t.intervalMs > deadline) return { off: false, attempts, seen };
    await sleep(t.intervalMs);
  }
}
