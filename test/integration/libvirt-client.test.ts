import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createVm,
  fenceHost,
  healHost,
  type LabState,
  labStatus,
  ping,
  readState,
  virsh,
  waitForPing,
} from '../../lab/index.ts';
import type { DomainEvent, LibvirtClient } from '../../src/libvirt/client.ts';
import { KeepaliveTimeoutError, LibvirtError } from '../../src/libvirt/errors.ts';
import { connectLibvirt } from '../../src/libvirt/index.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { measureLagMs } from '../support/lag.ts';
import { openLabClient } from '../support/libvirt.ts';

/** Every client.ts operation against the lab's real libvirtd. */
describe('libvirt client against lab libvirtd', () => {
  let lab: LabState;
  let h1: LibvirtClient;
  let h2: LibvirtClient;
  const events: DomainEvent[] = [];

  beforeAll(async () => {
    lab = sharedLab();
    await Promise.all([
      createVm(lab.id, { name: 'lc-a', host: 'h1' }),
      createVm(lab.id, { name: 'lc-b', host: 'h1', disk: 'local' }),
    ]);
    lab = readState(lab.id)!;
    [h1, h2] = await Promise.all([openLabClient(lab, 'h1'), openLabClient(lab, 'h2')]);
    for (const c of [h1, h2]) c.on('domain-event', (e: DomainEvent) => events.push(e));
  });

  afterAll(async () => {
    await Promise.all([h1?.close(), h2?.close()]);
  });

  const address = (vm: string) => lab.vms.find((v) => v.name === vm)!.address;

  it('reads host facts: hostname, node info, capabilities, CPU and memory stats', async () => {
    expect(await h1.hostname()).toMatch(/\S/);
    const info = await h1.nodeInfo();
    expect(info.cpus).toBeGreaterThan(0);
    expect(info.memoryKiB).toBeGreaterThan(1024 * 1024);
    expect(info.model).toBe('x86_64');
    const caps = await h1.capabilities();
    expect(caps).toContain('<capabilities>');
    expect(caps).toContain(lab.layout.hosts[0]!.hostUuid);
    const cpu = await h1.nodeCpuStats();
    expect(Object.keys(cpu)).toEqual(expect.arrayContaining(['user', 'kernel', 'idle']));
    const mem = await h1.nodeMemoryStats();
    expect(mem.total).toBeGreaterThan(0);
  });

  it('lists every domain with its state and looks domains up by name and UUID', async () => {
    const doms = await h1.listDomainsWithState();
    const a = doms.find((d) => d.name === 'lc-a')!;
    expect(a).toMatchObject({ state: 'running', persistent: true });
    const byName = await h1.lookupByName('lc-a');
    const byUuid = await h1.lookupByUuid(a.uuid);
    expect(byUuid.name).toBe('lc-a');
    expect(byName.id).toBe(a.id);
    await expect(h1.lookupByName('no-such-vm')).rejects.toSatisfy(
      (e: unknown) => e instanceof LibvirtError && e.isNotFound() && e.codeName === 'VIR_ERR_NO_DOMAIN',
    );
  });

  it('gets, undefines, defines, starts, shuts down and destroys a domain', async () => {
    const dom = await h1.lookupByName('lc-b');
    const xml = await h1.getXml(dom);
    expect(xml).toContain('<name>lc-b</name>');
    await h1.destroy(dom);
    expect((await h1.getState(dom)).state).toBe('shutoff');
    await h1.undefine(dom);
    await expect(h1.lookupByName('lc-b')).rejects.toBeInstanceOf(LibvirtError);
    const again = await h1.defineXml(xml);
    await h1.start(again);
    await waitForPing(address('lc-b'), 60_000);
    // Graceful shutdown: the guest powers off on the ACPI power button.
    await h1.shutdown(again);
    const deadline = Date.now() + 30_000;
    for (let i = 1; (await h1.getState(again)).state !== 'shutoff' && Date.now() < deadline; i++) {
      await sleep(200);
      // A guest may miss an ACPI event while it is still starting, as real ones do: ask again.
      if (i % 25 === 0) await h1.shutdown(again).catch(() => undefined);
    }
    expect((await h1.getState(again)).state).toBe('shutoff');
    await h1.start(again);
    await waitForPing(address('lc-b'), 60_000);
  });

  it('sets and reads back CPU, memory and blkio tuning live', async () => {
    const dom = await h1.lookupByName('lc-a');
    await h1.setSchedulerParameters(dom, { cpu_shares: 512, vcpu_period: 100_000, vcpu_quota: 50_000 });
    expect(await h1.getSchedulerParameters(dom)).toMatchObject({
      cpu_shares: 512,
      vcpu_period: 100_000,
      vcpu_quota: 50_000,
    });
    await h1.setSchedulerParameters(dom, { vcpu_quota: -1 });
    expect((await h1.getSchedulerParameters(dom)).vcpu_quota).toBe(-1);
    await h1.setMemoryParameters(dom, { soft_limit: 65_536 });
    expect((await h1.getMemoryParameters(dom)).soft_limit).toBe(65_536);
    // Per-device throttles name a host block device: the one under / is always there.
    const dev = execFileSync('findmnt', ['-n', '-o', 'SOURCE', '/'], { encoding: 'utf8' }).trim();
    await h1.setBlkioParameters(dom, { weight: 300, device_read_iops_sec: `${dev},2000` });
    const blkio = await h1.getBlkioParameters(dom);
    expect(blkio.weight).toBe(300);
    expect(blkio.device_read_iops_sec).toBe(`${dev},2000`);
  });

  it('reports the host reason when interface bandwidth cannot be applied here', async () => {
    const dom = await h1.lookupByName('lc-a');
    const before = await h1.getInterfaceParameters(dom, lab.vms.find((v) => v.name === 'lc-a')!.mac);
    expect(before).toHaveProperty('inbound.average');
    // This kernel has no sfq qdisc, which libvirt's shaping needs: a typed error, not silence.
    const err = await h1
      .setInterfaceParameters(dom, lab.vms.find((v) => v.name === 'lc-a')!.mac, { 'inbound.average': 1000 })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).message).toMatch(/qdisc|tc|kind/i);
  });

  it('reads bulk statistics of all domains', async () => {
    const stats = await h1.getAllDomainStats();
    const a = stats.find((s) => s.name === 'lc-a')!;
    expect(a.stats['state.state']).toBe(1);
    expect(a.stats['cpu.time']).toBeGreaterThan(0);
    expect(a.stats['balloon.current']).toBe(96 * 1024);
    expect(a.stats['vcpu.current']).toBe(1);
    expect(a.stats['net.count']).toBe(1);
    expect(a.stats).toHaveProperty('block.count');
  });

  it('live-migrates peer-to-peer, with job stats while running, downtime after, and events', async () => {
    await h1.subscribeDomainEvents();
    await h2.subscribeDomainEvents();
    const dom = await h1.lookupByName('lc-a');
    events.length = 0;
    // A low bandwidth cap stretches the move so job stats can be read while it runs.
    const moving = h1.migrate(dom, {
      destinationUri: lab.layout.hosts[1]!.uri,
      bandwidthMiBs: 8,
      persistent: true,
      undefineSource: true,
    });
    const seen: Record<string, number | string | boolean>[] = [];
    let done = false;
    moving.finally(() => {
      done = true;
    });
    while (!done) {
      const js = await h1.jobStats(dom).catch(() => null);
      if (js?.type === 'unbounded') seen.push(js.stats);
      await sleep(50);
    }
    await moving;
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.some((s) => Number(s.data_total) > 0 && 'memory_remaining' in s)).toBe(true);
    const onDest = await h2.lookupByName('lc-a');
    expect((await h2.getState(onDest)).state).toBe('running');
    await expect(h1.lookupByName('lc-a')).rejects.toBeInstanceOf(LibvirtError); // undefined on source
    const completed = await h2.jobStats(onDest, true);
    expect(completed.type).toBe('completed');
    expect(Number(completed.stats.downtime)).toBeGreaterThan(0);
    expect(await ping(address('lc-a'))).toBe(true);
    await waitUntil(() => events.some((e) => e.domain === 'lc-a' && e.kind === 'lifecycle'), 5_000);
    expect(events.some((e) => e.domain === 'lc-a' && e.kind === 'lifecycle' && e.event === 'stopped')).toBe(
      true,
    );
    expect(
      events.some(
        (e) =>
          e.domain === 'lc-a' && e.kind === 'lifecycle' && (e.event === 'resumed' || e.event === 'started'),
      ),
    ).toBe(true);
    await waitUntil(() => events.some((e) => e.domain === 'lc-a' && e.kind === 'job-completed'), 5_000);
    const finished = events.find((e) => e.domain === 'lc-a' && e.kind === 'job-completed');
    expect(finished?.kind === 'job-completed' && Number(finished.stats.downtime)).toBeGreaterThan(0);
    expect(
      events.some((e) => e.domain === 'lc-a' && e.kind === 'migration-iteration' && e.iteration >= 1),
    ).toBe(true);
  });

  it('reports a reset of the guest as a reboot event', async () => {
    await h2.subscribeDomainEvents();
    events.length = 0;
    await virsh(lab.layout.hosts[1]!, ['reset', 'lc-a']);
    await waitUntil(() => events.some((e) => e.domain === 'lc-a' && e.kind === 'reboot'), 5_000);
    expect(events.filter((e) => e.kind === 'reboot').every((e) => e.domain === 'lc-a')).toBe(true);
    await waitForPing(address('lc-a'), 30_000);
  });

  it('changes speed and downtime of a running migration, and aborting leaves the VM on the source', async () => {
    const dom = await h2.lookupByName('lc-a');
    await h2.migrateSetMaxSpeed(dom, 1); // before start: applies to the next migration
    const moving = h2.migrate(dom, {
      destinationUri: lab.layout.hosts[0]!.uri,
      persistent: true,
      undefineSource: true,
    });
    const outcome = moving.then(
      () => 'completed',
      (e: unknown) => e,
    );
    await waitUntil(async () => (await h2.jobStats(dom).catch(() => null))?.type === 'unbounded', 10_000);
    await h2.migrateSetMaxDowntime(dom, 500);
    await h2.migrateSetMaxSpeed(dom, 2);
    await h2.abortJob(dom);
    const result = await outcome;
    expect(result).toBeInstanceOf(LibvirtError);
    expect((await h2.getState(dom)).state).toBe('running');
    expect(await ping(address('lc-a'))).toBe(true);
    await h2.migrateSetMaxSpeed(dom, 0); // unlimited again
  });

  it('switches a migration to post-copy on request', async () => {
    const dom = await h2.lookupByName('lc-a');
    const moving = h2.migrate(dom, {
      destinationUri: lab.layout.hosts[0]!.uri,
      postCopy: true,
      bandwidthMiBs: 4,
      persistent: true,
      undefineSource: true,
    });
    // Post-copy can start only once QEMU is sending memory, not while libvirt still prepares.
    await waitUntil(
      async () => Number((await h2.jobStats(dom).catch(() => null))?.stats.memory_processed ?? 0) > 0,
      10_000,
    );
    await h2.migrateStartPostCopy(dom);
    await moving;
    expect((await h1.getState(await h1.lookupByName('lc-a'))).state).toBe('running');
    expect(await ping(address('lc-a'))).toBe(true);
  });
});

