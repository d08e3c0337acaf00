import { dirname, resolve } from 'node:path';
import { ConfigError, type ConfigIssue, formatIssue } from './errors.ts';
import { displayPath, resolveMaterialFiles } from './files.ts';
import { isRedisUrl, REDIS_URL_EXAMPLE } from './formats.ts';
import { type Holiday, readHolidays } from './holidays.ts';
import { notInForce } from './not-in-force.ts';
import type { LimitsPolicy, TiersPolicy } from './policies.ts';
import {
  choosePolicyFile,
  type PolicyResult,
  readLimits,
  readTiers,
  SHIPPED_LIMITS_FILE,
  SHIPPED_TIERS_FILE,
} from './policy-files.ts';
import { configSchema, type KeizokuConfig } from './schema.ts';
import { crossCheck } from './validate.ts';
import { readYaml } from './yaml-file.ts';
import { expectedGot, validate } from './zod-issues.ts';

export { SHIPPED_LIMITS_FILE, SHIPPED_TIERS_FILE };

export type DeepReadonly<T> = T extends (infer E)[]
  ? readonly DeepReadonly<E>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

export interface LoadedConfig {
  /** The config file, absolute. */
  readonly file: string;
  readonly config: DeepReadonly<KeizokuConfig>;
  readonly tiers: DeepReadonly<TiersPolicy>;
  readonly limits: DeepReadonly<LimitsPolicy>;
  /** Formatted like errors (`FILE: path: message`); the config is usable. */
  readonly warnings: readonly string[];
  /** The holiday calendar (empty without holidaysFile). */
  readonly holidays: readonly Holiday[];
}

export type Env = Readonly<Record<string, string | undefined>>;

/** The only environment variable keizokud's config reads: overrides `redis.url`. */
export const ENV_REDIS_URL = 'KEIZOKU_REDIS_URL';

const CONFIG_EXPECTED = 'a mapping with sites, hosts and redis';

/**
 * Loads and validates `keizokud.yaml` and the policy files it uses. Throws a ConfigError
 * listing every problem found (print it with formatConfigError); the result is deep-frozen.
 * `env` is the one place the environment is read.
 */
export async function loadConfig(file: string, env: Env = process.env): Promise<LoadedConfig> {
  const abs = resolve(file);
  const shown = displayPath(abs);
  const dir = dirname(abs);
  const read = await readYaml(abs, shown, CONFIG_EXPECTED);
  if (!read.ok) throw new ConfigError(read.issues);
  const { issues, parts } = await parseParts(applyEnv(read.data, env), dir, shown);
  if (parts === undefined) throw new ConfigError(issues);

  const { config, tiers, limits } = parts;
  const errors = await resolveMaterialFiles(config, dir, shown);
  config.audit.dir = resolve(dir, config.audit.dir);
  config.drills.dir = resolve(dir, config.drills.dir);
  const checked = crossCheck({
    config,
    file: shown,
    tiers: tiers.value,
    tiersFile: displayPath(config.policies.tiersFile),
    limits: limits.value,
    limitsFile: displayPath(config.policies.limitsFile),
  });
  errors.push(...checked.errors);
  let holidays: Holiday[] = [];
  if (config.holidaysFile) {
    const h = await readHolidays(config.holidaysFile, dir);
    if (h.ok) holidays = h.holidays;
    else errors.push(...h.issues);
  }
  if (errors.length > 0) throw new ConfigError(errors);

  const warnings = [
    ...read.warnings,
    ...tiers.warnings,
    ...limits.warnings,
    ...checked.warnings,
    ...notInForce(read.data, config, shown),
  ];
  return deepFreeze({
    file: abs,
    config,
    tiers: tiers.value,
    limits: limits.value,
    warnings: warnings.map(formatIssue),
    holidays,
  });
}

type Ok<T> = Extract<PolicyResult<T>, { ok: true }>;

interface Parts {
  config: KeizokuConfig;
  tiers: Ok<TiersPolicy>;
  limits: Ok<LimitsPolicy>;
}

/** The schema and both policy files, checked independently so all their issues show at once. */
async function parseParts(
  input: { data: unknown; issues: ConfigIssue[] },
  dir: string,
  shown: string,
): Promise<{ issues: ConfigIssue[]; parts?: Parts }> {
  const issues = [...input.issues];
  const parsed = validate(configSchema, input.data, shown);
  if (!parsed.ok) issues.push(...parsed.issues);
  const tiersFile = await choosePolicyFile(input.data, 'tiersFile', dir, shown);
  const limitsFile = await choosePolicyFile(input.data, 'limitsFile', dir, shown);
  issues.push(...tiersFile.issues, ...limitsFile.issues);
  const tiersAbs = tiersFile.abs;
  const limitsAbs = limitsFile.abs;
  const tiers = tiersAbs === undefined ? undefined : await readTiers(tiersAbs);
  const limits = limitsAbs === undefined ? undefined : await readLimits(limitsAbs);
  if (tiers?.ok === false) issues.push(...tiers.issues);
  if (limits?.ok === false) issues.push(...limits.issues);
  if (!parsed.ok || !tiers?.ok || !limits?.ok || tiersAbs === undefined || limitsAbs === undefined) {
    return { issues };
  }
  if (issues.length > 0) return { issues };
  const config = { ...parsed.value, policies: { tiersFile: tiersAbs, limitsFile: limitsAbs } };
  return { issues, parts: { config, tiers, limits } };
}

/** Loads a tiers file on its own (the shipped one by default); throws a ConfigError. */
export async function loadTiersFile(file: string = SHIPPED_TIERS_FILE): Promise<DeepReadonly<TiersPolicy>> {
  const result = await readTiers(resolve(file));
  if (!result.ok) throw new ConfigError(result.issues);
  return deepFreeze(result.value);
}

/** Loads a limits file on its own (the shipped one by default); throws a ConfigError. */
export async function loadLimitsFile(
  file: string = SHIPPED_LIMITS_FILE,
): Promise<DeepReadonly<LimitsPolicy>> {
  const result = await readLimits(resolve(file));
  if (!result.ok) throw new ConfigError(result.issues);
  return deepFreeze(result.value);
}

/** `KEIZOKU_REDIS_URL` replaces redis.url; a bad value is reported as the environment's. */
function applyEnv(data: unknown, env: Env): { data: unknown; issues: ConfigIssue[] } {
  const url = env[ENV_REDIS_URL];
  if (url === undefined || url === '') return { data, issues: [] };
  if (!isRedisUrl(url)) {
    return {
      data,
      issues: [{ file: 'environment', path: [ENV_REDIS_URL], message: expectedGot(REDIS_URL_EXAMPLE, url) }],
    };
  }
  if (!isRecord(data) || !(data.redis === undefined || isRecord(data.redis))) return { data, issues: [] };
  return { data: { ...data, redis: { ...(data.redis ?? {}), url } }, issues: [] };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value as DeepReadonly<T>;
}
