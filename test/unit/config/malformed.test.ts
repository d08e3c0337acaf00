import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, formatConfigError, loadConfig } from '../../../src/config/index.ts';

const FIXTURES = fileURLToPath(new URL('../../fixtures/config/', import.meta.url));
/** A fixture's path as keizokud shows it: relative to the working directory. */
const shown = (name: string) => relative(process.cwd(), join(FIXTURES, name));

const TIERS = '"low", "frontend", "frontend-seasonal" or "core" (from policies/tiers.yaml)';
const PROFILES =
  '"unlimited", "small", "standard", "capped-50" or "noisy-neighbour-guard" (from policies/limits.yaml)';

/** Fixture -> every line keizokud prints for it, `{F}` standing for the fixture's own path. */
const CASES: [string, string[]][] = [
  [
    'missing-field',
    ['{F}: hosts[0].uri: required field is missing: expected a libvirt URI like qemu+tls://host/system'],
  ],
  ['wrong-type', ['{F}: loops.haIntervalMs: expected an integer >= 100, got "2s"']],
  ['unknown-tier', [`{F}: vms[0].tier: unknown tier "gold": expected one of ${TIERS}`]],
  ['duplicate-host', ['{F}: hosts[1].name: duplicate host name "h1" (also hosts[0])']],
  ['duplicate-uri', ['{F}: hosts[1].uri: duplicate: the same libvirtd as hosts[0] ("h1")']],
  ['bad-uri', ['{F}: hosts[0].uri: expected a libvirt URI like qemu+tls://host/system, got "http://x"']],
  [
    'bad-uri-path',
    [
      '{F}: hosts[0].uri: expected a libvirt URI like qemu+tls://host/system (path /system or /session), got "qemu+tcp://10.100.0.11/sytem"',
    ],
  ],
  [
    'tcp-without-insecure',
    [
      '{F}: hosts[0].insecure: host "h1" uses plain TCP (qemu+tcp: no encryption, no authentication), which needs insecure: true (lab only)',
    ],
  ],
  ['unknown-site', ['{F}: hosts[1].site: unknown site "dc3": expected one of "dc1" or "dc2" (from sites)']],
  ['unknown-limits', [`{F}: vms[0].limits: unknown limits profile "huge": expected one of ${PROFILES}`]],
  [
    'bad-drs',
    [
      '{F}: drs.mode: expected one of "off", "manual" or "automatic", got "auto"',
      '{F}: drs.aggressiveness: expected an integer from 1 to 5, got 7',
      '{F}: vms[0].drs: expected one of "off", "manual" or "automatic", got "sometimes"',
    ],
  ],
  ['unknown-field', ['{F}: leader.leaseMS: unknown field, did you mean "leaseMs"?']],
  ['yaml-syntax', ['{F}: YAML syntax error at line 5, column 1: Sequence item without - indicator']],
  ['duplicate-key', ['{F}: YAML syntax error at line 11, column 1: Map keys must be unique']],
  ['negative-interval', ['{F}: loops.inventoryIntervalMs: expected an integer >= 100, got -5']],
  ['bad-ha-priority', ['{F}: vms[0].haPriority: expected an integer from 0 to 1000, got 2000']],
  [
    'bad-fence-method',
    ['{F}: hosts[0].fence.method: expected one of "none", "lab", "ipmi", "redfish" or "ssh", got "stonith"'],
  ],
  [
    'ipmi-cipher-on-lan',
    [
      '{F}: hosts[0].fence.cipherSuite: a cipher suite is for interface lanplus (RMCP+); interface lan has none',
    ],
  ],
  [
    'renew-after-lease',
    ['{F}: leader.renewMs: expected at most a third of leader.leaseMs (5000), so at most 1666, got 5000'],
  ],
  // F21: renewing less than three times per lease lets leadership flap.
  [
    'renew-too-close',
    ['{F}: leader.renewMs: expected at most a third of leader.leaseMs (6000), so at most 2000, got 2500'],
  ],
  ['empty', ['{F}: the file is empty: expected a mapping with sites, hosts and redis']],
  ['top-level-list', ['{F}: expected a mapping with sites, hosts and redis, got a list']],
  ['does-not-exist', ['{F}: file not found']],
  ['missing-tls-file', [`{F}: libvirt.tls.keyFile: file not found: ${shown('valid/pki/nokey.pem')}`]],
  ['missing-tiers-file', [`{F}: policies.tiersFile: file not found: ${shown('bad/no-such-tiers.yaml')}`]],
  [
    'uses-bad-tiers',
    [
      `${shown('tiers/missing-objectives.yaml')}: tiers[0].objectives: required field is missing: expected a mapping with maxOutageMs, rtoSeconds and monthlyAvailabilityPercent`,
    ],
  ],
  [
    'cross-references',
    [
      '{F}: sites[1].name: duplicate site name "dc1" (also sites[0])',
      '{F}: hosts[1].managementAddress: duplicate address 10.0.0.1 (also hosts[0], "h1")',
      '{F}: hosts[0].uri: host "h1" uses TLS, which needs libvirt.tls (caFile, certFile, keyFile)',
      '{F}: hosts[1].uri: host "h2" uses SSH, which needs libvirt.ssh (keyFile, knownHostsFile)',
      '{F}: vms[0].homeSite: unknown site "dc2": expected "dc1" (from sites)',
      `{F}: vms[0].antiAffinityGroup: "db" is also this entry's affinityGroup`,
      '{F}: metrics.listen: 127.0.0.1:7480 is already api.listen (leave metrics out to serve /metrics on the API)',
    ],
  ],
  [
    'recovery-site',
    [
      '{F}: vms[0].recoverySite: required: tier "core" (基幹系) moves its VMs across sites (cross-site-live-migration, cross-site-failover), so the entry needs the site they go to, expected "dc2" (from sites)',
      '{F}: vms[1].recoverySite: "dc1" is also the entry\'s homeSite: a recovery site must be another site',
      '{F}: vms[2].recoverySite: unknown site "dc9": expected one of "dc1" or "dc2" (from sites)',
    ],
  ],
  [
    'cross-site-migration',
    [
      '{F}: migration.compression: "zstd": for parallel connections only (parallelConnections >= 1); one connection takes xbzrle or mt',
      '{F}: migration.crossSite[0].sites[1]: unknown site "dc3": expected one of "dc1" or "dc2" (from sites)',
      '{F}: migration.crossSite[1].sites: "dc2" twice: a rule is for a move between two sites',
      `{F}: migration.crossSite[1].tier: unknown tier "gold": expected one of ${TIERS}`,
      '{F}: migration.crossSite[2].compression: "xbzrle": for one connection only, but parallelConnections is 4 (parallel connections take zlib or zstd)',
      '{F}: migration.crossSite[3].compression: zlib and zstd cannot be used at once',
    ],
  ],
  [
    'host-groups',
    [
      '{F}: hostGroups[1].name: duplicate host group name "left" (also hostGroups[0])',
      '{F}: hostGroups[0].hosts[1]: unknown host "h9": expected one of "h1" or "h2" (from hosts)',
      '{F}: vms[0].hostGroup: unknown host group "right": expected one of "left" or "all" (from hostGroups)',
      '{F}: vms[1].hostGroupRule: a hostGroupRule needs a hostGroup in the same entry',
      '{F}: vms[2].hostGroupRule: host group "all" holds every host, so must-not run on it leaves these VMs no host',
    ],
  ],
  [
    'host-group-rule',
    ['{F}: vms[1].hostGroupRule: expected one of "must", "should", "must-not" or "should-not", got "never"'],
  ],
  [
    'many-errors',
    [
      '{F}: hosts[0].insecure: expected true or false, got "yes"',
      '{F}: hosts[1].uri: expected a libvirt URI like qemu+tls://host/system (path /system or /session), got "qemu+tcp://10.100.0.12"',
      '{F}: hosts[1].capacity.cpus: expected an integer >= 1, got 0',
      '{F}: redis.url: expected a Redis URL like redis://127.0.0.1:6379/0 or rediss://host:6380, got "localhost:6379"',
    ],
  ],
];

