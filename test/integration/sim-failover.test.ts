import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';

// keizokud's failover against simulated hosts, end to end as bench:scale runs it (small):
// 100 hosts x 2 VMs in the bench's own network namespace, 20 powered off at once, a real probe
// agent as witness, fenced through the simulator's Redfish BMC, every VM restarted elsewhere.
describe('failover of simulated hosts (bench:scale, small)', () => {
  it('restarts every VM of 20 powered-off hosts once, on hosts that are up', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        'node',
        ['--import', 'tsx', 'bench/scale.ts'],
        {
          env: {
            ...process.env,
            BENCH_HOSTS: '100',
            BENCH_VMS_PER_HOST: '2',
            BENCH_WARMUP_S: '1',
            BENCH_WINDOW_S: '2',
            BENCH_LIST_S: '1',
            BENCH_SIM_PORT: '16609',
            BENCH_FAILOVER_TIMEOUT_MS: '90000',
          },
          timeout: 240_000,
          maxBuffer: 16 * 1024 * 1024,
        },
        (e, stdout, stderr) =>
          e ? reject(new Error(`${e.message}\n${stderr.slice(-3000)}`)) : resolve(stdout),
      ),
    );
    const r = JSON.parse(out.trim().split('\n').at(-1)!);
    expect(r.failover_hosts_powered_off).toBe(20);
    expect(r.failover_vms).toBe(40);
    expect(r.failover_vms_not_running_once_elsewhere).toBe(0);
    // Declared down, then fenced, then placed, then running: each after the one before.
    expect(r.failover_declared_down_max_ms).toBeGreaterThan(0);
    expect(r.failover_fenced_max_ms).toBeGreaterThanOrEqual(r.failover_declared_down_max_ms);
    expect(r.failover_20_hosts_all_started_ms).toBeGreaterThanOrEqual(r.failover_20_hosts_plan_ms);
    // The hosts that stayed up were never judged suspect before the power off.
    expect(r.host_verdicts_suspect).toBe(0);
  }, 300_000);
});
