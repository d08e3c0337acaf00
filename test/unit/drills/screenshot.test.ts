import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderHtml } from '../../../src/drills/report/index.ts';
import { syntheticReport } from './fixture.ts';

function findChromium(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

const chromium = findChromium();
const ARTIFACT = resolve('test-artifacts/drill-report.png');

describe('drill report in a browser', () => {
  it.skipIf(chromium === null)(
    `renders 20 moves to a screenshot (${chromium ? `with ${chromium}` : 'skipped: chromium is not on PATH'})`,
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'keizoku-drill-report-'));
      try {
        const page = join(dir, 'report.html');
        const png = join(dir, 'report.png');
        writeFileSync(page, renderHtml(syntheticReport({ moves: 20 })));
        execFileSync(
          chromium!,
          [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            `--user-data-dir=${join(dir, 'profile')}`,
            `--screenshot=${png}`,
            '--window-size=1280,1600',
            pathToFileURL(page).href,
          ],
          { stdio: 'pipe', timeout: 60_000 },
        );
        expect(statSync(png).size).toBeGreaterThan(10_000);
        mkdirSync(resolve('test-artifacts'), { recursive: true });
        copyFileSync(png, ARTIFACT);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    90_000,
  );
});
