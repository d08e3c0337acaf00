import { resolve } from 'node:path';
import { z } from 'zod';
import type { ConfigIssue } from './errors.ts';
import { displayPath } from './files.ts';
import { readYaml } from './yaml-file.ts';
import { validate } from './zod-issues.ts';

/** A holiday calendar file: days on which scheduled starts are skipped (VMs stay off). */

const day = z
  .string()
  .regex(/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/, { message: 'expected a date like 2026-11-23' });

export const holidaysSchema = z.strictObject({
  holidays: z.array(z.strictObject({ date: day, name: z.string().min(1) })),
});

export interface Holiday {
  date: string;
  name: string;
}

export async function readHolidays(
  file: string,
  dir: string,
): Promise<{ ok: true; holidays: Holiday[] } | { ok: false; issues: ConfigIssue[] }> {
  const abs = resolve(dir, file);
  const shown = displayPath(abs);
  const read = await readYaml(abs, shown, 'a mapping with holidays: [{date, name}]');
  if (!read.ok) return { ok: false, issues: read.issues };
  const parsed = validate(holidaysSchema, read.data, shown);
  if (!parsed.ok) return { ok: false, issues: parsed.issues };
  const seen = new Set<string>();
  const issues: ConfigIssue[] = [];
  parsed.value.holidays.forEach((h, i) => {
    if (seen.has(h.date))
      issues.push({ file: shown, path: ['holidays', i, 'date'], message: `${h.date} is listed twice` });
    seen.add(h.date);
  });
  return issues.length ? { ok: false, issues } : { ok: true, holidays: parsed.value.holidays };
}
