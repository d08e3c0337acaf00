import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatConfigError, isConfigError, loadConfig } from '../../../src/config/index.ts';
import { bullConnection, redisOptions } from '../../../src/jobs/connection.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kz-sentinel-'));
  writeFileSync(join(dir, 'sentinel.password'), 'sentinel-s3cret\n', { mode: 0o600 });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Writes a config whose redis section is `redis` (YAML flow text) and loads it. */
async function load(redis: string) {
  const file = join(dir, 'keizokud.yaml');
  writeFileSync(
    file,
    [
      'sites: [{ name: dc1 }]',
      'hosts: [{ name: h1, uri: "qemu+tcp://10.0.0.1/system", site: dc1, managementAddress: 10.0.0.1, insecure: true }]',
      `redis: ${redis}`,
      '',
    ].join('\n'),
  );
  return loadConfig(file, {});
}

async function problems(redis: string): Promise<string> {
  return load(redis).then(
    () => 'loaded',
    (e: unknown) => (isConfigError(e) ? formatConfigError(e) : String(e)),
  );
}

const THREE = '["127.0.0.1:26379", "127.0.0.1:26380", "[::1]:26381"]';

describe('redis.sentinels in the config', () => {
  it('loads sentinels with the primary name and a password file, resolved from the config directory', async () => {
    const { config, warnings } = await load(
      `{ url: "redis://:data-pw@ignored:6379/2", sentinels: ${THREE}, sentinelName: keizoku, sentinelPasswordFile: sentinel.password }`,
    );
    expect(warnings).toEqual([]);
    expect(config.redis.sentinels).toEqual(['127.0.0.1:26379', '127.0.0.1:26380', '[::1]:26381']);
    expect(config.redis.sentinelName).toBe('keizoku');
    expect(config.redis.sentinelPasswordFile).toBe(join(dir, 'sentinel.password'));
  });

  it('refuses sentinels without the name of the primary, naming the field', async () => {
    expect(await problems(`{ url: "redis://127.0.0.1:6379/0", sentinels: ${THREE} }`)).toMatch(
      /keizokud\.yaml: redis\.sentinelName: required with redis\.sentinels: expected the name the sentinels monitor the primary under/,
    );
  });

  it('refuses a sentinel that is not host:port, naming its index', async () => {
    expect(
      await problems(
        '{ url: "redis://127.0.0.1:6379/0", sentinels: ["127.0.0.1:26379", "sentinel-b"], sentinelName: k }',
      ),
    ).toMatch(
      /redis\.sentinels\[1\]: expected host:port of a Redis Sentinel like 10\.0\.0\.5:26379, got "sentinel-b"/,
    );
    expect(await problems('{ url: "redis://127.0.0.1:6379/0", sentinels: [], sentinelName: k }')).toMatch(
      /redis\.sentinels: expected/,
    );
  });

  it('refuses the same sentinel twice and sentinel keys without sentinels', async () => {
    expect(
      await problems(
        '{ url: "redis://127.0.0.1:6379/0", sentinels: ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:1"], sentinelName: k }',
      ),
    ).toMatch(/redis\.sentinels\[2\]: 127\.0\.0\.1:1 is already redis\.sentinels\[0\]/);
    const lone = await problems(
      '{ url: "redis://127.0.0.1:6379/0", sentinelName: k, sentinelPasswordFile: sentinel.password }',
    );
    expect(lone).toMatch(/redis\.sentinelName: only used with redis\.sentinels/);
    expect(lone).toMatch(/redis\.sentinelPasswordFile: only used with redis\.sentinels/);
  });

  it('warns that fewer than three sentinels cannot lose one and still promote', async () => {
    const { warnings } = await load(
      '{ url: "redis://127.0.0.1:6379/0", sentinels: ["127.0.0.1:26379", "127.0.0.1:26380"], sentinelName: k }',
    );
    expect(warnings).toEqual([
      expect.stringMatching(/redis\.sentinels: only two sentinels: a promotion needs a majority of them/),
    ]);
  });

  it('refuses a sentinel password file others can read, or that is missing, without showing the password', async () => {
    chmodSync(join(dir, 'sentinel.password'), 0o644);
    const open = await problems(
      `{ url: "redis://127.0.0.1:6379/0", sentinels: ${THREE}, sentinelName: k, sentinelPasswordFile: sentinel.password }`,
    );
    expect(open).toMatch(
      /redis\.sentinelPasswordFile: readable by group or others \(mode 0644\): chmod 600 .*sentinel\.password$/,
    );
    expect(open).not.toContain('sentinel-s3cret');
    expect(
      await problems(
        `{ url: "redis://127.0.0.1:6379/0", sentinels: ${THREE}, sentinelName: k, sentinelPasswordFile: nope }`,
      ),
    ).toMatch(/redis\.sentinelPasswordFile: .*nope/);
  });
});

describe('Redis connection options', () => {
  it('a URL alone: its host, port, database, credentials and TLS', () => {
    expect(redisOptions('rediss://u:p%40ss@[::1]:6380/3')).toEqual({
      host: '::1',
      port: 6380,
      db: 3,
      username: 'u',
      password: 'p@ss',
      tls: {},
    });
    expect(bullConnection('redis://127.0.0.1/0')).toEqual({
      host: '127.0.0.1',
      port: 6379,
      db: 0,
      maxRetriesPerRequest: null,
    });
  });

  it('with sentinels: the primary by name from the sentinels, the URL for database and password only', async () => {
    const { config } = await load(
      `{ url: "redis://:data-pw@ignored:6379/2", sentinels: ${THREE}, sentinelName: keizoku, sentinelPasswordFile: sentinel.password }`,
    );
    const o = bullConnection(config.redis);
    expect(o).toMatchObject({
      name: 'keizoku',
      sentinels: [
        { host: '127.0.0.1', port: 26379 },
        { host: '127.0.0.1', port: 26380 },
        { host: '::1', port: 26381 },
      ],
      sentinelPassword: 'sentinel-s3cret',
      password: 'data-pw',
      db: 2,
      // Off: with it a promotion ended some connections for good (bench:sentinel-clients).
      failoverDetector: false,
      maxRetriesPerRequest: null,
    });
    // Commands of keizokud's own connection wait through a promotion (~18 s of reconnects).
    expect(redisOptions(config.redis).maxRetriesPerRequest).toBe(40);
    expect(o).not.toHaveProperty('host');
    expect(o).not.toHaveProperty('port');
    // Reconnects to a promoted primary at most every 500 ms while the sentinels decide.
    expect([1, 4, 100].map((n) => (o.retryStrategy as (n: number) => number)(n))).toEqual([50, 200, 500]);
    const without = redisOptions({ url: 'redis://x/0', sentinels: ['10.0.0.5:26379'], sentinelName: 'k' });
    expect(without).not.toHaveProperty('sentinelPassword');
    expect(without).not.toHaveProperty('password');
  });
});
