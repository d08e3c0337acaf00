import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { LabError } from './errors.ts';
import { type PingSummary, startPing } from './ping-log.ts';
import type { LabState } from './state.ts';

const execFileP = promisify(execFile);

export interface VirshMigration {
  vm: string;
  from: string;
  to: string;
  flags: string[];
  /** Wall time of the virsh command. */
  wallMs: number;
  /** When the virsh command returned (epoch ms, the clock of the ping replies). */
  endedAt: number;
  /** libvirt's own figures for the completed job, read on the destination. */
  elapsedMs: number;
  downtimeMs: number;
  /** Pre-copy iterations (NaN when libvirt does not say). */
  iterations: number;
  ping: PingSummary;
}

/**
 * `virsh migrate --live --p2p` of a lab guest, with `ping -D` every `pingIntervalMs` from the
 * root namespace around it: the raw libvirt baseline that keizoku's own moves are compared with.
 */
export async function virshMigrate(
  state: LabState,
  vm: string,
  from: string,
  to: string,
  flags: string[] = [],
  pingIntervalMs = 10,
): Promise<VirshMigration> {
  const uri = (h: string) => {
    const host = state.layout.hosts.find((x) => x.name === h);
    if (!host) throw new LabError(`unknown host '${h}' in lab ${state.id}`);
    return host.uri;
  };
  const rec = state.vms.find((v) => v.name === vm);
  if (!rec) throw new LabError(`unknown VM '${vm}' in lab ${state.id}`);
  const cap = startPing(rec.address, pingIntervalMs);
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  try {
    await execFileP('virsh', ['-c', uri(from), 'migrate', '--live', '--p2p', ...flags, vm, uri(to)], {
      timeout: 300_000,
    });
  } catch (e) {
    await cap.stop();
    throw new LabError(
      `virsh migrate ${vm} ${from} -> ${to}: ${(e as { stderr?: string }).stderr?.trim() ?? e}`,
    );
  }
  const endedAt = Date.now();
  const wallMs = endedAt - t0;
  await new Promise((r) => setTimeout(r, 300));
  const ping = await cap.stop();
  const { stdout } = await execFileP('virsh', ['-c', uri(to), 'domjobinfo', '--completed', vm]);
  const num = (label: string) => Number(stdout.match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? Number.NaN);
  return {
    vm,
    from,
    to,
    flags,
    wallMs,
    endedAt,
    elapsedMs: num('Time elapsed'),
    downtimeMs: num('Total downtime'),
    iterations: num('Iteration'),
    ping,
  };
}
