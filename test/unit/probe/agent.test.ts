import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type AddressProber, type OutageReport, ProbeAgent } from '../../../agents/probe/agent.ts';
import { windowReply } from '../../../agents/probe/server.ts';
import type { ProbeSample } from '../../../src/probe/outage.ts';

/** A recorded stream replayed by the clock: probes every 16 ms from T0, RTT 0.5 ms. */
const T0 = 1_800_000_000_000;
let clock = T0;

class Replay implements AddressProber {
  readonly pid = undefined;
  private floor = Number.NEGATIVE_INFINITY;
  constructor(
    readonly address: string,
    private readonly down: (t: number) => boolean,
  ) {}
  start(): void {}
  samples(): ProbeSample[] {
    const out: ProbeSample[] = [];
    for (let seq = 0; T0 + seq * 16 <= clock; seq++) {
      const sentAt = T0 + seq * 16;
      if (sentAt < this.floor) continue;
      const answered = !this.down(sentAt) && sentAt + 0.5 <= clock;
      // Not yet answered and not yet overdue: ping has said nothing about it.
      if (!answered && clock - sentAt < 16) continue;
      out.push({ address: this.address, seq, sentAt, receivedAt: answered ? sentAt + 0.5 : null });
    }
    return out;
  }
  discardBefore(t: number): void {
    this.floor = t;
  }
  async stop(): Promise<void> {}
}

function agent(down: Record<string, (t: number) => boolean>) {
  const reports: OutageReport[] = [];
  const a = new ProbeAgent({
    intervalMs: 16,
    timeoutMs: 1_000,
    retentionSec: 60,
    reportAfterIntervals: 2,
    onOutage: (o) => reports.push(o),
    prober: (address) => new Replay(address, down[address] ?? (() => false)),
  });
  return { a, reports };
}

/** Advances the clock second by second, settling like the agent's timer does. */
function run(a: ProbeAgent, untilMs: number): void {
  while (clock < untilMs) {
    clock = Math.min(untilMs, clock + 1_000);
    a.settle(clock);
  }
}

describe('ProbeAgent on recorded streams', () => {
  it('reports each outage once after it ended, even when it spans several settles', async () => {
    clock = T0;
    const rel = (t: number) => t - T0;
    // Down from 2.000 s to 4.500 s (spans three settles), and a 20 ms blip at 7 s (not reported).
    const { a, reports } = agent({
      '10.0.0.1': (t) => (rel(t) >= 2_000 && rel(t) < 4_500) || (rel(t) >= 7_000 && rel(t) < 7_020),
    });
    await a.setTargets([{ name: 'web1', addresses: ['10.0.0.1'] }]);
    run(a, T0 + 10_000);
    expect(reports).toEqual([
      {
        target: 'web1',
        addresses: ['10.0.0.1'],
        startMs: T0 + 2_000,
        endMs: T0 + 4_513, // 4512.5: the reply to 4512, the first probe sent after the cut
        outageMs: 2_512.5,
        lost: 157,
      },
    ]);
    const metrics = await a.registry.metrics();
    expect(metrics).toMatch(/keizoku_probe_outage_seconds_count\{target="web1"\} 1/);
    expect(metrics).toMatch(/keizoku_probe_lost_total\{target="web1"\} 158/); // 157 + the blip's one
    expect(metrics).toMatch(/keizoku_probe_up\{target="web1"\} 1/);
    const w = a.window('web1', T0 + 1_000, T0 + 8_000)!.stats;
    expect(w).toMatchObject({ outageMs: 2_512.5, outageStartMs: T0 + 2_000, lost: 158 });
    expect(w.outages.map((o) => o.durationMs)).toEqual([2_512.5, 16.5]);
    await a.stop();
  });

  it('keeps the history of a target whose addresses change, and measures across both', async () => {
    clock = T0;
    const rel = (t: number) => t - T0;
    // Site move: the old address stops at 3 s, the new one answers from 3.3 s.
    const { a, reports } = agent({
      '10.1.0.5': (t) => rel(t) >= 3_000,
      '10.2.0.5': (t) => rel(t) < 3_300,
    });
    await a.setTargets([{ name: 'db1', addresses: ['10.1.0.5'] }]);
    run(a, T0 + 2_000);
    await a.setTargets([{ name: 'db1', addresses: ['10.1.0.5', '10.2.0.5'] }]);
    run(a, T0 + 5_000);
    await a.setTargets([{ name: 'db1', addresses: ['10.2.0.5'] }]);
    run(a, T0 + 8_000);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ startMs: T0 + 3_008, endMs: T0 + 3_313 });
    const t = a.targets()[0]!;
    expect(t.addresses).toEqual(['10.2.0.5']);
    expect(t.oldestMs).toBe(T0); // the first address's samples are still there
    expect(a.window('db1', T0, T0 + 6_000)!.stats.outageMs).toBe(304.5);
    await a.stop();
  });

  it('answers /v1/window with 400 for bad parameters and 404 for a target it does not probe', async () => {
    clock = T0;
    const { a } = agent({});
    await a.setTargets([{ name: 'web1', addresses: ['10.0.0.1'] }]);
    run(a, T0 + 3_000);
    const ask = (q: string) =>
      windowReply(a, { intervalMs: 16, timeoutMs: 1_000 }, new URLSearchParams(q), clock);
    const message = (q: string) => (ask(q).body as { error: { message: string } }).error.message;
    expect(ask('from=1&to=2')).toMatchObject({ status: 400 });
    expect(message('from=1&to=2')).toMatch(/target is required/);
    expect(message('target=web1&to=2')).toBe('query: from must be epoch milliseconds, got null');
    expect(message('target=web1&from=1e12&to=2')).toBe('query: from must be epoch milliseconds, got "1e12"');
    expect(message('target=web1&from=5&to=-1')).toBe('query: to must be epoch milliseconds, got "-1"');
    expect(message('target=web1&from=5&to=2')).toBe('query: from (5) is after to (2)');
    expect(message(`target=web1&from=1&to=2&samples=yes`)).toMatch(/samples must be 0 or 1/);
    expect(ask('target=db9&from=1&to=2')).toEqual({
      status: 404,
      body: { error: { message: 'not probing a target named "db9"' } },
    });
    const ok = ask(`target=web1&from=${T0}&to=${T0 + 3_000}&samples=1`);
    expect(ok.status).toBe(200);
    const body = ok.body as { sent: number; lost: number; toMs: number; samples: { tMs: number }[] };
    // The last two intervals before "now" are left out: their replies may still come.
    expect(body.toMs).toBe(T0 + 3_000 - 32);
    expect(body).toMatchObject({ lost: 0, target: 'web1', addresses: ['10.0.0.1'], intervalMs: 16 });
    expect(body.samples.length).toBe(body.sent);
    await a.stop();
  });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

