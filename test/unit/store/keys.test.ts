import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CLUSTER_PREFIX, redisKeys } from '../../../src/store/keys.ts';

/** The map of every Redis key (src/store/keys.ts), and that no key is built anywhere else. */

const ROOT = join(import.meta.dirname, '../../..');
const MAP_FILE = 'src/store/keys.ts';

/** Each entry of the map as a function of one argument (constants ignore it). */
function entries(prefix: string): [string, (arg: string) => string][] {
  return Object.entries(redisKeys(prefix)).map(([name, v]) => [
    name,
    typeof v === 'function' ? (arg: string) => v(arg) : () => v,
  ]);
}

describe('redisKeys', () => {
  // Names that look like other entries' segments, where a collision would hide.
  const samples = [
    'a',
    'h1',
    'probes',
    'seen',
    'job',
    'token',
    'index',
    'summary',
    'cluster',
    'host:h1',
    'x:job',
  ];

  it('starts every key with the prefix, and no key inside BullMQ’s own', () => {
    for (const prefix of [CLUSTER_PREFIX, 'keizoku:lab-7:', 't:'])
      for (const [name, key] of entries(prefix))
        for (const arg of samples) {
          expect(key(arg), name).toMatch(new RegExp(`^${prefix}.`));
          if (name !== 'bullPrefix')
            expect(key(arg).startsWith(`${redisKeys(prefix).bullPrefix}:`), name).toBe(false);
        }
  });

  it('gives no two entries the same key for the sample names', () => {
    const owner = new Map<string, string>();
    for (const [name, key] of entries(CLUSTER_PREFIX))
      for (const arg of samples) {
        const k = key(arg);
        const was = owner.get(k);
        if (was !== undefined && was !== name) expect.fail(`${k} is both ${was} and ${name}`);
        owner.set(k, name);
      }
    expect(owner.size).toBeGreaterThan(entries(CLUSTER_PREFIX).length);
  });

  it('gives no two entries the same key for any names, colons included', () => {
    const all = entries(CLUSTER_PREFIX);
    const name = fc.stringMatching(/^[a-z0-9:._-]{1,12}$/);
    fc.assert(
      fc.property(fc.nat(all.length - 1), fc.nat(all.length - 1), name, name, (i, j, a, b) => {
        fc.pre(i !== j);
        expect(all[i]![1](a)).not.toBe(all[j]![1](b));
      }),
      { numRuns: 5_000 },
    );
  });

  it('keeps the names earlier versions wrote (a renamed key would orphan their data)', () => {
    const k = redisKeys(CLUSTER_PREFIX);
    expect([k.vmJob('web-1'), k.jobAttempt('42'), k.hostEvacuated('h1'), k.slots('cluster')]).toEqual([
      'keizoku:default:vm:web-1:job',
      'keizoku:default:job:42:attempt',
      'keizoku:default:host:h1:evacuated',
      'keizoku:default:slots:cluster',
    ]);
  });
});

/**
 * Template literals that build a key from the prefix: a `${…prefix}` expression followed at
 * once by key text (`${this.prefix}vm:`, `${d.prefix}bull`). Text after a colon and a space
 * (`${prefix}: ${message}`) is a message, not a key.
 */
const KEY_BUILT = /`\$\{[\w.?!]*prefix\}(?=[\w{-]|\$\{|:[^\s`])/i;

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)))
    .filter((p) => !p.split('/').includes('node_modules'));
}

/** Source lines written with `#{` for `${` (so that they are not read as templates here). */
const src = (lines: string[]) => lines.map((l) => l.replaceAll('#{', `${'$'}{`));

describe('keys are built in src/store/keys.ts only', () => {
  it('finds what it looks for', () => {
    for (const line of src([
      'return `#{this.prefix}vm:#{vm}:job`;',
      'const k = `#{d.prefix}job:#{id}:cancel`;',
      '{ prefix: `#{this.d.prefix}bull` }',
      'this.key = `#{PREFIX}tokens`;',
      '`#{o.prefix}#{name}`',
    ]))
      expect(KEY_BUILT.test(line), line).toBe(true);
    for (const line of src([
      'throw new JobConflict(`#{prefix}: #{e.message}`, e.conflicts);',
      'const p = `#{prefix}`;',
      ' *   {prefix}vm:{vm}:job   hash',
      'const k = keys.vmJob(vm);',
    ]))
      expect(KEY_BUILT.test(line), line).toBe(false);
  });

  it('finds no key built from the prefix in src/ or agents/ outside the map', () => {
    const files = [...sources('src'), ...sources('agents')];
    expect(files).toContain(MAP_FILE);
    const found: string[] = [];
    for (const file of files) {
      if (file === MAP_FILE) continue;
      readFileSync(join(ROOT, file), 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (KEY_BUILT.test(line)) found.push(`${file}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(found, 'take these keys from redisKeys(prefix) in src/store/keys.ts').toEqual([]);
  });
});
