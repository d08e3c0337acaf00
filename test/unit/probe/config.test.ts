import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatProbeConfigError, loadProbeConfig } from '../../../agents/probe/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'kz-probe-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(text: string): string {
  const f = join(dir, `probe-${n++}.yaml`);
  writeFileSync(f, text);
  return f;
}

/** The error lines an operator sees, with the file name shortened to FILE. */
async function errors(text: string): Promise<string[]> {
  const f = file(text);
  try {
    await loadProbeConfig(f);
  } catch (e) {
    const shown = formatProbeConfigError(e);
    expect(shown).not.toMatch(/\n\s+at /); // no stack trace
    return shown.split('\n').map((l) => l.replace(f, 'FILE'));
  }
  throw new Error('expected a config error');
}

describe('keizoku-probe config', () => {
  it('fills the defaults', async () => {
    const c = await loadProbeConfig(
      file('name: p1\nsite: dc1\ntargets:\n  - { name: web1, addresses: [10.1.0.20] }\n'),
    );
    expect(c).toMatchObject({
      name: 'p1',
      site: 'dc1',
      listen: '127.0.0.1:9464',
      intervalMs: 100,
      timeoutMs: 1_000,
      retentionSec: 900,
      reportAfterIntervals: 2,
      followController: false,
      token: null,
      targets: [{ name: 'web1', addresses: ['10.1.0.20'] }],
    });
    expect(c.controller).toBeUndefined();
  });

  it('reads the token file next to the config, trimmed', async () => {
    writeFileSync(join(dir, 'probe.token'), 'kz_abc_secret\n', { mode: 0o600 });
    const c = await loadProbeConfig(
      file(
        'name: p1\nsite: dc1\nintervalMs: 10\nfollowController: true\ncontroller: { url: "https://kz.example:7480", tokenFile: probe.token }\n',
      ),
    );
    expect(c).toMatchObject({ intervalMs: 10, token: 'kz_abc_secret', controller: { refreshSec: 10 } });
  });

  it('names the file and the field of every problem', async () => {
    expect(
      await errors(`name: p1
site: dc1
listen: nowhere
intervalMs: 5
retention: 60
controller: { url: ftp://x, tokenFile: t }
targets:
  - { name: a, addresses: [] }
  - { name: b, addresses: ["no such thing!"] }
  - { name: a, addresses: [10.0.0.1], port: 7 }
`),
    ).toEqual([
      'FILE: listen: expected host:port, like 127.0.0.1:9464',
      'FILE: intervalMs: expected an integer from 10 to 10000, got 5',
      'FILE: controller.url: expected an http:// or https:// URL',
      'FILE: targets[0].addresses: expected at least 1 entry, got an empty list',
      'FILE: targets[1].addresses[0]: expected an IP address or host name',
      'FILE: targets[2].port: unknown field, expected one of "name" or "addresses"',
      expect.stringMatching(/^FILE: retention: unknown field, expected one of "name", .*"retentionSec"/),
      'FILE: targets[2].name: "a" is already the name of targets[0]',
    ]);
  });

  it('refuses an interval above 10 s and a fractional one', async () => {
    expect(
      await errors('name: p\nsite: s\nintervalMs: 20000\ntargets: [{ name: a, addresses: [::1] }]\n'),
    ).toEqual(['FILE: intervalMs: expected an integer from 10 to 10000, got 20000']);
    expect(
      await errors('name: p\nsite: s\nintervalMs: 12.5\ntargets: [{ name: a, addresses: [::1] }]\n'),
    ).toEqual([expect.stringMatching(/^FILE: intervalMs: expected an integer/)]);
  });

  it('needs something to probe, and a controller to follow', async () => {
    expect(await errors('name: p\nsite: s\n')).toEqual([
      'FILE: targets: expected targets, followController: true, or both',
    ]);
    expect(await errors('name: p\nsite: s\nfollowController: true\n')).toEqual([
      'FILE: followController: followController needs controller (url and tokenFile)',
    ]);
  });

  it('refuses two targets of the same name', async () => {
    expect(
      await errors(
        'name: p\nsite: s\ntargets:\n  - { name: a, addresses: [10.0.0.1] }\n  - { name: a, addresses: [10.0.0.2] }\n',
      ),
    ).toEqual(['FILE: targets[1].name: "a" is already the name of targets[0]']);
  });

  it('says which token file it cannot read, or that it is empty', async () => {
    const yaml = (t: string) =>
      `name: p\nsite: s\nfollowController: true\ncontroller: { url: "http://127.0.0.1:1", tokenFile: ${t} }\n`;
    expect(await errors(yaml('missing.token'))).toEqual([
      expect.stringMatching(/^FILE: controller\.tokenFile: cannot read .*missing\.token: ENOENT$/),
    ]);
    writeFileSync(join(dir, 'empty.token'), '\n', { mode: 0o600 });
    expect(await errors(yaml('empty.token'))).toEqual([
      'FILE: controller.tokenFile: the token file is empty',
    ]);
  });

  it('F25: refuses a token file group or others can read, naming the file', async () => {
    writeFileSync(join(dir, 'open.token'), 'kz_abc_secret\n', { mode: 0o644 });
    chmodSync(join(dir, 'open.token'), 0o644);
    expect(
      await errors(
        'name: p\nsite: s\nfollowController: true\ncontroller: { url: "http://127.0.0.1:1", tokenFile: open.token }\n',
      ),
    ).toEqual([
      expect.stringMatching(
        /^FILE: controller\.tokenFile: readable by group or others \(mode 0644\): chmod 600 .*open\.token$/,
      ),
    ]);
  });

  it('reports YAML syntax errors with their line, and a missing file', async () => {
    expect(await errors('name: [\n')).toEqual([expect.stringMatching(/^FILE: YAML syntax error at line 2/)]);
    await expect(loadProbeConfig(join(dir, 'nope.yaml'))).rejects.toThrow(/nope\.yaml: file not found/);
  });
});
