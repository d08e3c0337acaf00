import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { FenceConfig } from '../config/index.ts';

const execFileP = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Powers a host off (and, for drills, on again) by its configured fence method. Only the
 * lab's power switch can also power a host on here; IPMI and SSH fencing are not wired to a
 * drill (a host-failure drill elsewhere would be a planned host shutdown, not built yet).
 */
export class FenceError extends Error {
  override name = 'FenceError';
}

export interface Fencer {
  /** Whether this host can be powered off and on again by keizoku (for drills). */
  canCycle(host: string): string | null;
  powerOff(host: string): Promise<void>;
  powerOn(host: string): Promise<void>;
}

export function fencerFor(methods: ReadonlyMap<string, FenceConfig>): Fencer {
  const lab = async (host: string, verb: 'fence' | 'heal') => {
    const m = methods.get(host);
    if (m?.method !== 'lab')
      throw new FenceError(`host ${host} has fence method ${m?.method ?? 'none'}, not lab`);
    try {
      await execFileP(
        'node',
        ['--import', 'tsx', join(ROOT, 'lab/cli.ts'), verb, host, '--lab', String(m.labId)],
        {
          cwd: ROOT,
          timeout: 120_000,
        },
      );
    } catch (e) {
      throw new FenceError(`lab ${verb} ${host}: ${((e as { stderr?: string }).stderr ?? String(e)).trim()}`);
    }
  };
  return {
    canCycle: (host) => {
      const m = methods.get(host);
      if (!m) return `no host named "${host}"`;
      if (m.method === 'lab') return null;
      return `host ${host} is fenced by ${m.method}; a host-failure drill needs the lab's power switch (fence method lab) to power it on again`;
    },
    powerOff: (host) => lab(host, 'fence'),
    powerOn: (host) => lab(host, 'heal'),
  };
}
