import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  ENV_REDIS_URL,
  formatConfigError,
  loadConfig,
  SHIPPED_LIMITS_FILE,
  SHIPPED_TIERS_FILE,
} from '../../../src/config/index.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURES = join(ROOT, 'test/fixtures/config/');
const EXAMPLE = join(ROOT, 'examples/keizokud.yaml');
const shown = (abs: string) => relative(process.cwd(), abs);

describe('loadConfig', () => {
  it('loads the example config of the 3-host lab without errors, warning only of reserved loop intervals', async () => {
    const { config, tiers, limits, warnings, file } = await loadConfig(EXAMPLE, {});
    expect(file).toBe(EXAMPLE);
    expect(warnings.map((w) => w.split(': ')[1])).toEqual([
      'loops.drsIntervalMs',
      'loops.maintenanceIntervalMs',
      'loops.schedulesIntervalMs',
    ]);
    expect(config.sites.map((s) => s.name)).toEqual(['dc1', 'dc2']);
    expect(config.hosts.map((h) => [h.name, h.site, h.uri, h.insecure])).toEqual([
      ['h1', 'dc1', 'qemu+tcp://10.100.0.11/system', true],
      ['h2', 'dc1', 'qemu+tcp://10.100.0.12/system', true],
      ['h3', 'dc2', 'qemu+tcp://10.100.0.13/system', true],
    ]);
    expect(config.policies).toEqual({ tiersFile: SHIPPED_TIERS_FILE, limitsFile: SHIPPED_LIMITS_FILE });
    expect(tiers.tiers.map((t) => t.id)).toEqual(['low', 'frontend', 'frontend-seasonal', 'core']);
    expect(Object.keys(limits.profiles)).toContain('capped-50');
    expect(config.vms.map((v) => v.tier)).toEqual(['frontend', 'core', 'frontend-seasonal', 'low']);
  });

  it('fills every default into a minimal config', async () => {
    const { config, warnings } = await loadConfig(join(FIXTURES, 'valid/minimal.yaml'), {});
    expect(warnings).toEqual([]);
    expect(config.timeZone).toBe('Asia/Tokyo');
    expect(config.hosts[0]?.fence).toEqual({ method: 'none' });
    expect(config.libvirt).toEqual({
      keepaliveIntervalSec: 1,
      keepaliveCount: 3,
      callTimeoutMs: 30_000,
      reconnectMinMs: 500,
      reconnectMaxMs: 30_000,
    });
    expect(config.api).toEqual({
      listen: '127.0.0.1:7480',
      allowPlainHttp: false,
      bodyLimitBytes: 65_536,
      rateLimitPerMinute: 1200,
      vmAdminMigrationPolicy: { maxTimeoutMs: 300_000, minBandwidthMiBs: 100, allowPostCopy: false },
    });
    expect(config.audit.retentionDays).toBe(400);
    expect(config.metrics).toBeUndefined();
    expect(config.leader).toEqual({ leaseMs: 10_000, renewMs: 3_000 });
    expect(config.loops).toEqual({
      inventoryIntervalMs: 10_000,
      healthIntervalMs: 500,
      limitsIntervalMs: 30_000,
      drsIntervalMs: 60_000,
      haIntervalMs: 2_000,
      maintenanceIntervalMs: 10_000,
      schedulesIntervalMs: 60_000,
    });
    expect(config.vms).toEqual([]);
  });

  it('deep-freezes the result', async () => {
    const loaded = await loadConfig(EXAMPLE, {});
    expect(Object.isFrozen(loaded)).toBe(true);
    expect(Object.isFrozen(loaded.config.hosts[0]?.fence)).toBe(true);
    expect(Object.isFrozen(loaded.tiers.tiers[3]?.objectives.maxOutageMs)).toBe(true);
    expect(Object.isFrozen(loaded.limits.profiles['noisy-neighbour-guard']?.network?.inbound)).toBe(true);
    expect(() => {
      (loaded.config.loops as { haIntervalMs: number }).haIntervalMs = 1;
    }).toThrow(TypeError);
  });

  it('resolves material paths against the config file directory', async () => {
    const { config } = await loadConfig(join(FIXTURES, 'valid/tls.yaml'), {});
    expect(config.libvirt.tls).toEqual({
      caFile: join(FIXTURES, 'valid/pki/ca.pem'),
      certFile: join(FIXTURES, 'valid/pki/cert.pem'),
      keyFile: join(FIXTURES, 'valid/pki/key.pem'),
    });
  });

  it('prefers policy files beside the config, falling back to the shipped ones', async () => {
    const { config, limits } = await loadConfig(join(FIXTURES, 'valid/beside/keizokud.yaml'), {});
    expect(config.policies).toEqual({
      tiersFile: SHIPPED_TIERS_FILE,
      limitsFile: join(FIXTURES, 'valid/beside/policies/limits.yaml'),
    });
    expect(Object.keys(limits.profiles)).toEqual(['tiny']);
  });

  it('warns, without failing, when a core-tier VM has only one site', async () => {
    const file = join(FIXTURES, 'valid/one-site-core.yaml');
    const { warnings } = await loadConfig(file, {});
    expect(warnings).toEqual([
      `${shown(file)}: vms[0].tier: tier "core" (基幹系) needs 2 sites for cross-site-live-migration and cross-site-failover, but 1 site is configured`,
    ]);
  });

  it('warns that a recovery site changes nothing for a tier that never crosses sites', async () => {
    const file = join(FIXTURES, 'valid/recovery-site-unused.yaml');
    const { config, warnings } = await loadConfig(file, {});
    expect(config.vms.map((v) => v.recoverySite)).toEqual(['dc2', 'dc2']);
    expect(warnings).toEqual([
      `${shown(file)}: vms[1].recoverySite: has no effect: tier "low" has no cross-site mechanism, so its VMs never go to "dc2"`,
    ]);
  });

  it('warns about an empty site, a no-op insecure flag and an API without TLS', async () => {
    const file = shown(join(FIXTURES, 'valid/warnings.yaml'));
    const { warnings } = await loadConfig(file, {});
    expect(warnings).toEqual([
      `${file}: sites[1]: site "dc2" has no hosts`,
      `${file}: hosts[0].insecure: has no effect: host "h1" does not use qemu+tcp`,
      `${file}: api.listen: the API listens on 0.0.0.0:7480 without TLS (allowPlainHttp is set)`,
    ]);
  });
});

describe(`${ENV_REDIS_URL}`, () => {
  it('overrides redis.url', async () => {
    const { config } = await loadConfig(EXAMPLE, { [ENV_REDIS_URL]: 'redis://10.0.0.5:6380/2' });
    expect(config.redis.url).toBe('redis://10.0.0.5:6380/2');
  });

  it('is ignored when empty, and no other variable is read', async () => {
    const { config } = await loadConfig(EXAMPLE, { [ENV_REDIS_URL]: '', REDIS_URL: 'redis://other:1/0' });
    expect(config.redis.url).toBe('redis://127.0.0.1:6379/0');
  });

  it('is reported as the environment when invalid, with its password hidden', async () => {
    const error = await loadConfig(EXAMPLE, { [ENV_REDIS_URL]: 'http://:secret@x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(formatConfigError(error)).toBe(
      'environment: KEIZOKU_REDIS_URL: expected a Redis URL like redis://127.0.0.1:6379/0 or rediss://host:6380, got "http://:***@x"',
    );
  });
});
