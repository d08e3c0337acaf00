import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { DeepReadonly, FenceConfig } from '../config/index.ts';
import { fenceIpmi, powerOnIpmi } from './ipmi.ts';
import { fenceRedfish, powerOnRedfish } from './redfish.ts';
import type { ConfirmTiming, FenceResult } from './run.ts';
import { fenceSsh } from './ssh.ts';

export type { FenceResult } from './run.ts';

const execFileP = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Powers a host off by its configured fence method and confirms it off (`fence`), and, for
 * drills, off and on again. Methods that can power a host on again (lab, ipmi, redfish) can
 * run a host-failure drill; ssh cannot, and `none` cannot fence at all.
 */
export class FenceError extends Error {
  override name = 'FenceError';
}

export interface Fencer {
  /** Whether this host can be powered off and on again by keizoku (for drills). */
  canCycle(host: string): string | null;
  /** Power off, then confirm off. An expected failure is ok=false with the reason, not a throw. */
  fence(host: string): Promise<FenceResult>;
  /** `fence`, throwing a FenceError unless the host was confirmed off. */
  powerOff(host: string): Promise<void>;
  powerOn(host: string): Promise<void>;
}

export interface FencedHost {
  fence: DeepReadonly<FenceConfig>;
  managementAddress: string;
}

/** Status reads every half second by default; tests shorten it. */
export interface FencerOptions {
  pollIntervalMs?: number;
}

const NONE_MESSAGE = (host: string) =>
  `host ${host} has fence method none: keizoku cannot power it off; only an expired disk lock lets its VMs restart elsewhere`;

export function fencerFor(hosts: ReadonlyMap<string, FencedHost>, o: FencerOptions = {}): Fencer {
  const intervalMs = o.pollIntervalMs ?? 500;
  const lab = async (host: string, labId: number, verb: 'fence' | 'heal') => {
    try {
      await execFileP(
        'node',
        ['--import', 'tsx', join(ROOT, 'lab/cli.ts'), verb, host, '--lab', String(labId)],
        {
          cwd: ROOT,
          timeout: 120_000,
        },
      );
      return null;
    } catch (e) {
      return `lab ${verb} ${host}: ${((e as { stderr?: string }).stderr ?? String(e)).trim()}`;
    }
  };
  const fence = async (host: string): Promise<FenceResult> => {
    const h = hosts.get(host);
    const startedAt = Date.now();
    const refused = (method: string, error: string): FenceResult => ({
      host,
      method,
      ok: false,
      confirmedOff: false,
      startedAt,
      endedAt: Date.now(),
      error,
      evidence: 'nothing was done',
    });
    if (!h) return refused('none', `no host named "${host}"`);
    const f = h.fence;
    const timing = (timeoutMs: number): ConfirmTiming => ({ timeoutMs, intervalMs });
    switch (f.method) {
      case 'none':
        return refused('none', NONE_MESSAGE(host));
      case 'lab': {
        // The lab's switch stops the host's QEMU and namespace before it returns.
        const failed = await lab(host, f.labId, 'fence');
        const base = { host, method: 'lab', startedAt, endedAt: Date.now() };
        return failed === null
          ? { ...base, ok: true, confirmedOff: true, evidence: `lab ${f.labId} fence ${host} exited 0` }
          : { ...base, ok: false, confirmedOff: false, error: failed, evidence: failed };
      }
      case 'ipmi':
        return fenceIpmi(host, f, timing(f.confirmTimeoutMs));
      case 'redfish':
        return fenceRedfish(host, f, timing(f.confirmTimeoutMs));
      case 'ssh':
        return fenceSsh(host, f, h.managementAddress, timing(f.confirmTimeoutMs));
    }
  };
  return {
    canCycle: (host) => {
      const m = hosts.get(host)?.fence;
      if (!m) return `no host named "${host}"`;
      if (m.method === 'lab' || m.method === 'ipmi' || m.method === 'redfish') return null;
      return `host ${host} is fenced by ${m.method}; a host-failure drill needs a fence method that can power it on again (lab, ipmi or redfish)`;
    },
    fence,
    powerOff: async (host) => {
      const r = await fence(host);
      if (!r.ok) throw new FenceError(r.error ?? `fence ${host} failed`);
    },
    powerOn: async (host) => {
      const m = hosts.get(host)?.fence;
      let failed: string | null;
      if (m?.method === 'lab') failed = await lab(host, m.labId, 'heal');
      else if (m?.method === 'ipmi') failed = await powerOnIpmi(m);
      else if (m?.method === 'redfish') failed = await powerOnRedfish(m);
      else failed = `host ${host} has fence method ${m?.method ?? 'none'}: keizoku cannot power it on`;
      if (failed !== null) throw new FenceError(failed);
    },
  };
}
