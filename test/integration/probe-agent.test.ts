import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createVm,
  fenceHost,
  freePort,
  healHost,
  type LabState,
  readState,
  startPing,
  virsh,
  virshMigrate,
} from '../../lab/index.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { recordChild } from '../support/process.ts';

const INTERVAL_MS = 20;
/** The capture's own worst pacing besides the outage: its second-longest spacing between replies. */
const jitterMs = (replies: number[]) =>
  replies
    .slice(1)
    .map((t, i) => t - replies[i]!)
    .sort((a, b) => b - a)[1] ?? 0;
/** Two ping intervals, or twice the capture's own jitter in this run when the machine is busy. */
const agreementMs = (replies: number[]) => Math.max(2 * INTERVAL_MS + 16, 2 * jitterMs(replies));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The real keizoku-probe process against lab VMs: its outage figures for a raw virsh live
 * migration and for a fence + manual restart elsewhere agree with an independent `ping -D`
 * capture within two probe intervals; it follows a controller's VM list, registers and pushes
 * the outages it saw.
 */
describe('keizoku-probe against the lab', () => {
  let lab: LabState;
  let dir: string;
  let agent: ChildProcess;
  let agentUrl: string;
  let controller: Server;
  let output = '';
  const registrations: { name: string; site: string; url: string }[] = [];
  const events: { target: string; outageMs: number; startMs: number; endMs: number }[] = [];
  const auth: string[] = [];

  const address = (vm: string) => lab.vms.find((v) => v.name === vm)!.address;
  const window = async (target: string, from: number, to: number) => {
    const r = await fetch(`${agentUrl}/v1/window?target=${target}&from=${from}&to=${to}`);
    return (await r.json()) as { sent: number; lost: number; outageMs: number; outages: unknown[] };
  };

  beforeAll(async () => {
    lab = sharedLab();
    await Promise.all([
      createVm(lab.id, { name: 'pa1', host: 'h2' }),
      createVm(lab.id, { name: 'pa2', host: 'h3' }),
    ]);
    lab = readState(lab.id)!;
    dir = mkdtempSync(join(tmpdir(), 'kz-probe-agent-'));
    // A stand-in controller: serves the VM list and records what the agent sends.
    const controllerPort = await freePort();
    controller = createServer((req, res) => {
      auth.push(req.headers.authorization ?? '');
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (req.method === 'GET' && req.url === '/v1/vms') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(
            JSON.stringify({
              vms: [
                { name: 'pa1', host: 'h2', state: 'running', addresses: [address('pa1')] },
                { name: 'pa2', host: 'h3', state: 'running', addresses: [address('pa2')] },
                { name: 'noaddr', host: 'h1', state: 'running', addresses: [] },
                { name: 'pa3', host: 'h1', state: 'shutoff', addresses: [] },
              ],
            }),
          );
        } else if (req.method === 'POST' && req.url === '/v1/probes') {
          registrations.push(JSON.parse(body));
          res.writeHead(200).end('{}');
        } else if (req.method === 'POST' && req.url === '/v1/probe/events') {
          events.push(...JSON.parse(body).events);
          res.writeHead(200).end('{}');
        } else res.writeHead(404).end('{}');
      });
    });
    await new Promise<void>((r) => controller.listen(controllerPort, '127.0.0.1', r));
    const port = await freePort();
    agentUrl = `http://127.0.0.1:${port}`;
    writeFileSync(join(dir, 'token'), 'kz_000000000000_secret-for-the-test\n', { mode: 0o600 });
    writeFileSync(
      join(dir, 'probe.yaml'),
      `name: lab-probe
site: dc1
listen: 127.0.0.1:${port}
intervalMs: ${INTERVAL_MS}
followController: true
controller: { url: "http://127.0.0.1:${controllerPort}", tokenFile: token, refreshSec: 1 }
`,
    );
    agent = spawn('node', ['bin/keizoku-probe.mjs', '--config', join(dir, 'probe.yaml')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    recordChild(agent.pid, 'keizoku-probe');
    agent.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    agent.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    for (let i = 0; i < 100; i++) {
      const t = await fetch(`${agentUrl}/v1/targets`).then(
        (r) => r.json() as Promise<{ targets: { name: string; samples: number }[] }>,
        () => null,
      );
      if (t?.targets.length === 2 && t.targets.every((x) => x.samples > 20)) break;
      await sleep(200);
    }
  }, 120_000);

  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
    }
    controller?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('follows the controller: probes the VMs that have addresses, registers itself', async () => {
    const t = (await (await fetch(`${agentUrl}/v1/targets`)).json()) as { targets: { name: string }[] };
    expect(t.targets.map((x) => x.name).sort()).toEqual(['pa1', 'pa2']);
    expect(registrations.at(-1)).toMatchObject({ name: 'lab-probe', site: 'dc1', url: agentUrl });
    expect(auth.every((a) => a === 'Bearer kz_000000000000_secret-for-the-test')).toBe(true);
    expect(output).not.toContain('secret-for-the-test');
  });

  it('measures a raw virsh live migration like an independent ping -D capture, within two intervals', async () => {
    const t0 = Date.now();
    const m = await virshMigrate(lab, 'pa1', 'h2', 'h1', ['--persistent', '--undefinesource'], INTERVAL_MS);
    await sleep(2_500); // settled
    const w = await window('pa1', t0 - 500, Date.now() - 500);
    console.log(
      `migration: probe outage ${w.outageMs} ms, capture gap ${m.ping.maxGapMs} ms, libvirt ${m.downtimeMs} ms`,
    );
    expect(w.sent).toBeGreaterThan(50);
    // The agent's outage is the one an independent capture saw, not a guess from its own pacing.
    expect(Math.abs(w.outageMs - m.ping.maxGapMs)).toBeLessThanOrEqual(agreementMs(m.ping.replies));
  });

  it('measures a fence and a manual restart on another host like the capture, and pushes the outage', async () => {
    const h3 = lab.layout.hosts.find((h) => h.name === 'h3')!;
    const h2 = lab.layout.hosts.find((h) => h.name === 'h2')!;
    const xml = (await virsh(h3, ['dumpxml', '--inactive', 'pa2'])).stdout;
    writeFileSync(join(dir, 'pa2.xml'), xml);
    const capture = startPing(address('pa2'), INTERVAL_MS);
    await sleep(500);
    const t0 = Date.now();
    await fenceHost(lab.id, 'h3');
    try {
      await sleep(1_000);
      await virsh(h2, ['define', join(dir, 'pa2.xml')]);
      await virsh(h2, ['start', 'pa2']);
      for (let i = 0; i < 100; i++) {
        const w = await window('pa2', Date.now() - 1_500, Date.now());
        if (w.sent > w.lost + 5) break;
        await sleep(200);
      }
      await sleep(500);
      const seen = await capture.stop();
      await sleep(2_500);
      const w = await window('pa2', t0 - 500, Date.now() - 1_000);
      console.log(`fence+restart: probe outage ${w.outageMs} ms, capture gap ${seen.maxGapMs} ms`);
      expect(w.outageMs).toBeGreaterThan(1_000);
      expect(Math.abs(w.outageMs - seen.maxGapMs)).toBeLessThanOrEqual(agreementMs(seen.replies));
      // The agent pushed that outage to the controller once it ended.
      for (let i = 0; i < 50 && !events.some((e) => e.target === 'pa2' && e.outageMs > 1_000); i++)
        await sleep(200);
      const pushed = events.find((e) => e.target === 'pa2' && e.outageMs > 1_000)!;
      expect(Math.abs(pushed.outageMs - w.outageMs)).toBeLessThanOrEqual(2 * INTERVAL_MS);
      expect(pushed.startMs).toBeGreaterThanOrEqual(t0 - INTERVAL_MS);
    } finally {
      await healHost(lab.id, 'h3');
      // The dead copy on h3 stays defined there after heal: remove it (the VM runs on h2).
      await virsh(h3, ['undefine', 'pa2']).catch(() => undefined);
    }
  }, 120_000);

  it('stops its fping processes with itself', async () => {
    const pids = (await fetch(`${agentUrl}/metrics`).then((r) => r.ok)) ? output : '';
    expect(pids).toContain('keizoku-probe started');
    const exited = new Promise((r) => agent.once('exit', r));
    agent.kill('SIGTERM');
    expect(await exited).toBe(0);
    const { execFileSync } = await import('node:child_process');
    // The default prober is fping (one process for every address); iputils ping if configured.
    expect(output).toContain('"prober":"fping"');
    const left = execFileSync('sh', ['-c', `pgrep -af 'fping|ping -D -O' || true`], { encoding: 'utf8' });
    expect(left).not.toContain(address('pa1'));
    expect(left).not.toContain(address('pa2'));
  });
});
