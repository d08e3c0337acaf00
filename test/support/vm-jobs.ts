import { type LabState, virsh } from '../../lab/index.ts';
import type { ApiResponse, RunningKeizokud } from './keizokud.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Hosts whose libvirt reports the VM running, and those that still have it defined. */
export async function whereIs(lab: LabState, vm: string): Promise<{ running: string[]; defined: string[] }> {
  const running: string[] = [];
  const defined: string[] = [];
  for (const h of lab.layout.hosts) {
    const all = await virsh(h, ['list', '--all', '--name']).catch(() => ({ stdout: '' }));
    const act = await virsh(h, ['list', '--name']).catch(() => ({ stdout: '' }));
    if (all.stdout.split('\n').includes(vm)) defined.push(h.name);
    if (act.stdout.split('\n').includes(vm)) running.push(h.name);
  }
  return { running, defined };
}

/** The job's view once it is no longer waiting or active. */
export async function waitJobEnd(
  kz: RunningKeizokud,
  token: string,
  id: string,
  timeoutMs = 120_000,
): Promise<ApiResponse['body']> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await kz.request('GET', `/v1/jobs/${id}`, token);
    if (r.body.state !== 'waiting' && r.body.state !== 'active') return r.body;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${r.body.state}`);
    await sleep(250);
  }
}

/** Resolves once keizokud's inventory shows the VM running on `onHost`. */
export async function waitInventory(kz: RunningKeizokud, token: string, vm: string, onHost: string) {
  for (let i = 0; i < 100; i++) {
    const r = await kz.request('GET', `/v1/vms/${vm}`, token);
    if (r.body.host === onHost && r.body.state === 'running') return;
    await sleep(200);
  }
  throw new Error(`inventory never showed ${vm} running on ${onHost}`);
}
