import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVm, healHost, type LabState, partitionHost, readState, virsh } from '../../lab/index.ts';
import { type RunningKeizokud, startKeizokud } from '../support/keizokud.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { startRedis } from '../support/redis.ts';

const VM = 'hl-1';

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Host health against the lab. `lab partition H` puts a blackhole route to the controller's
 * management address in the host's namespace: libvirt's replies and ICMP echo replies to the
 * controller are both dropped, so from keizokud the host is silent on both paths and becomes
 * `unreachable` (not `partitioned`, which needs ICMP to answer while libvirt does not).
 */
describe('host health and VM copies on several hosts, in the lab', () => {
  let lab: LabState;
  let kz: RunningKeizokud;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let token: string;
  let dir: string;
  const get = async (path: string) => {
    const r = await kz.request('GET', path, token);
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const host = (name: string) => lab.layout.hosts.find((h) => h.name === name)!;

  beforeAll(async () => {
    redis = await startRedis();
    lab = sharedLab();
    await createVm(lab.id, { name: VM, host: 'h1' });
    lab = readState(lab.id)!;
    dir = mkdtempSync(join(tmpdir(), 'kz-health-'));
    // The same definition on h2, shut off there (as on a standby host).
    const xml = (await virsh(host('h1'), ['dumpxml', '--inactive', VM])).stdout;
    writeFileSync(join(dir, `${VM}.xml`), xml);
    await virsh(host('h2'), ['define', join(dir, `${VM}.xml`)]);
    kz = await startKeizokud(lab, redis.url, {
      libvirt: { keepaliveIntervalSec: 1, keepaliveCount: 3, callTimeoutMs: 3_000 },
      loops: { inventoryIntervalMs: 1_000, healthIntervalMs: 500 },
    });
    token = await kz.token('admin');
  });

  afterAll(async () => {
    await healHost(lab.id, 'h1').catch(() => undefined);
    await virsh(host('h2'), ['destroy', VM]).catch(() => undefined);
    await virsh(host('h2'), ['undefine', VM]).catch(() => undefined);
    await virsh(host('h1'), ['destroy', VM]).catch(() => undefined);
    await kz?.stop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows every host up with its evidence (ICMP answers), and stores the XML of a VM without a limits profile', async () => {
    const { hosts } = await until(
      'every host up with ICMP',
      async () => {
        const b = await get('/v1/hosts');
        return b.hosts.every((h: { evidence: { icmp: boolean } | null }) => h.evidence?.icmp === true)
          ? b
          : undefined;
      },
      20_000,
    );
    for (const h of hosts) {
      expect(h).toMatchObject({ health: 'up', evidence: { connected: true, icmp: true } });
      expect(h.healthSince).toBeGreaterThan(0);
      expect(h.lastKnownVms).toBeUndefined();
    }
    // Running on h1, shut off on h2: not a conflict; the running copy is the VM.
    const vm = await get(`/v1/vms/${VM}`);
    expect(vm).toMatchObject({ host: 'h1', state: 'running' });
    expect(vm.conflict).toBeUndefined();
    const domain = await until(
      'the stored domain XML',
      async () => (await kz.redis.get(`keizoku:default:vm:${VM}:domain`)) ?? undefined,
      20_000,
    );
    expect(JSON.parse(domain).xml).toContain(`<name>${VM}</name>`);
  });

  it('partition makes h1 unreachable with its VMs last known; heal makes it up again', async () => {
    const before = (await get('/v1/hosts/h1')).healthSince;
    await partitionHost(lab.id, 'h1');
    const h1 = await until(
      'h1 not up',
      async () => {
        const h = await get('/v1/hosts/h1');
        return h.health === 'unreachable' || h.health === 'partitioned' ? h : undefined;
      },
      30_000,
    );
    // The blackhole drops the ICMP replies too (see the describe's comment).
    expect(h1).toMatchObject({ health: 'unreachable', vms: [], evidence: { connected: false, icmp: false } });
    expect(h1.lastKnownVms).toContain(VM);
    expect(h1.healthSince).toBeGreaterThan(before);
    // What the snapshot can see of the VM is the shut-off copy on h2; lastKnownVms says that
    // it may still run on h1.
    expect(await get(`/v1/vms/${VM}`)).toMatchObject({ host: 'h2', state: 'shutoff' });
    const metrics = await (await fetch(kz.metricsUrl)).text();
    expect(metrics).toMatch(/keizoku_host_health\{host="h1",site="[^"]+",state="unreachable"\} 1/);

    await healHost(lab.id, 'h1');
    const healed = await until(
      'h1 up again',
      async () => {
        const h = await get('/v1/hosts/h1');
        return h.health === 'up' ? h : undefined;
      },
      60_000,
    );
    expect(healed.vms).toContain(VM);
    expect(healed.lastKnownVms).toBeUndefined();
    expect(await get(`/v1/vms/${VM}`)).toMatchObject({ host: 'h1', state: 'running' });
    const audit = await get('/v1/audit?action=host.health&target=h1&limit=100');
    const changes = audit.entries.map((e: { params: { health: string } }) => e.params.health);
    expect(changes).toEqual(expect.arrayContaining(['unreachable', 'up']));
  });

  it('a VM active on two hosts (a paused second copy) is a conflict, never merged', async () => {
    await virsh(host('h2'), ['start', '--paused', VM]);
    const vm = await until(
      'the conflict',
      async () => {
        const v = await get(`/v1/vms/${VM}`);
        return v.conflict ? v : undefined;
      },
      20_000,
    );
    expect(vm).toMatchObject({ host: 'h1', state: 'running' });
    expect(vm.conflict).toEqual([
      { host: 'h1', state: 'running' },
      { host: 'h2', state: 'paused' },
    ]);
    expect(await (await fetch(kz.metricsUrl)).text()).toMatch(/^keizoku_vm_conflicts 1$/m);
    const audit = await until(
      'the vm.conflict audit entry',
      async () => {
        const a = await get(`/v1/audit?action=vm.conflict&target=${VM}&limit=10`);
        return a.entries.length ? a : undefined;
      },
      10_000,
    );
    expect(audit.entries[0]).toMatchObject({ actor: 'controller', params: { copies: vm.conflict } });
    await virsh(host('h2'), ['destroy', VM]);
    await until(
      'the conflict gone',
      async () => ((await get(`/v1/vms/${VM}`)).conflict ? undefined : true),
      20_000,
    );
  });
});
