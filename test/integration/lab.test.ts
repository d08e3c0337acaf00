import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createVm,
  downLab,
  fenceHost,
  type HostLayout,
  healHost,
  type LabState,
  labStatus,
  partitionHost,
  ping,
  readState,
  virsh,
  virshMigrate,
  waitFor,
  waitForPing,
} from '../../lab/index.ts';
import { fencerFor } from '../../src/fence/fencer.ts';
import { type IpmiFence, ipmiArgs } from '../../src/fence/ipmi.ts';
import { IPMITOOL, labHostHooks, running, startIpmiSim } from '../support/ipmi-sim.ts';
import { labCli, upTestLab } from '../support/lab-fixture.ts';
import { qemuCopies } from '../support/qemu.ts';

/** What the lab must leave behind after `down`: nothing with its prefix, none of its pids. */
function leftovers(state: LabState, pids: number[]): string[] {
  const out: string[] = [];
  const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const ns of state.namespaces)
    if (netns.split('\n').some((l) => l.split(' ')[0] === ns)) out.push(`netns ${ns}`);
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  for (const l of links.matchAll(/^\d+: ([^:@]+)/gm))
    if (l[1]!.startsWith(state.layout.prefix)) out.push(`link ${l[1]}`);
  // A killed subreaper may stay a zombie of PID 1 for a moment: only live processes count.
  const live = (pid: number | string) => {
    try {
      return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
    } catch {
      return false;
    }
  };
  for (const pid of pids) if (live(pid)) out.push(`pid ${pid}`);
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      const ours = [
        `qemu+tcp://10.${100 + state.id}.`,
        `${state.layout.prefix}-h`,
        `keizoku-lab/${state.id}/`,
      ];
      if (live(p) && ours.some((m) => cmd.includes(m))) out.push(`process ${p}`);
    } catch {
      // gone meanwhile
    }
  }
  if (existsSync(`/sys/fs/cgroup/cpu/${state.layout.prefix}-h1`)) out.push('cgroup');
  return out;
}

