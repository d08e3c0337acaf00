// Stops what a test run's harness started and did not stop (vitest killed before its
// teardown): every process recorded for the run (test/support/process.ts recordChild) that
// still runs with the same start time. Run by scripts/test.sh at exit: `sweep-children.ts ID`.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { childrenFile, startTicks } from './process.ts';

const runId = process.argv[2];
if (!runId) {
  process.stderr.write('usage: sweep-children.ts RUN_ID\n');
  process.exit(2);
}
const file = childrenFile(runId);
const stopped: string[] = [];
if (existsSync(file)) {
  for (const line of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    const [pid, ticks, ...what] = line.split(' ');
    if (startTicks(Number(pid)) !== ticks) continue; // gone, or the pid belongs to another process now
    try {
      process.kill(Number(pid), 'SIGKILL');
      stopped.push(`${what.join(' ')} (pid ${pid})`);
    } catch {
      // exited meanwhile
    }
  }
  rmSync(file, { force: true });
}
if (stopped.length)
  process.stderr.write(`test run ${runId}: stopped what it left running: ${stopped.join(', ')}\n`);
