import { randomUUID } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { downLab, LabError, listLabIds, readState, upLab } from '../../lab/index.ts';

/**
 * Integration runs share one lab of 3 hosts over 2 sites (files that break hosts heal them,
 * or bring up a lab of their own). At the end, also after failures, every lab the run brought
 * up is torn down.
 */
export default async function setup(project: TestProject) {
  const runId = process.env.KEIZOKU_TEST_RUN_ID ?? randomUUID().slice(0, 8);
  const owner = `test:${runId}`;
  project.provide('testRunId', runId);
  const teardown = async () => {
    for (const id of listLabIds()) {
      if (readState(id)?.owner === owner) await downLab(id);
    }
  };
  for (let id = 10; id <= 49; id++) {
    if (listLabIds().includes(id)) continue;
    try {
      await upLab({ id, hosts: 3, sites: 2, owner });
      project.provide('sharedLabId', id);
      return teardown;
    } catch (e) {
      if (!(e instanceof LabError && e.message.includes('already up'))) {
        await teardown();
        throw e;
      }
    }
  }
  throw new Error('no free lab id from 10 to 49 for the shared lab');
}
