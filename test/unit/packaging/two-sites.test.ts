import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * examples/two-sites as an operator installs it: the directory copied to a configuration
 * directory, with the certificates, keys and tokens it names put beside it (placeholders;
 * --check-config checks that they exist and that keys are readable by their owner only, and
 * connects to nothing). keizokud and keizoku-probe must take it without a single warning.
 */
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const EXAMPLE = join(REPO, 'examples/two-sites');

const run = (bin: string, config: string) =>
  spawnSync(process.execPath, [join(REPO, 'bin', bin), '--config', config, '--check-config'], {
    encoding: 'utf8',
    cwd: REPO,
    env: { ...process.env, KEIZOKU_REDIS_URL: '' },
  });

describe('examples/two-sites', () => {
  let etc: string;
  beforeAll(() => {
    etc = mkdtempSync(join(tmpdir(), 'kz-two-sites-'));
    cpSync(EXAMPLE, etc, { recursive: true });
    mkdirSync(join(etc, 'pki'), { recursive: true });
    for (const f of ['cacert.pem', 'clientcert.pem', 'api.crt'])
      writeFileSync(join(etc, 'pki', f), 'placeholder\n');
    for (const f of ['clientkey.pem', 'api.key'])
      writeFileSync(join(etc, 'pki', f), 'placeholder\n', { mode: 0o600 });
    for (const s of ['east', 'west'])
      writeFileSync(join(etc, `probe-dc-${s}.token`), 'kz_placeholder\n', { mode: 0o600 });
  });
  afterAll(() => rmSync(etc, { recursive: true, force: true }));

  it('keizokud --check-config accepts keizokud.yaml with no warning', () => {
    const r = run('keizokud.mjs', join(etc, 'keizokud.yaml'));
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`${join(etc, 'keizokud.yaml')}: ok (4 hosts, 2 sites)`);
    expect(r.status).toBe(0);
  });

  it('keizoku-probe --check-config accepts the probe of each site', () => {
    for (const s of ['east', 'west']) {
      const file = join(etc, `probe-dc-${s}.yaml`);
      const r = run('keizoku-probe.mjs', file);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe(`${file}: ok`);
    }
  });

  it('the check can fail: a key others can read is refused', () => {
    const bad = mkdtempSync(join(tmpdir(), 'kz-two-sites-bad-'));
    try {
      cpSync(etc, bad, { recursive: true });
      chmodSync(join(bad, 'pki/clientkey.pem'), 0o644);
      const r = run('keizokud.mjs', join(bad, 'keizokud.yaml'));
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/libvirt\.tls\.keyFile: readable by group or others/);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });

  it('uses TLS to every host, two sites each with hosts and a probe, and all four BCP tiers', () => {
    const c = parse(readFileSync(join(EXAMPLE, 'keizokud.yaml'), 'utf8'));
    expect(c.hosts.every((h: { uri: string }) => h.uri.startsWith('qemu+tls://'))).toBe(true);
    const sites = c.sites.map((s: { name: string }) => s.name);
    expect(sites).toHaveLength(2);
    for (const s of sites) {
      expect(c.hosts.filter((h: { site: string }) => h.site === s).length).toBeGreaterThanOrEqual(2);
      expect(parse(readFileSync(join(EXAMPLE, `probe-${s}.yaml`), 'utf8')).site).toBe(s);
    }
    const tiers = new Set(c.vms.map((v: { tier: string }) => v.tier));
    expect([...tiers].sort()).toEqual(['core', 'frontend', 'frontend-seasonal', 'low']);
    // Each site is the other's recovery site: core VMs belong to each.
    const homes = c.vms
      .filter((v: { tier: string }) => v.tier === 'core')
      .map((v: { homeSite: string }) => v.homeSite);
    expect(homes.sort()).toEqual(sites.sort());
    // ... and each has the other site as its recovery site.
    for (const v of c.vms.filter((v: { tier: string }) => v.tier === 'core'))
      expect([v.homeSite, v.recoverySite].sort()).toEqual(sites.sort());
  });
});
