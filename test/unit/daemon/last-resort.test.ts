import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { EXIT_UNCAUGHT } from '../../../src/daemon/last-resort.ts';

const runChild = (mode: 'throw' | 'reject') =>
  spawnSync('node', ['--import', 'tsx', 'test/fixtures/daemon/uncaught.ts', mode], {
    encoding: 'utf8',
    timeout: 20_000,
  });

const fatalLine = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string; stack?: string } })
    .find((l) => l.level === 60);

describe('keizokud last-resort handler', () => {
  it('F1 (last resort): an uncaught exception is logged as one fatal line with its stack, exit 70', () => {
    const r = runChild('throw');
    expect(r.status).toBe(EXIT_UNCAUGHT);
    const line = fatalLine(r.stdout);
    expect(line?.msg).toBe('uncaught exception; exiting');
    expect(line?.err?.message).toBe('boom in a timer');
    expect(line?.err?.stack).toMatch(/uncaught\.ts/);
  });

  it('F1 (last resort): an unhandled rejection is logged the same way, exit 70', () => {
    const r = runChild('reject');
    expect(r.status).toBe(EXIT_UNCAUGHT);
    expect(fatalLine(r.stdout)?.msg).toBe('unhandled promise rejection; exiting');
    expect(fatalLine(r.stdout)?.err?.message).toBe('boom in a promise');
  });
});