describe('the keizoku-probe process on loopback', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kz-probe-agent-'));
  let child: ChildProcess | null = null;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['fping', 1],
    ['ping', 3],
  ])(
    'with prober %s: serves targets, metrics and windows, and stops every process it started on SIGTERM',
    async (prober, processes) => {
      const port = await freePort();
      writeFileSync(
        join(dir, 'probe.yaml'),
        `name: lo\nsite: dc1\nlisten: 127.0.0.1:${port}\nintervalMs: 20\nprober: ${prober}\ntargets:\n  - { name: lo1, addresses: [127.0.0.2, 127.0.0.3] }\n  - { name: lo2, addresses: [127.0.0.4] }\n`,
      );
      let output = '';
      child = spawn('node', ['bin/keizoku-probe.mjs', '--config', join(dir, 'probe.yaml')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
      child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
      const url = `http://127.0.0.1:${port}`;
      const t0 = Date.now();
      let targets: { name: string; samples: number }[] = [];
      for (let i = 0; i < 100; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const r = await fetch(`${url}/v1/targets`).catch(() => null);
        if (!r?.ok) continue;
        targets = ((await r.json()) as { targets: typeof targets }).targets;
        if (targets.every((t) => t.samples > 10)) break;
      }
      expect(targets.map((t) => t.name)).toEqual(['lo1', 'lo2']);
      const pids = (await import('node:child_process'))
        .execFileSync('pgrep', ['-P', String(child.pid), '-x', prober], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .map(Number);
      // fping: one process for every address; ping: one long-lived process per address.
      expect(pids).toHaveLength(processes);
      const w = (await (await fetch(`${url}/v1/window?target=lo1&from=${t0}&to=${Date.now()}`)).json()) as {
        sent: number;
        lost: number;
        rttMaxMs: number;
        outageMs: number;
      };
      expect(w.sent).toBeGreaterThan(20);
      expect(w).toMatchObject({ lost: 0, outageMs: 0 });
      expect((await fetch(`${url}/v1/window?target=nope&from=1&to=2`)).status).toBe(404);
      expect((await fetch(`${url}/v1/window?target=lo1&from=x&to=2`)).status).toBe(400);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(/keizoku_probe_sent_total\{target="lo1"\} \d+/);
      expect(metrics).toMatch(/keizoku_probe_rtt_seconds_bucket\{le="0.001",target="lo2"\} \d+/);
      expect(metrics).toMatch(/keizoku_probe_up\{target="lo1"\} 1/);
      const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
      expect(output).toContain('"msg":"stopped"');
    },
    30_000,
  );
});
