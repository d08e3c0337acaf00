import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import type { ConfigIssue } from './errors.ts';
import { displayPath, fileProblem } from './files.ts';
import {
  checkTiers,
  type LimitsPolicy,
  limitsPolicySchema,
  type TiersPolicy,
  tiersPolicySchema,
} from './policies.ts';
import { readYaml } from './yaml-file.ts';
import { validate } from './zod-issues.ts';

/** Finding and reading the policy files (`tiers.yaml`, `limits.yaml`). */

export const SHIPPED_POLICIES_DIR = fileURLToPath(new URL('../../policies/', import.meta.url));
export const SHIPPED_TIERS_FILE = resolve(SHIPPED_POLICIES_DIR, 'tiers.yaml');
export const SHIPPED_LIMITS_FILE = resolve(SHIPPED_POLICIES_DIR, 'limits.yaml');

export type PolicyResult<T> =
  | { ok: true; value: T; warnings: ConfigIssue[] }
  | { ok: false; issues: ConfigIssue[] };

async function readPolicy<S extends z.ZodType>(
  abs: string,
  schema: S,
  expected: string,
  check: (value: z.output<S>, shown: string) => ConfigIssue[],
): Promise<PolicyResult<z.output<S>>> {
  const shown = displayPath(abs);
  const read = await readYaml(abs, shown, expected);
  if (!read.ok) return read;
  const parsed = validate(schema, read.data, shown);
  if (!parsed.ok) return parsed;
  const issues = check(parsed.value, shown);
  return issues.length > 0
    ? { ok: false, issues }
    : { ok: true, value: parsed.value, warnings: read.warnings };
}

export function readTiers(abs: string): Promise<PolicyResult<TiersPolicy>> {
  return readPolicy(abs, tiersPolicySchema, 'a mapping with dataClasses and tiers', checkTiers);
}

export function readLimits(abs: string): Promise<PolicyResult<LimitsPolicy>> {
  return readPolicy(abs, limitsPolicySchema, 'a mapping with profiles', () => []);
}

export type PolicyKey = 'tiersFile' | 'limitsFile';
const FILE_NAMES: Record<PolicyKey, string> = { tiersFile: 'tiers.yaml', limitsFile: 'limits.yaml' };

/**
 * The policy file a config uses: the one named in `policies.<key>` (relative to the config's
 * directory), else `policies/<name>` beside the config, else the shipped one. Reads the raw
 * document, so the policy files are checked even when the rest of the config is not valid.
 */
export async function choosePolicyFile(
  data: unknown,
  key: PolicyKey,
  dir: string,
  shown: string,
): Promise<{ abs?: string; issues: ConfigIssue[] }> {
  const given = field(field(data, 'policies'), key);
  if (given !== undefined) {
    if (typeof given !== 'string' || given === '') return { issues: [] }; // the schema reports it
    const abs = resolve(dir, given);
    const problem = await fileProblem(abs);
    if (problem === undefined) return { abs, issues: [] };
    return { issues: [{ file: shown, path: ['policies', key], message: `${problem}: ${displayPath(abs)}` }] };
  }
  const beside = resolve(dir, 'policies', FILE_NAMES[key]);
  const abs =
    (await fileProblem(beside)) === undefined ? beside : resolve(SHIPPED_POLICIES_DIR, FILE_NAMES[key]);
  return { abs, issues: [] };
}

function field(data: unknown, key: string): unknown {
  return data !== null && typeof data === 'object' && !Array.isArray(data)
    ? (data as Record<string, unknown>)[key]
    : undefined;
}
