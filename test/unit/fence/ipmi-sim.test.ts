import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FenceConfig } from '../../../src/config/index.ts';
import { FenceError, fencerFor } from '../../../src/fence/fencer.ts';
import {
  type IpmiSim,
  ipmiSimMissing,
  MACHINE,
  recordIpmitoolArgv,
  running,
  startIpmiSim,
} from '../../support/ipmi-sim.ts';
import { alive } from '../../support/process.ts';

const missing = ipmiSimMissing();
const one = (fence: FenceConfig) =>
  fencerFor(new Map([['h1', { fence, managementAddress: '127.0.0.1' }]]), { pollIntervalMs: 50 });
/** A power off that leaves its mark, then cuts the stand-in machine's power. */
const MARKED_OFF = `date +%s%N >> "$IPMI_SIM_DIR/power-off-ran"; ${MACHINE.powerOff}`;

/**
 * The ipmi fence method with the real ipmitool against OpenIPMI's ipmi_sim on 127.0.0.1, whose
 * chassis control powers a stand-in machine (a process) off and on: status is whether it lives.
 */
describe.skipIf(missing)(
  missing
    ? `ipmi fencing against ipmi_sim: skipped, ${missing}`
    : 'ipmi fencing against ipmi_sim on loopback',
  () => {
    let bmc: IpmiSim;
    let argv: ReturnType<typeof recordIpmitoolArgv>;
    const offRuns = () => {
      const f = join(bmc.dir, 'power-off-ran');
      return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').length : 0;
    };

    beforeAll(async () => {
      argv = recordIpmitoolArgv();
      bmc = await startIpmiSim({ powerOff: MARKED_OFF });
    });
    afterAll(async () => {
      argv?.restore();
      await bmc?.close();
      if (bmc) expect(alive(bmc.pid)).toBe(false);
    });

    it('powers the machine off over lanplus and confirms it off', async () => {
      const machine = bmc.machinePid();
      expect(machine).not.toBeNull();
      const r = await one(bmc.fence()).fence('h1');
      expect(r).toMatchObject({ host: 'h1', method: 'ipmi', ok: true, confirmedOff: true });
      expect(r.evidence).toMatch(
        new RegExp(
          `ipmitool chassis power off at 127.0.0.1:${bmc.port}: Chassis Power Control: Down/Off; then \\d+ status read\\(s\\), last: Chassis Power is off`,
        ),
      );
      expect(offRuns()).toBe(1);
      expect(running(machine!)).toBe(false);
      expect(bmc.machinePid()).toBeNull();
      expect(bmc.requests()).toContain('set power 0');
    });

    it('powers it on again (drills), and fences it over IPMI 1.5 lan too', async () => {
      const f = one(bmc.fence({ interface: 'lan' }));
      await f.powerOn('h1');
      const machine = bmc.machinePid();
      expect(machine).not.toBeNull();
      expect(bmc.requests().at(-1)).toBe('set power 1');
      const r = await f.fence('h1');
      expect(r).toMatchObject({ ok: true, confirmedOff: true });
      expect(offRuns()).toBe(2);
      expect(running(machine!)).toBe(false);
      await f.powerOn('h1');
      expect(bmc.machinePid()).not.toBeNull();
    });

    it('a wrong password is a failed fence naming the session, and nothing is powered off', async () => {
      const wrong = join(bmc.dir, 'wrong-password');
      writeFileSync(wrong, 'not-the-password\n', { mode: 0o600 });
      const machine = bmc.machinePid();
      const before = bmc.requests().length;
      const f = one(bmc.fence({ passwordFile: wrong }));
      const r = await f.fence('h1');
      expect(r).toMatchObject({ ok: false, confirmedOff: false });
      expect(r.error).toMatch(
        `ipmi 127.0.0.1:${bmc.port}: chassis power off failed: Error: Unable to establish IPMI v2 / RMCP+ session`,
      );
      expect(r.attempts).toBeUndefined(); // no status read after a refused power off
      expect(bmc.requests().slice(before)).toEqual([]);
      expect(offRuns()).toBe(2);
      expect(bmc.machinePid()).toBe(machine);
      await expect(f.powerOn('h1')).rejects.toThrow(FenceError);
    });

    it('a BMC that accepts the power off while the machine keeps its power: not confirmed within the timeout', async () => {
      // The power off runs and exits 0, but the machine's process is left alone.
      bmc.setHooks({ powerOff: `date +%s%N >> "$IPMI_SIM_DIR/power-off-ran"` });
      const machine = bmc.machinePid();
      const r = await one(bmc.fence({ confirmTimeoutMs: 600 })).fence('h1');
      bmc.setHooks({ powerOff: MARKED_OFF });
      expect(r).toMatchObject({ ok: false, confirmedOff: false });
      expect(r.error).toBe(
        `ipmi 127.0.0.1:${bmc.port}: power off sent but not confirmed within 600 ms (last status: Chassis Power is on)`,
      );
      expect(r.attempts).toBeGreaterThan(1);
      expect(offRuns()).toBe(3);
      expect(bmc.machinePid()).toBe(machine);
      expect(running(machine!)).toBe(true);
    });

    it('a power off the BMC fails is a failed fence, with no status read', async () => {
      bmc.setHooks({ powerOff: 'echo relay stuck; exit 1' });
      const r = await one(bmc.fence()).fence('h1');
      bmc.setHooks({ powerOff: MARKED_OFF });
      expect(r).toMatchObject({ ok: false, confirmedOff: false });
      expect(r.error).toMatch(`ipmi 127.0.0.1:${bmc.port}: chassis power off failed:`);
      expect(bmc.hookLog()).toContain('relay stuck');
      expect(bmc.machinePid()).not.toBeNull();
    });

    it('never put the password on an ipmitool command line', () => {
      const lines = argv.lines();
      expect(lines.length).toBeGreaterThan(5);
      for (const l of lines) {
        expect(l).not.toContain(bmc.password);
        expect(l).toMatch(/ -f \S+/);
      }
      expect(lines.filter((l) => l.endsWith('chassis power off')).length).toBeGreaterThanOrEqual(4);
    });
  },
);