describe('lab: 3 hosts over 2 sites', () => {
  let state: LabState;
  const pids: number[] = [];

  beforeAll(async () => {
    state = await upTestLab({ hosts: 3, sites: 2 });
    await Promise.all([
      createVm(state.id, { name: 'web1', host: 'h1' }),
      createVm(state.id, { name: 'core1', host: 'h3', disk: 'local' }),
    ]);
    state = readState(state.id)!;
    for (const h of state.hosts) pids.push(h.reaperPid!, h.libvirtdPid!);
  });

  afterAll(async () => {
    if (!state) return;
    await downLab(state.id);
    expect(leftovers(state, pids)).toEqual([]);
    // down twice is safe
    expect(labCli(['down', '--lab', String(state.id)]).code).toBe(0);
  });

  it('puts hosts on their sites and VMs on their hosts, and reports it as JSON', async () => {
    const r = labCli(['status', '--json', '--lab', String(state.id)]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.sites).toEqual([
      { name: 'dc1', hosts: ['h1', 'h2'] },
      { name: 'dc2', hosts: ['h3'] },
    ]);
    expect(s.hosts.map((h: { state: string }) => h.state)).toEqual(['up', 'up', 'up']);
    expect(s.hosts[0].uri).toBe(`qemu+tcp://10.${100 + state.id}.0.11/system`);
    const vms = Object.fromEntries(s.vms.map((v: { name: string; host: string }) => [v.name, v.host]));
    expect(vms).toEqual({ web1: 'h1', core1: 'h3' });
  });

  it('has a VM on each site answering ping from the root namespace, and the guest services', async () => {
    for (const vm of state.vms) expect(await ping(vm.address)).toBe(true);
    const page = await fetch(`http://${state.vms[0]!.address}/`).then((r) => r.text());
    expect(page).toContain('keizoku-lab-guest');
  });

  it('keeps a guest answering through virsh live migration within a site', async () => {
    const m = await virshMigrate(state, 'web1', 'h1', 'h2');
    const s = await labStatus(readState(state.id)!);
    expect(s.vms.find((v) => v.name === 'web1')).toMatchObject({ host: 'h2', state: 'running' });
    // It kept answering: replies before and after the move (one after virsh returned), and it
    // answers now.
    expect(m.ping.replies.length).toBeGreaterThan(10);
    expect(m.ping.replies.at(-1)!).toBeGreaterThan(m.endedAt);
    expect(m.downtimeMs).toBeGreaterThan(0);
    expect(await ping(state.vms.find((v) => v.name === 'web1')!.address)).toBe(true);
    console.log(
      `within-site: ${m.wallMs} ms, downtime ${m.downtimeMs} ms, ping ${m.ping.sent}/${m.ping.received}, gap ${m.ping.maxGapMs} ms, last reply ${m.ping.replies.at(-1)! - m.endedAt} ms after virsh returned`,
    );
  });

  it('keeps a guest answering through live migration with --copy-storage-all across the WAN', async () => {
    const m = await virshMigrate(state, 'core1', 'h3', 'h1', ['--copy-storage-all']);
    const s = await labStatus(readState(state.id)!);
    expect(s.vms.find((v) => v.name === 'core1')).toMatchObject({ host: 'h1', state: 'running' });
    // It answered during the move (live: the source ran through the copy). After a storage copy
    // across the WAN the first reply on the destination can come later than the capture's
    // 300 ms past virsh's return (seen: none in it once); the wait below covers that.
    expect(m.ping.replies.at(-1)!).toBeGreaterThan(m.endedAt - m.wallMs);
    // It answers now too. Once in two full runs under load a single 2 s ping right after the
    // storage copy went unanswered: wait up to 10 s, and say how long it took.
    const t0 = Date.now();
    await waitForPing(state.vms.find((v) => v.name === 'core1')!.address, 10_000);
    console.log(
      `cross-site: ${m.wallMs} ms, downtime ${m.downtimeMs} ms, ping ${m.ping.sent}/${m.ping.received}, gap ${m.ping.maxGapMs} ms, last reply ${m.ping.replies.at(-1)! - m.endedAt} ms after virsh returned, answered again after ${Date.now() - t0} ms`,
    );
  });

  it('refuses bad input with one line naming the problem, changing nothing', () => {
    const id = String(state.id);
    const before = readFileSync(`/var/lib/keizoku-lab/${id}/state.json`, 'utf8');
    const cases: [string[], RegExp][] = [
      [['vm', 'create', 'x1', '--host', 'h9', '--lab', id], /unknown host 'h9'.*h1, h2, h3/],
      [['vm', 'create', 'web1', '--host', 'h1', '--lab', id], /VM 'web1' already exists/],
      [['up', '--hosts', '3', '--sites', '2', '--lab', id], new RegExp(`lab ${id} is already up`)],
      [
        ['up', '--hosts', '2', '--sites', '3', '--lab', '48'],
        /--sites must be from 1 to the number of hosts/,
      ],
      [['vm', 'create', 'Bad_Name', '--host', 'h1', '--lab', id], /VM name 'Bad_Name' is invalid/],
      [['fence', 'h7', '--lab', id], /unknown host 'h7'/],
      [['up', '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, msg] of cases) {
      const r = labCli(args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
    }
    expect(readFileSync(`/var/lib/keizoku-lab/${id}/state.json`, 'utf8')).toBe(before);
    expect(existsSync('/var/lib/keizoku-lab/48')).toBe(false);
  });

  it('partition cuts only the controller path: libvirt unreachable, VMs keep answering', async () => {
    const core1 = state.vms.find((v) => v.name === 'core1')!; // now on h1
    const h1 = state.layout.hosts[0]!;
    await partitionHost(state.id, 'h1');
    const r = spawnSync('virsh', ['-c', h1.uri, 'list'], { timeout: 4_000 });
    expect(r.status).not.toBe(0);
    expect(await ping(core1.address)).toBe(true);
    await healHost(state.id, 'h1');
    expect(spawnSync('virsh', ['-c', h1.uri, 'list'], { timeout: 10_000 }).status).toBe(0);
  });

  it('fence makes the host URI unreachable and its VMs stop answering', async () => {
    const web1 = state.vms.find((v) => v.name === 'web1')!; // now on h2
    const h2 = state.layout.hosts[1]!;
    const libvirtdPid = readState(state.id)!.hosts[1]!.libvirtdPid!;
    // Answering before the fence, so silence after it is the fence's doing.
    expect(await ping(web1.address)).toBe(true);
    await fenceHost(state.id, 'h2');
    expect(existsSync(`/proc/${libvirtdPid}`)).toBe(false);
    const r = spawnSync('virsh', ['-c', h2.uri, 'list'], { timeout: 4_000 });
    expect(r.status).not.toBe(0);
    expect(await ping(web1.address)).toBe(false);
    const s = await labStatus(readState(state.id)!);
    expect(s.hosts[1]!.state).toBe('fenced');
    // heal brings libvirt back; the VM stays off, as after a power cut
    await healHost(state.id, 'h2');
    pids.push(readState(state.id)!.hosts[1]!.reaperPid!, readState(state.id)!.hosts[1]!.libvirtdPid!);
    expect(spawnSync('virsh', ['-c', h2.uri, 'list'], { timeout: 10_000 }).status).toBe(0);
    // Not running there (web1 came by a virsh migration without --persistent, so h2 keeps no
    // definition of it), and not answering.
    const running = spawnSync('virsh', ['-c', h2.uri, 'list', '--name'], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(running.status).toBe(0);
    expect(running.stdout.split('\n').map((l) => l.trim())).not.toContain('web1');
    expect(await ping(web1.address)).toBe(false);
  });
  it('refuses a second start of a shared-disk VM on another host of its site until its host is fenced', async () => {
    const ha = await createVm(state.id, { name: 'ha1', host: 'h1', disk: 'shared' });
    state = readState(state.id)!;
    pids.push(state.hosts[0]!.reaperPid!);
    const [h1, h2] = state.layout.hosts as [HostLayout, HostLayout];
    const xml = (await virsh(h1, ['dumpxml', '--inactive', 'ha1'])).stdout;
    const file = join(mkdtempSync(join(tmpdir(), 'kz-ha1-')), 'ha1.xml');
    writeFileSync(file, xml);
    await virsh(h2, ['define', file]);
    // The disk is held by h1's QEMU and its virtlockd: h2 must not start a second copy.
    const refused = await virsh(h2, ['start', 'ha1']).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(refused).toMatch(/another process using the image \[\/srv\/keizoku-shared\/ha1.qcow2\]/);
    expect(await ping(ha.address)).toBe(true);
    // Once h1 is fenced its locks are gone with it, and the restart on h2 goes through.
    await fenceHost(state.id, 'h1');
    await virsh(h2, ['start', 'ha1']);
    expect(await waitForPing(ha.address, 60_000).then(() => true)).toBe(true);
    await healHost(state.id, 'h1');
    state = readState(state.id)!;
    pids.push(state.hosts[0]!.reaperPid!, state.hosts[0]!.libvirtdPid!);
  });

  it('fences h2 by ipmi: ipmitool against ipmi_sim, whose power off is the lab power cut of h2', async () => {
    const ha = state.vms.find((v) => v.name === 'ha1')!; // started on h2 by the test before
    const before = readState(state.id)!.hosts[1]!;
    expect(qemuCopies('ha1')).toBe(1);
    const bmc = await startIpmiSim(labHostHooks(state.id, 'h2'));
    try {
      const fence = bmc.fence({ confirmTimeoutMs: 30_000 });
      const f = fencerFor(
        new Map([['h2', { fence, managementAddress: state.layout.hosts[1]!.mgmtAddress }]]),
        {
          pollIntervalMs: 200,
        },
      );
      const r = await f.fence('h2');
      expect(r, bmc.hookLog()).toMatchObject({ ok: true, confirmedOff: true, method: 'ipmi' });
      // The BMC answered before the cut was done: off was read only once the host's processes were gone.
      expect(r.evidence).toMatch(
        /Chassis Power Control: Down\/Off; then \d+ status read\(s\), last: Chassis Power is off/,
      );
      console.log(`ipmi fence of h2: ${r.endedAt - r.startedAt} ms, ${r.attempts} status read(s)`);
      expect(bmc.requests().filter((q) => q === 'set power 0')).toHaveLength(1);
      expect(running(before.reaperPid!)).toBe(false);
      expect(running(before.libvirtdPid!)).toBe(false);
      expect(qemuCopies('ha1')).toBe(0);
      expect(await ping(ha.address)).toBe(false);
      expect((await labStatus(readState(state.id)!)).hosts[1]!.state).toBe('fenced');
      // Power on is the lab's heal: libvirtd back, the BMC reports the power on again.
      const t0 = Date.now();
      await f.powerOn('h2');
      await waitFor(
        'h2 healed by its BMC',
        async () => {
          const h = readState(state.id)!.hosts[1]!;
          return !h.fenced && h.libvirtdPid !== null && running(h.reaperPid!);
        },
        60_000,
        250,
      );
      console.log(`ipmi power on of h2: libvirtd up ${Date.now() - t0} ms after ipmitool was called`);
      const after = readState(state.id)!.hosts[1]!;
      pids.push(after.reaperPid!, after.libvirtdPid!);
      const status = execFileSync(IPMITOOL, ipmiArgs(fence as IpmiFence, ['chassis', 'power', 'status']), {
        encoding: 'utf8',
      });
      expect(status.trim()).toBe('Chassis Power is on');
      expect(spawnSync('virsh', ['-c', state.layout.hosts[1]!.uri, 'list'], { timeout: 10_000 }).status).toBe(
        0,
      );
    } finally {
      await bmc.close();
    }
  });
});
