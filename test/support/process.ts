import { appendFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether a process with this pid exists (signal 0 checks without signalling). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A process's start time in clock ticks since boot (/proc/PID/stat field 22), or null when gone. */
export function startTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Where a `npm test` run (KEIZOKU_TEST_RUN_ID) lists the processes its harness started. */
export function childrenFile(runId: string): string {
  return join(tmpdir(), `keizoku-test-children-${runId}`);
}

/**
 * Records a process the test harness started (redis-server, keizokud, a probe agent, ...) for
 * its run, so scripts/test.sh stops it when vitest dies before the test's own teardown (a
 * killed run). Pid and start time: a pid reused since is left alone. Outside `npm test` (no run
 * id) nothing is recorded: other runs on the machine are not this run's to stop.
 */
export function recordChild(pid: number | undefined, what: string): void {
  const runId = process.env.KEIZOKU_TEST_RUN_ID;
  if (!runId || pid === undefined) return;
  const ticks = startTicks(pid);
  if (ticks) appendFileSync(childrenFile(runId), `${pid} ${ticks} ${what}\n`);
}
