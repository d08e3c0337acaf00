import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CliError, EXIT } from '../../../src/cli/client.ts';
import { formatStatus, formatWhatIf, parseDuration } from '../../../src/cli/commands/ha.ts';
import { main } from '../../../src/cli/main.ts';
import { FO_ID } from '../api/failover-fixture.ts';
import { fullApi } from '../api/full-api.ts';

// `keizoku ha`: its arguments, and its text for what the routes answer, through main() against
// the API frame listening on loopback (the HA routes over the state a failover loop saves).

let app: FastifyInstance;
let server: string;
beforeAll(async () => {
  app = await fullApi();
  server = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(() => app.close());
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

/** Runs the CLI as `who`; its exit code, stdout and stderr. */
async function cli(who: string, ...args: string[]) {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err += String(s);
    return true;
  });
  const code = await main(['--server', server, '--token', who, ...args]);
  vi.restoreAllMocks();
  return { code, out, err };
}

describe('parseDuration', () => {
  it.each([
    ['90s', 90],
    ['30m', 1800],
    ['2h', 7200],
    ['24h', 86_400],
    [' 1s ', 1],
  ])('%s is %i s', (text, seconds) => expect(parseDuration(text)).toBe(seconds));

  it.each(['30', '30x', '1.5h', '-5m', 'm', '', '0s', '25h', '86401s'])(
    '"%s" is a usage error naming --for',
    (text) => {
      let e: unknown;
      try {
        parseDuration(text);
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(CliError);
      expect((e as CliError).exitCode).toBe(EXIT.usage);
      expect((e as CliError).message).toMatch(
        /^--for ".*": (expected a whole number with s, m or h|a pause lasts 1s to 24h)/,
      );
    },
  );
});

describe('keizoku ha', () => {
  it('pause --for 30m --reason: the pause in force, with who and why; status and host list show it; resume ends it', async () => {
    const p = await cli('operator', 'ha', 'pause', '--for', '30m', '--reason', 'switch reboot');
    expect(p.code, p.err).toBe(0);
    expect(p.out).toMatch(
      /^failover: PAUSED until \d{4}-\d\d-\d\dT[\d:.]+Z by operator \(switch reboot\)\n$/,
    );

    const s = await cli('viewer', '--json', 'ha', 'status');
    const status = JSON.parse(s.out);
    expect(status.pause.until - status.pause.since).toBe(1_800_000);
    expect((await cli('viewer', 'host', 'list')).out.split('\n')[0]).toMatch(
      /^failover: PAUSED until .* by operator/,
    );

    expect(await cli('operator', 'ha', 'resume')).toMatchObject({
      code: 0,
      out: 'failover resumed (the pause by operator ended)\n',
    });
    expect((await cli('operator', 'ha', 'resume')).out).toBe('failover was not paused\n');
    expect((await cli('viewer', 'host', 'list')).out).not.toMatch(/PAUSED/);
  });

  it('clear VM: the VM in error is queued for a restart; one not in error is refused with its phase', async () => {
    expect(await cli('operator', 'ha', 'clear', 'off1')).toMatchObject({
      code: 0,
      out: 'off1 cleared: the leader restarts it on h1\n',
    });
    expect(JSON.parse((await cli('operator', '--json', 'ha', 'clear', 'off1')).out)).toEqual({
      vm: 'off1',
      host: 'h1',
      restarts: 3,
    });
    const busy = await cli('operator', 'ha', 'clear', 'vm1');
    expect(busy.code).not.toBe(0);
    expect(busy.err).toMatch(/"vm1" is not in failover error/);
  });

  it('refuses a bad --for before asking the API, and a viewer is refused by the API (exit 3)', async () => {
    expect(await cli('operator', 'ha', 'pause', '--for', '30x')).toMatchObject({
      code: EXIT.usage,
      err: 'keizoku: --for "30x": expected a whole number with s, m or h, e.g. 90s, 30m, 2h\n',
    });
    expect((await cli('operator', 'ha', 'pause')).code).toBe(EXIT.usage);
    const v = await cli('viewer', 'ha', 'pause', '--for', '5m');
    expect(v.code).toBe(EXIT.auth);
    expect(v.err).toMatch(/role viewer may not ha\.pause/);
  });

  it('status: the pause line, admission, one row per host with its phase, restarts in flight and VMs in error', async () => {
    const { code, out } = await cli('viewer', 'ha', 'status');
    expect(code).toBe(0);
    const lines = out.split('\n');
    expect(lines[0]).toBe('failover: active (not paused)');
    expect(lines[1]).toBe('admission: off (ha.toleratedHostFailures 0)');
    expect(lines[2]).toMatch(/^HOST\s+HEALTH\s+PHASE\s+SINCE\s+FENCES\s+PENDING\s+RESTARTING$/);
    expect(lines[3]).toMatch(/^h1\s+up\s+recovering\s+1970-01-01T00:00:00\.005Z\s+1\s+-\s+vm1 -> h2$/);
    expect(lines[4]).toMatch(/^h2\s+up\s+not seen yet\s+-\s+0/);
    expect(out).toMatch(
      /VMs in error \(an operator must clear them\):\nVM\s+HOST\s+RESTARTS\/H\s+RELOCATED\noff1\s+h1\s+3\s+yes\n$/,
    );
  });

  it('whatif --fail h1: the plan as a table (VM, from, to, priority); --json gives the API answer', async () => {
    const t = await cli('viewer', 'ha', 'whatif', '--fail', 'h1');
    expect(t.code, t.err).toBe(0);
    expect(t.out.split('\n').slice(0, 3)).toEqual([
      'what if h1 failed: 1 restart(s)',
      '#  VM   FROM  TO  TIER  PRIORITY',
      '1  vm1  h1    h2  low   0',
    ]);
    const j = JSON.parse((await cli('viewer', '--json', 'ha', 'whatif', '--fail', 'h1')).out);
    expect(j.actions).toEqual([{ vm: 'vm1', from: 'h1', to: 'h2', tier: 'low', priority: 0 }]);
    expect(await cli('viewer', 'ha', 'whatif')).toMatchObject({
      code: EXIT.usage,
      err: 'keizoku: ha whatif: give at least one --fail HOST\n',
    });
    const unknown = await cli('viewer', 'ha', 'whatif', '--fail', 'h1', '--fail', 'h9');
    expect(unknown).toMatchObject({ code: EXIT.notFound, err: 'keizoku: no host named "h9"\n' });
  });

  it('whatif text names what fits nowhere with its reasons, and the VMs left down', () => {
    const text = formatWhatIf({
      fail: ['h1', 'h2'],
      reason: 'what if h1, h2 failed',
      ok: false,
      order: ['db1'],
      actions: [],
      refused: [{ vm: 'db1', reasons: ['h3: host h3 is in maintenance'] }],
      notRestarted: ['batch1'],
    });
    expect(text).toBe(
      [
        'what if h1, h2 failed: 0 restart(s), 1 VM(s) fit nowhere',
        'no HA VM to restart',
        'refused (would wait for room, no rule broken):',
        '  db1: h3: host h3 is in maintenance',
        'not restarted (their tier has no failover): batch1',
        '',
      ].join('\n'),
    );
    expect(
      formatStatus({ pause: null, toleratedHostFailures: 1, hosts: [], vmsInError: [] }).split('\n')[1],
    ).toBe('admission: 1 host failure(s) tolerated');
  });

  it('failovers: one row per record with its status and longest RTO; failover ID: per VM priority, hosts, times, RTO and outage', async () => {
    const list = await cli('viewer', 'ha', 'failovers');
    expect(list.code, list.err).toBe(0);
    expect(list.out.split('\n').slice(0, 2)).toEqual([
      expect.stringMatching(/^ID\s+HOST\s+STATUS\s+FAILURE\s+FENCED\s+VMS\s+ANSWERING\s+MAX RTO S$/),
      expect.stringMatching(
        new RegExp(`^${FO_ID}\\s+h1\\s+done\\s+2025-12-03T14:00:00\\.000Z\\s+\\+4\\.9s\\s+2\\s+2\\s+10\\.2$`),
      ),
    ]);
    expect((await cli('viewer', 'ha', 'failovers', '--host', 'h9')).out).toBe('no failover recorded\n');
    expect(await cli('viewer', 'ha', 'failovers', '--limit', '0')).toMatchObject({
      code: EXIT.usage,
      err: 'keizoku: --limit "0": expected a whole number from 1 to 500\n',
    });

    const one = await cli('viewer', 'ha', 'failover', FO_ID);
    expect(one.code, one.err).toBe(0);
    const lines = one.out.split('\n');
    expect(lines[0]).toBe(`failover ${FO_ID}: host h1, done (2 VM(s) restarted and answering)`);
    expect(lines[1]).toBe('failure 2025-12-03T14:00:00.000Z (last seen up); times below are after it');
    expect(lines[2]).toBe('detected +1.0s, declared down +4.0s, fenced +4.9s (method lab: lab power: off)');
    expect(lines[3]).toMatch(
      /^VM\s+PRIORITY\s+FROM\s+TO\s+STATUS\s+PLACED\s+STARTED\s+RUNNING\s+ANSWERING\s+RTO S\s+OUTAGE MS$/,
    );
    expect(lines[4]).toMatch(
      /^web1\s+20\s+h1\s+h2\s+answering\s+\+5\.0s\s+\+5\.5s\s+\+5\.8s\s+\+9\.6s\s+9\.6\s+9300$/,
    );
    expect(lines[5]).toMatch(
      /^vm1\s+10\s+h1\s+h2\s+answering\s+\+5\.0s\s+\+5\.9s\s+\+6\.2s\s+\+10\.2s\s+10\.2\s+9900$/,
    );
    expect(lines[6]).toBe('timeline:');
    expect(lines[7]).toMatch(/^\s+\+1\.0s {2}host h1 seen not up/);

    const j = JSON.parse((await cli('viewer', '--json', 'ha', 'failover', FO_ID)).out);
    expect(j.vms.map((v: { vm: string; rtoMs: number }) => [v.vm, v.rtoMs])).toEqual([
      ['web1', 9_600],
      ['vm1', 10_200],
    ]);
    expect(await cli('viewer', 'ha', 'failover', 'fo-h9-1')).toMatchObject({
      code: EXIT.notFound,
      err: 'keizoku: no failover "fo-h9-1"\n',
    });
  });
});
