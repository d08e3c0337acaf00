import { randomUUID } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { downLab, listLabIds, readState } from '../../lab/index.ts';

/** Gives the run an id; at the end (also after failures) downs every lab the run brought up. */
export default function setup(project: TestProject) {
  const runId = process.env.KEIZOKU_TEST_RUN_ID ?? randomUUID().slice(0, 8);
  project.provide('testRunId', runId);
  return async () => {
    for (const id of listLabIds()) {
      if (readState(id)?.owner === `test:${runId}`) await downLab(id);
    }
  };
}