async function failure(file: string): Promise<ConfigError> {
  const error = await loadConfig(file, {}).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

describe('malformed configs', () => {
  it.each(CASES)('%s: names the file and the path', async (name, expected) => {
    const file = shown(`bad/${name}.yaml`);
    const error = await failure(file);
    const lines = expected.map((line) => line.replace('{F}', file));
    expect(formatConfigError(error).split('\n')).toEqual(lines);
    expect(error.issues).toHaveLength(lines.length);
  });

  it('keeps the issues as data, without a stack trace in the text', async () => {
    const error = await failure(shown('bad/unknown-site.yaml'));
    expect(error.issues).toEqual([
      {
        file: shown('bad/unknown-site.yaml'),
        path: ['hosts', 1, 'site'],
        message: expect.stringContaining('"dc3"'),
      },
    ]);
    expect(formatConfigError(error)).not.toMatch(/\n\s+at /);
    expect(Object.isFrozen(error.issues)).toBe(true);
  });

  it('gives the line and column of a YAML syntax error as data too', async () => {
    const error = await failure(shown('bad/yaml-syntax.yaml'));
    expect(error.issues[0]).toMatchObject({ path: [], line: 5, column: 1 });
  });

  it('shows a config named by an absolute path outside the working directory as given', async () => {
    const error = await failure('/nonexistent/keizokud.yaml');
    expect(formatConfigError(error)).toBe('/nonexistent/keizokud.yaml: file not found');
  });

  it('formats errors that are not ConfigErrors by message only', () => {
    expect(formatConfigError(new Error('boom'))).toBe('boom');
    expect(formatConfigError('text')).toBe('text');
  });
});
