import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FenceConfig } from '../../../src/config/index.ts';
import { FenceError, fencerFor } from '../../../src/fence/fencer.ts';
import { commandRan, sshArgs } from '../../../src/fence/ssh.ts';
import { type RedfishBmc, startRedfishBmc } from '../../support/redfish-server.ts';

const one = (fence: FenceConfig) =>
  fencerFor(new Map([['h1', { fence, managementAddress: '127.0.0.1' }]]), { pollIntervalMs: 50 });

describe('fence method none', () => {
  it('refuses, saying only an expired disk lock allows a restart', async () => {
    const f = one({ method: 'none' });
    const r = await f.fence('h1');
    expect(r).toMatchObject({ host: 'h1', method: 'none', ok: false, confirmedOff: false });
    expect(r.error).toMatch(/only an expired disk lock/);
    await expect(f.powerOff('h1')).rejects.toThrow(FenceError);
    await expect(f.powerOff('h1')).rejects.toThrow(/only an expired disk lock/);
  });
});

describe('ssh fencing', () => {
  const c = {
    method: 'ssh' as const,
    port: 2222,
    user: 'fence',
    keyFile: '/k/id',
    knownHostsFile: '/k/known',
    command: 'echo o > /proc/sysrq-trigger',
    confirmTimeoutMs: 1000,
  };
  it('checks the host key against the configured file only, with the configured key', () => {
    expect(sshArgs(c, '10.0.0.5', c.command)).toEqual([
      '-i',
      '/k/id',
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'UserKnownHostsFile=/k/known',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=5',
      '-p',
      '2222',
      '-l',
      'fence',
      '--',
      '10.0.0.5',
      c.command,
    ]);
  });
  it('counts a session the host dropped as run, a connection never made as failed', () => {
    expect(commandRan(0, '')).toBe(true);
    expect(commandRan(255, 'Connection to 10.0.0.5 closed by remote host.')).toBe(true);
    expect(commandRan(255, 'ssh: connect to host 10.0.0.5 port 22: Connection refused')).toBe(false);
    expect(commandRan(255, 'Host key verification failed.')).toBe(false);
    expect(commandRan(1, '')).toBe(false);
  });
  it('a host it cannot reach is a failed fence, not a confirmed one', async () => {
    // 127.0.0.1 port 1: nothing listens, the command never runs although the address answers.
    const r = await one({ ...c, port: 1 }).fence('h1');
    expect(r).toMatchObject({ ok: false, confirmedOff: false, method: 'ssh' });
    expect(r.error).toMatch(/did not run/);
  });
});

describe('redfish fencing against a local HTTPS BMC', () => {
  let bmc: RedfishBmc;
  const cfg = (): FenceConfig => ({
    method: 'redfish',
    address: '127.0.0.1',
    port: bmc.port,
    systemId: '1',
    username: bmc.username,
    passwordFile: bmc.passwordFile,
    caFile: bmc.caFile,
    insecure: false,
    confirmTimeoutMs: 3000,
  });
  beforeAll(async () => {
    bmc = await startRedfishBmc();
  });
  afterAll(() => bmc.close());

  it('sends ForceOff and confirms PowerState Off after the BMC reports it', async () => {
    bmc.state.power = 'On';
    const r = await one(cfg()).fence('h1');
    expect(r).toMatchObject({ ok: true, confirmedOff: true, method: 'redfish' });
    expect(bmc.resets).toEqual(['ForceOff']);
    expect(r.attempts).toBeGreaterThan(1); // the BMC turns Off 200 ms after the reset
    expect(r.evidence).toMatch(/PowerState Off/);
    expect(JSON.stringify(r)).not.toContain(execFileSync('cat', [bmc.passwordFile]).toString().trim());
  });
  it('powers the system on again for drills', async () => {
    await one(cfg()).powerOn('h1');
    expect(bmc.state.power).toBe('On');
  });
  it('is a failed fence when PowerState never turns Off', async () => {
    bmc.state.power = 'On';
    bmc.state.neverOff = true;
    const r = await one({ ...cfg(), confirmTimeoutMs: 300 } as FenceConfig).fence('h1');
    bmc.state.neverOff = false;
    expect(r).toMatchObject({ ok: false, confirmedOff: false });
    expect(r.error).toMatch(/not Off within 300 ms \(last: PowerState On\)/);
  });
  it('refuses the self-signed certificate without the CA file or insecure', async () => {
    const { caFile: _, ...noCa } = cfg() as Extract<FenceConfig, { method: 'redfish' }>;
    const r = await one(noCa).fence('h1');
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/self.signed|certificate/i);
    expect((await one({ ...noCa, insecure: true }).fence('h1')).ok).toBe(true);
  });
  it('a wrong password is a failed fence naming the HTTP status, not the password', async () => {
    const before = bmc.rejected;
    const r = await one({ ...cfg(), passwordFile: bmc.caFile } as FenceConfig).fence('h1');
    expect(r).toMatchObject({ ok: false });
    expect(r.error).toMatch(/HTTP 401/);
    expect(bmc.rejected).toBe(before + 1);
  });
});
