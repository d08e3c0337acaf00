import { spawnSync } from 'node:child_process';
import { inject } from 'vitest';
import { LabError, type LabState, listLabIds, readState, type UpOptions, upLab } from '../../lab/index.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    testRunId: string;
    sharedLabId: number;
  }
}

/** Owner tag of labs made by this test run; the global teardown downs every lab carrying it. */
export const testOwner = () => `test:${inject('testRunId')}`;

/** The lab of 3 hosts over 2 sites that the run's global setup brought up. */
export function sharedLab(): LabState {
  const id = inject('sharedLabId');
  const state = readState(id);
  if (!state) throw new Error(`shared lab ${id} is not up`);
  return state;
}

/**
 * Brings up a lab on the first free id from 10 up, so tests never touch a developer's lab
 * (id 0 by default) and two runs on one machine do not collide.
 */
export async function upTestLab(opts: Omit<UpOptions, 'id' | 'owner'>): Promise<LabState> {
  for (let id = 10; id <= 49; id++) {
    if (listLabIds().includes(id)) continue;
    try {
      return await upLab({ ...opts, id, owner: testOwner() });
    } catch (e) {
      if (e instanceof LabError && e.message.includes('already up')) continue;
      throw e;
    }
  }
  throw new Error('no free lab id from 10 to 49');
}

/** Runs the lab CLI as a user would; returns exit code and output. */
export function labCli(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('node', ['--import', 'tsx', 'lab/cli.ts', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
