import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { alive, childrenFile, recordChild } from '../../support/process.ts';

/** scripts/test.sh stops at exit what a killed run's harness left running, and nothing else. */
const started: ChildProcess[] = [];
afterEach(() => {
  for (const c of started) if (c.pid && alive(c.pid)) c.kill('SIGKILL');
});
const sleeper = () => {
  const c = spawn('sleep', ['60'], { stdio: 'ignore' });
  started.push(c);
  return c;
};

it('stops the recorded processes of its run that still run, and leaves a reused pid alone', async () => {
  const runId = `sweep-${process.pid}-${Date.now()}`;
  const before = process.env.KEIZOKU_TEST_RUN_ID;
  process.env.KEIZOKU_TEST_RUN_ID = runId;
  const left = sleeper();
  const other = sleeper();
  try {
    recordChild(left.pid, 'redis-server');
    // `other` stands for a process that got a recorded pid after the recorded one exited.
    appendFileSync(childrenFile(runId), `${other.pid} 1 keizokud\n`);
  } finally {
    if (before === undefined) delete process.env.KEIZOKU_TEST_RUN_ID;
    else process.env.KEIZOKU_TEST_RUN_ID = before;
  }
  const exited = new Promise((r) => left.once('exit', r));
  const r = spawnSync('node', ['--import', 'tsx', 'test/support/sweep-children.ts', runId], {
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  await exited;
  expect(r.stderr).toBe(`test run ${runId}: stopped what it left running: redis-server (pid ${left.pid})\n`);
  expect(alive(other.pid!)).toBe(true);
  expect(existsSync(childrenFile(runId))).toBe(false);
});

it('records nothing outside a test run (no run id)', () => {
  const before = process.env.KEIZOKU_TEST_RUN_ID;
  delete process.env.KEIZOKU_TEST_RUN_ID;
  try {
    const c = sleeper();
    recordChild(c.pid, 'keizokud');
    expect(existsSync(childrenFile('undefined'))).toBe(false);
  } finally {
    if (before !== undefined) process.env.KEIZOKU_TEST_RUN_ID = before;
  }
});
