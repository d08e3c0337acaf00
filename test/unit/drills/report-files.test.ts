import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeReportFiles } from '../../../src/drills/report/files.ts';
import { syntheticReport } from './fixture.ts';

let dir: string | null = null;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

describe('drill report files', () => {
  it('F25: drill reports are written with mode 0640 or stricter, in a directory of 0750 or stricter', () => {
    dir = mkdtempSync(join(tmpdir(), 'kz-drill-files-'));
    const reports = join(dir, 'drills');
    const report = syntheticReport({ moves: 2 });
    writeReportFiles(reports, report, { timeZone: 'UTC' });
    const files = readdirSync(reports).sort();
    expect(files).toEqual([`${report.id}.html`, `${report.id}.json`, `${report.id}.md`]);
    for (const f of files) expect(statSync(join(reports, f)).mode & 0o137).toBe(0);
    expect(statSync(reports).mode & 0o027).toBe(0);
  });
});
