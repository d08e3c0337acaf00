import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { drainOnSignals } from '../../../src/daemon/shutdown.ts';

function harness(steps: { name: string; stop: () => Promise<unknown> }[], timeoutMs = 5_000) {
  const signals = new EventEmitter();
  const lines: string[] = [];
  const log = {
    info: (_o: object, m: string) => lines.push(m),
    warn: (_o: object, m: string) => lines.push(m),
    error: (_o: object, m: string) => lines.push(m),
  };
  let exited: number | null = null;
  let resolved: number | null = null;
  const done = drainOnSignals({ steps, log, timeoutMs, signals, exit: (c) => (exited = c) });
  void done.then((c) => (resolved = c));
  return { signals, lines, exitedWith: () => exited, resolvedWith: () => resolved, done };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const never = () => new Promise<void>(() => undefined);

describe('keizokud graceful stop', () => {
  it('F26: SIGTERM runs every step in order and resolves 0', async () => {
    const order: string[] = [];
    const h = harness(['api', 'jobs', 'redis'].map((name) => ({ name, stop: async () => order.push(name) })));
    h.signals.emit('SIGTERM');
    expect(await h.done).toBe(0);
    expect(order).toEqual(['api', 'jobs', 'redis']);
    expect(h.exitedWith()).toBeNull();
  });

  it("F26: a step's rejection is logged, the later steps still run, and the status is 1", async () => {
    const order: string[] = [];
    const h = harness([
      { name: 'jobs', stop: () => Promise.reject(new Error('redis gone')) },
      { name: 'redis', stop: async () => order.push('redis') },
    ]);
    h.signals.emit('SIGTERM');
    expect(await h.done).toBe(1);
    expect(order).toEqual(['redis']);
    expect(h.lines).toContain('stopping failed');
  });

  it('F26: a second signal ends a drain that is still waiting', async () => {
    const h = harness([{ name: 'jobs', stop: never }]);
    h.signals.emit('SIGTERM');
    await sleep(10);
    expect(h.exitedWith()).toBeNull();
    h.signals.emit('SIGINT');
    expect(h.exitedWith()).toBe(1);
    expect(h.lines).toContain('second signal: exiting without finishing the drain');
  });

  it('F26: the drain is bounded: a step that never ends is cut off after timeoutMs', async () => {
    const h = harness([{ name: 'jobs', stop: never }], 50);
    h.signals.emit('SIGTERM');
    await sleep(20);
    expect(h.exitedWith()).toBeNull();
    await sleep(100);
    expect(h.exitedWith()).toBe(1);
    expect(h.resolvedWith()).toBeNull();
    expect(h.lines).toContain('drain did not finish in time: exiting');
  });
});
