import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimNetns, SIM_HOST_PREFIX, type SimNetns } from '../../lab/sim/netns.ts';

// A simulated host's power off in the simulator's own network namespace: its management
// address and its guests' stop answering ICMP (what keizokud's health reads with fping), and
// answer again after restore (the host) and after its guest is started again.
describe('simulated host power in a network namespace', () => {
  let ns: SimNetns;
  let sim: ChildProcess;
  let lines: Interface;
  const next = () => new Promise<string>((r) => lines.once('line', r));
  beforeAll(async () => {
    ns = createSimNetns(`kzsim-t${process.pid}`);
    sim = spawn(
      ns.exec[0]!,
      [
        ...ns.exec.slice(1),
        'node',
        '--import',
        'tsx',
        'lab/sim/main.ts',
        '--hosts',
        '3',
        '--vms-per-host',
        '1',
        '--address-dev',
        ns.dev,
        '--address-prefix',
        SIM_HOST_PREFIX,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    lines = createInterface({ input: sim.stdout! });
    await next();
  }, 60_000);
  afterAll(async () => {
    if (sim && sim.exitCode === null) {
      const exited = new Promise((r) => sim.once('exit', r));
      sim.stdin!.end();
      await exited;
    }
    ns?.remove();
  });

  const ping = (address: string) =>
    new Promise<boolean>((resolve) =>
      execFile(
        ns.exec[0]!,
        [...ns.exec.slice(1), 'fping', '-q', '-c', '2', '-p', '100', '-t', '200', address],
        (e) => resolve(e === null),
      ),
    );
  const command = async (op: string, hosts: string[]) => {
    const reply = next();
    sim.stdin!.write(`${JSON.stringify({ op, hosts })}\n`);
    return JSON.parse(await reply) as { ok: boolean; error?: string };
  };

  it('silences the host and its guests at power off; restore brings the host back', async () => {
    const host = `${SIM_HOST_PREFIX}.0.1`;
    const guest = '10.0.0.0'; // vm-h0001-01's address (from its UUID)
    expect(await ping(host)).toBe(true);
    expect(await ping(guest)).toBe(true);
    expect(await ping(`${SIM_HOST_PREFIX}.0.2`)).toBe(true);
    expect(await command('power-off', ['h0001'])).toMatchObject({ ok: true });
    expect(await ping(host)).toBe(false);
    expect(await ping(guest)).toBe(false);
    expect(await ping(`${SIM_HOST_PREFIX}.0.2`)).toBe(true); // the others are untouched
    expect(await command('restore', ['h0001'])).toMatchObject({ ok: true });
    expect(await ping(host)).toBe(true);
    expect(await ping(guest)).toBe(false); // booted with its guests off
  });

  it('answers a bad command with an error naming it', async () => {
    expect(await command('power-off', ['h9999'])).toMatchObject({
      ok: false,
      error: 'no simulated host h9999',
    });
    expect(await command('explode', ['h0001'])).toMatchObject({ ok: false });
  });
});
