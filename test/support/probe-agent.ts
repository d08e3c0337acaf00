import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../lab/index.ts';
import type { RunningKeizokud } from './keizokud.ts';
import { recordChild } from './process.ts';

/** A real keizoku-probe process following a test's keizokud, registered with it. */
export interface RunningProbe {
  url: string;
  output(): string;
  stop(): Promise<void>;
}

export async function startProbeAgent(
  kz: RunningKeizokud,
  vms: string[],
  intervalMs = 20,
  /** iputils ping instead of the default fping pool (docs/probe.md: its known problem with a VM restarted after a fence). */
  prober?: 'ping' | 'fping',
): Promise<RunningProbe> {
  const dir = mkdtempSync(join(tmpdir(), 'kz-probe-'));
  writeFileSync(join(dir, 'token'), `${await kz.token('probe', { name: 'test-probe' })}\n`, { mode: 0o600 });
  const port = await freePort();
  writeFileSync(
    join(dir, 'probe.yaml'),
    `name: test-probe\nsite: dc1\nlisten: 127.0.0.1:${port}\nintervalMs: ${intervalMs}\nfollowController: true\ncontroller: { url: "${kz.url}", tokenFile: token, refreshSec: 1 }\n${prober ? `prober: ${prober}\n` : ''}`,
  );
  let out = '';
  const child: ChildProcess = spawn('node', ['bin/keizoku-probe.mjs', '--config', join(dir, 'probe.yaml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  recordChild(child.pid, 'keizoku-probe');
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Up when it probes every VM asked for (with some history) and keizokud lists it.
  for (let i = 0; ; i++) {
    const targets = await fetch(`${url}/v1/targets`).then(
      (r) => r.json() as Promise<{ targets: { name: string; samples: number }[] }>,
      () => ({ targets: [] }),
    );
    const probing = vms.every((vm) => targets.targets.some((t) => t.name === vm && t.samples > 50));
    const registered = await fetch(`${kz.url}/v1/probes`, {
      headers: { authorization: `Bearer ${await kz.token('viewer')}` },
    }).then(
      (r) => r.json() as Promise<{ probes?: unknown[] }>,
      () => ({ probes: [] }),
    );
    if (probing && (registered.probes?.length ?? 0) > 0) break;
    if (i > 150) {
      await stop();
      throw new Error(`keizoku-probe did not start probing ${vms.join(', ')}:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, output: () => out, stop };
}