describe('libvirt TLS transport against lab libvirtd', () => {
  it('connects with the client certificate and verifies the server against the CA', async () => {
    const lab = sharedLab();
    const pki = lab.pki!;
    const tls = { caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile };
    const c = await connectLibvirt(lab.layout.hosts[0]!.tlsUri, { tls });
    const plain = await openLabClient(lab, 'h1');
    try {
      expect((await c.nodeInfo()).cpus).toBeGreaterThan(0);
      // Over TLS, the same domains as over the lab's plain link, by UUID and state.
      const byUuid = (l: { uuid: string; state: string }[]) => l.map((d) => `${d.uuid}:${d.state}`).sort();
      const overTls = await c.listDomainsWithState();
      expect(overTls.length).toBeGreaterThan(0);
      expect(byUuid(overTls)).toEqual(byUuid(await plain.listDomainsWithState()));
    } finally {
      await Promise.all([c.close(), plain.close()]);
    }
  });

  it('refuses a server whose certificate does not chain to the configured CA', async () => {
    const lab = sharedLab();
    const pki = lab.pki!;
    const tls = {
      caFile: '/etc/ssl/certs/ca-certificates.crt',
      certFile: pki.clientCertFile,
      keyFile: pki.clientKeyFile,
    };
    await expect(
      connectLibvirt(lab.layout.hosts[0]!.tlsUri, { tls, connectTimeoutMs: 5_000 }),
    ).rejects.toThrow(/verify|certificate/);
  });

  it('is refused by libvirtd with a client certificate from another CA', async () => {
    const lab = sharedLab();
    const dir = mkdtempSync(join(tmpdir(), 'kz-tls-'));
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '1',
          '-keyout',
          `${dir}/k.pem`,
          '-out',
          `${dir}/c.pem`,
          '-subj',
          '/CN=stranger',
        ],
        { stdio: 'ignore' },
      );
      const tls = { caFile: lab.pki!.caFile, certFile: `${dir}/c.pem`, keyFile: `${dir}/k.pem` };
      await expect(
        connectLibvirt(lab.layout.hosts[0]!.tlsUri, { tls, connectTimeoutMs: 5_000 }),
      ).rejects.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('libvirt SSH transport against lab sshd and libvirtd', () => {
  it('runs virt-ssh-helper on the host over key auth with a verified host key', async () => {
    const lab = sharedLab();
    const status = await labStatus(lab);
    const c = await connectLibvirt(status.hosts[0]!.sshUri!);
    try {
      expect(await c.hostname()).toMatch(/\S/);
      expect((await c.nodeInfo()).cpus).toBeGreaterThan(0);
    } finally {
      await c.close();
    }
  });

  it('fails closed on a host key that does not match known_hosts', async () => {
    const lab = sharedLab();
    const dir = mkdtempSync(join(tmpdir(), 'kz-ssh-'));
    try {
      // h2's key filed under h1's address: a man in the middle, as far as the client can tell.
      const h2Line = readFileSync(lab.pki!.sshKnownHostsFile, 'utf8')
        .split('\n')
        .find((l) => l.startsWith(`${lab.layout.hosts[1]!.mgmtAddress} `))!;
      writeFileSync(`${dir}/known_hosts`, `${h2Line.replace(/^\S+/, lab.layout.hosts[0]!.mgmtAddress)}\n`);
      const uri = `qemu+ssh://root@${lab.layout.hosts[0]!.mgmtAddress}/system?keyfile=${lab.pki!.sshClientKeyFile}&known_hosts=${dir}/known_hosts`;
      await expect(connectLibvirt(uri, { connectTimeoutMs: 5_000 })).rejects.toThrow(
        /host key does not match/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('libvirt connection keepalive against a killed libvirtd', () => {
  it('detects the dead peer within interval x count and fails every pending call at once', async () => {
    const lab = sharedLab();
    // h3 carries no VM of this file; it is healed (libvirtd restarted) afterwards.
    const c = await openLabClient(lab, 'h3', { keepaliveIntervalMs: 500, keepaliveCount: 3 });
    expect(await c.hostname()).toMatch(/\S/);
    // One keepalive step on this machine right now (timer, then a libvirt round trip).
    const lagMs = await measureLagMs(125, () => c.hostname());
    const closed = new Promise<number>((resolve) => c.channel.on('close', () => resolve(Date.now())));
    try {
      const fencedAt = Date.now();
      await fenceHost(lab.id, 'h3');
      const fenceMs = Date.now() - fencedAt;
      const pending = [c.nodeInfo(), c.listAllDomains(), c.hostname()].map((p) =>
        p.then(
          () => null,
          (e: unknown) => e,
        ),
      );
      const errors = await Promise.all(pending);
      const failedAt = Date.now();
      for (const e of errors) expect(e).toBeInstanceOf(KeepaliveTimeoutError);
      // The keepalive, not the 60 s call deadline, fails the calls and closes the channel: at
      // 500 ms x 3 of silence after the fence took effect (at the latest when fenceHost
      // returned), plus one 125 ms tick and the lag this run measured.
      const boundMs = fenceMs + 500 * 3 + 125 + 4 * lagMs + 250;
      const why = `fence ${fenceMs} ms, lag ${lagMs} ms, failed after ${failedAt - fencedAt} ms`;
      console.log(`keepalive: ${why}, bound ${boundMs} ms`);
      expect(failedAt - fencedAt, why).toBeLessThan(boundMs);
      expect((await closed) - fencedAt, why).toBeLessThan(boundMs);
    } finally {
      await c.close().catch(() => undefined);
      await healHost(lab.id, 'h3');
    }
  });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(50);
  }
}
