import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The systemd units of packaging/systemd: `systemd-analyze verify` accepts them (no unknown
 * directive, no bad value: verify only prints those, so any output fails), in a temporary root
 * that holds what a Debian install has (systemd's own units, /usr/bin/node), so the check does
 * not depend on where this machine keeps node.
 */
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const UNITS = join(REPO, 'packaging/systemd');
const ANALYZE = '/usr/bin/systemd-analyze';
const SYSTEM_UNITS = '/usr/lib/systemd/system';
const have = existsSync(ANALYZE) && existsSync(SYSTEM_UNITS);
if (!have)
  console.warn(`skipping systemd unit checks: ${ANALYZE} is missing (scripts/setup.sh installs systemd)`);

type Unit = Map<string, string[]>;
/** `Key=value` lines of a unit file (comments and sections dropped; repeated keys kept). */
function parseUnit(file: string): Unit {
  const keys: Unit = new Map();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  return keys;
}
const one = (u: Unit, key: string) => u.get(key)?.at(-1);
const seconds = (span: string) => {
  const m = /^(\d+)(s|min)?$/.exec(span);
  if (!m) throw new Error(`unexpected time span ${span}`);
  return Number(m[1]) * (m[2] === 'min' ? 60 : 1);
};

describe.skipIf(!have)('systemd units', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'kz-systemd-'));
    mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
    cpSync(SYSTEM_UNITS, join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    writeFileSync(join(root, 'usr/bin/node'), '#!/bin/sh\n');
    chmodSync(join(root, 'usr/bin/node'), 0o755);
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const verify = (name: string, text: string) => {
    writeFileSync(join(root, 'etc/systemd/system', name), text);
    return spawnSync(ANALYZE, ['verify', '--man=no', `--root=${root}`, name], { encoding: 'utf8' });
  };

  for (const name of ['keizokud.service', 'keizoku-probe.service']) {
    it(`${name}: systemd-analyze verify says nothing about it`, () => {
      const r = verify(name, readFileSync(join(UNITS, name), 'utf8'));
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    });

    it(`${name}: runs an entry point of this repository, as a system user, hardened, raw sockets only`, () => {
      const u = parseUnit(join(UNITS, name));
      const exec = one(u, 'ExecStart')!.split(' ');
      expect(exec[0]).toBe('/usr/bin/node');
      expect(exec[1]).toMatch(/^\/opt\/keizoku\//);
      expect(existsSync(join(REPO, exec[1]!.slice('/opt/keizoku/'.length)))).toBe(true);
      expect(one(u, 'User')).toMatch(/^keizoku/);
      expect(one(u, 'Restart')).toBe('on-failure');
      expect(one(u, 'ProtectSystem')).toBe('strict');
      for (const k of ['NoNewPrivileges', 'PrivateTmp', 'ProtectHome']) expect(one(u, k), k).toBe('yes');
      // fping, for ICMP, needs CAP_NET_RAW and nothing else.
      expect(one(u, 'CapabilityBoundingSet')).toBe('CAP_NET_RAW');
      expect(one(u, 'AmbientCapabilities')).toBe('CAP_NET_RAW');
      expect(one(u, 'RestrictAddressFamilies')!.split(' ')).toEqual(
        expect.arrayContaining(['AF_INET', 'AF_INET6']),
      );
    });
  }

  it('the checks can fail: a misspelt directive and a missing executable are reported', () => {
    const text = readFileSync(join(UNITS, 'keizokud.service'), 'utf8');
    const typo = verify('typo.service', text.replace('ProtectSystem=', 'ProtectSytem='));
    expect(typo.stderr).toMatch(/Unknown key 'ProtectSytem'/);
    const missing = verify('missing.service', text.replaceAll('/usr/bin/node', '/usr/bin/no-such-node'));
    expect(missing.stderr).toMatch(/no-such-node is not executable/);
    expect(missing.status).not.toBe(0);
  });

  it("keizokud's stop timeout outlasts its 25 s drain (docs/keizokud.md), and its state directories are writable", () => {
    const u = parseUnit(join(UNITS, 'keizokud.service'));
    expect(seconds(one(u, 'TimeoutStopSec')!)).toBeGreaterThan(25);
    // The defaults of audit.dir and drills.dir (docs/configuration.md), under /var/lib.
    expect(one(u, 'StateDirectory')!.split(' ')).toEqual(['keizoku', 'keizoku/audit', 'keizoku/drills']);
  });

  it('the sysusers snippet creates both users the units run as', () => {
    const sysRoot = join(root, 'sysusers');
    mkdirSync(join(sysRoot, 'etc'), { recursive: true });
    const conf = join(dirname(UNITS), 'systemd/sysusers.d/keizoku.conf');
    const r = spawnSync('systemd-sysusers', [`--root=${sysRoot}`, conf], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const users = readFileSync(join(sysRoot, 'etc/passwd'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(':')[0]);
    const wanted = ['keizokud.service', 'keizoku-probe.service'].map((n) =>
      one(parseUnit(join(UNITS, n)), 'User'),
    );
    expect(users.sort()).toEqual(wanted.sort());
  });
});
