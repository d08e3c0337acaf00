import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/index.ts';
import { RESERVED_LOOP_INTERVALS } from '../../../src/config/not-in-force.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MINIMAL = join(ROOT, 'test/fixtures/config/valid/minimal.yaml');

const RESERVED_WARNINGS = [
  'warning: examples/keizokud.yaml: loops.drsIntervalMs: accepted but not in force: DRS plans every drs.intervalSec',
  'warning: examples/keizokud.yaml: loops.maintenanceIntervalMs: accepted but not in force: maintenance runs as jobs, not on an interval',
  'warning: examples/keizokud.yaml: loops.schedulesIntervalMs: accepted but not in force: schedules fire at their cron times',
];

describe('fields accepted but not in force', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kz-nif-'));
    writeFileSync(join(dir, 'ipmi.password'), 'x\n', { mode: 0o600 });
    writeFileSync(join(dir, 'id'), 'x\n', { mode: 0o600 });
    writeFileSync(join(dir, 'known_hosts'), 'x\n', { mode: 0o600 });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keizokud --check-config examples/keizokud.yaml: ok, and a warning for exactly each reserved loop interval it sets', () => {
    const r = spawnSync(
      'node',
      ['bin/keizokud.mjs', '--config', 'examples/keizokud.yaml', '--check-config'],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('examples/keizokud.yaml: ok (3 hosts, 2 sites)\n');
    expect(r.stderr.trim().split('\n')).toEqual(RESERVED_WARNINGS);
  });

  it('names vms[].dataClass and each reserved interval, and nothing that works (every fence method fences)', async () => {
    const file = join(dir, 'keizokud.yaml');
    writeFileSync(
      file,
      [
        'sites: [{ name: dc1 }]',
        'hosts:',
        '  - { name: h1, uri: "qemu+tcp://10.0.0.1/system", site: dc1, managementAddress: 10.0.0.1, insecure: true,',
        '      fence: { method: ipmi, address: 10.0.9.1, username: admin, passwordFile: ipmi.password } }',
        '  - { name: h2, uri: "qemu+tcp://10.0.0.2/system", site: dc1, managementAddress: 10.0.0.2, insecure: true,',
        '      fence: { method: ssh, keyFile: id, knownHostsFile: known_hosts, command: "poweroff -f" } }',
        '  - { name: h3, uri: "qemu+tcp://10.0.0.3/system", site: dc1, managementAddress: 10.0.0.3, insecure: true,',
        '      fence: { method: lab } }',
        '  - { name: h4, uri: "qemu+tcp://10.0.0.4/system", site: dc1, managementAddress: 10.0.0.4, insecure: true,',
        '      fence: { method: none } }',
        'redis: { url: "redis://127.0.0.1:6379/0" }',
        `loops: { ${['inventoryIntervalMs', 'healthIntervalMs', 'limitsIntervalMs', ...Object.keys(RESERVED_LOOP_INTERVALS)].map((k) => `${k}: 5000`).join(', ')} }`,
        'vms:',
        '  - { match: { name: db1 }, tier: low, dataClass: a, limits: standard, haPriority: 5 }',
        '  - { match: { labels: { season: tax } }, tier: low }',
        '',
      ].join('\n'),
    );
    const { warnings } = await loadConfig(file, {});
    const paths = warnings.map((w) => w.split(': ')[1]);
    expect(paths).toEqual([
      'loops.drsIntervalMs',
      'loops.maintenanceIntervalMs',
      'loops.schedulesIntervalMs',
      'vms[0].dataClass',
    ]);
    expect(warnings[3]).toMatch(/no loop replicates by data class yet/);
  });

  it('warns for no field left at its default', async () => {
    expect((await loadConfig(MINIMAL, {})).warnings).toEqual([]);
  });

  it('keeps the reserved list true: a reserved interval is read nowhere in src/, every other interval is', async () => {
    const intervals = Object.keys((await loadConfig(MINIMAL, {})).config.loops);
    const sources: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts') && !p.includes('/src/config/')) sources.push(readFileSync(p, 'utf8'));
      }
    };
    walk(join(ROOT, 'src'));
    const read = new Set(
      sources.flatMap((s) => [...s.matchAll(/\bloops\.(\w+IntervalMs)\b/g)].map((m) => m[1]!)),
    );
    const used = intervals.filter((k) => read.has(k));
    expect(used.sort()).toEqual(intervals.filter((k) => !(k in RESERVED_LOOP_INTERVALS)).sort());
  });
});
