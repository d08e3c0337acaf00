import type { z } from 'zod';
import { type ConfigIssue, describeValue, listQuoted } from './errors.ts';

/**
 * Runs a zod schema and turns its issues into ConfigIssues worded for an operator:
 * `expected an integer from 0 to 1000, got 2000`, `unknown field, did you mean "uri"?`.
 * Messages are built by our own error map (which sees the received value and the schema),
 * so zod's default English never reaches the operator.
 */

type RawIssue = z.core.$ZodRawIssue;
type Result<T> = { ok: true; value: T } | { ok: false; issues: ConfigIssue[] };

interface SchemaLike {
  _zod: { def: Record<string, unknown> };
}

export function validate<S extends z.ZodType>(schema: S, data: unknown, file: string): Result<z.output<S>> {
  const allowedKeys = new Map<string, readonly string[]>();
  const result = schema.safeParse(data, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys') allowedKeys.set(pathKey(iss.path ?? []), keysOf(iss.inst));
      return messageFor(iss);
    },
  });
  if (result.success) return { ok: true, value: result.data };
  const issues: ConfigIssue[] = [];
  for (const iss of result.error.issues) {
    const path = iss.path.map((p) => (typeof p === 'number' ? p : String(p)));
    if (iss.code === 'unrecognized_keys') {
      const allowed = allowedKeys.get(pathKey(iss.path)) ?? [];
      for (const key of iss.keys)
        issues.push({ file, path: [...path, key], message: unknownField(key, allowed) });
    } else {
      issues.push({ file, path, message: iss.message });
    }
  }
  return { ok: false, issues };
}

function pathKey(path: readonly PropertyKey[]): string {
  return JSON.stringify(path.map(String));
}

function defOf(inst: unknown): Record<string, unknown> | undefined {
  return (inst as SchemaLike | undefined)?._zod?.def;
}

/** The keys a strict object (or an enum-keyed record) accepts. */
function keysOf(inst: unknown): string[] {
  const def = defOf(inst);
  const source = def?.type === 'record' ? defOf(def.keyType)?.entries : def?.shape;
  return source !== null && typeof source === 'object' ? Object.keys(source) : [];
}

function messageFor(iss: RawIssue): string {
  switch (iss.code) {
    case 'invalid_type':
      return expectedGot(expectationOf(iss.expected, iss.inst), iss.input);
    case 'too_small':
    case 'too_big':
      return expectedGot(sizeExpectation(iss), iss.input);
    case 'invalid_value':
      return expectedGot(oneOf(iss.values), iss.input);
    case 'invalid_union':
      return iss.discriminator !== undefined
        ? expectedGot(
            oneOf(Array.isArray(iss.options) ? iss.options : []),
            fieldOf(iss.input, iss.discriminator),
          )
        : expectedGot('one of the accepted forms', iss.input);
    case 'custom': {
      const expected = iss.params?.expected;
      return typeof expected === 'string' ? expectedGot(expected, iss.input) : 'invalid value';
    }
    case 'unrecognized_keys':
      return 'unknown field';
    case 'invalid_key':
      return `invalid key: ${iss.issues[0]?.message ?? 'not accepted here'}`;
    default:
      return expectedGot(`a valid ${iss.code.replace(/_/g, ' ')}`, iss.input);
  }
}

function fieldOf(input: unknown, key: string): unknown {
  return input !== null && typeof input === 'object' ? (input as Record<string, unknown>)[key] : undefined;
}

/** `expected X, got Y`; a missing field says so. */
export function expectedGot(expected: string, input: unknown): string {
  if (input === undefined) return `required field is missing: expected ${expected}`;
  return `expected ${expected}, got ${describeValue(input)}`;
}

function oneOf(values: readonly unknown[]): string {
  return values.length === 1 ? listQuoted(values) : `one of ${listQuoted(values)}`;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

function expectationOf(expected: string, inst: unknown): string {
  if (expected === 'number' || expected === 'int') return numberExpectation(inst);
  if (expected === 'object') {
    const required = requiredKeys(inst);
    if (required.length > 0) return `a mapping with ${andList(required)}`;
  }
  return TYPE_WORDS[expected] ?? `a ${expected}`;
}

/** Fields of an object schema that have neither a default nor `.optional()`. */
function requiredKeys(inst: unknown): string[] {
  const shape = defOf(inst)?.shape;
  if (shape === null || typeof shape !== 'object') return [];
  const optional = (field: unknown) => (field as { _zod?: { optin?: string } })._zod?.optin !== undefined;
  return Object.entries(shape)
    .filter(([, field]) => !optional(field))
    .map(([k]) => k);
}

function andList(words: readonly string[]): string {
  return words.length <= 1
    ? words.join('')
    : `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

interface Bound {
  value: number;
  inclusive: boolean;
}

/** `an integer from 0 to 1000`, `a number > 0 and <= 100`, `an integer >= 100`. */
function numberExpectation(schema: unknown): string {
  const def = defOf(schema);
  const noun = def?.format === 'safeint' || def?.format === 'int32' ? 'an integer' : 'a number';
  let min: Bound | undefined;
  let max: Bound | undefined;
  for (const check of (def?.checks as unknown[] | undefined) ?? []) {
    const c = defOf(check);
    if (typeof c?.value !== 'number') continue;
    const bound = { value: c.value, inclusive: c.inclusive === true };
    if (c.check === 'greater_than') min = bound;
    if (c.check === 'less_than') max = bound;
  }
  if (min?.inclusive && max?.inclusive) return `${noun} from ${min.value} to ${max.value}`;
  const parts = [
    min && `${min.inclusive ? '>=' : '>'} ${min.value}`,
    max && `${max.inclusive ? '<=' : '<'} ${max.value}`,
  ];
  const range = parts.filter((p) => p !== undefined).join(' and ');
  return range === '' ? noun : `${noun} ${range}`;
}

function sizeExpectation(iss: RawIssue & { code: 'too_small' | 'too_big' }): string {
  if (iss.origin === 'number' || iss.origin === 'int') return numberExpectation(iss.schema ?? iss.inst);
  const n = Number(iss.code === 'too_small' ? iss.minimum : iss.maximum);
  const small = iss.code === 'too_small';
  if (iss.origin === 'array')
    return small ? `at least ${n} ${n === 1 ? 'entry' : 'entries'}` : `at most ${n} entries`;
  if (iss.origin === 'string')
    return small ? (n === 1 ? 'a non-empty string' : `at least ${n} characters`) : `at most ${n} characters`;
  return `${small ? 'at least' : 'at most'} ${n}`;
}

/** `unknown field, did you mean "uri"?` or `unknown field, expected one of "a", "b" or "c"`. */
export function unknownField(key: string, allowed: readonly string[]): string {
  const near = closest(key, allowed);
  if (near !== undefined) return `unknown field, did you mean ${JSON.stringify(near)}?`;
  if (allowed.length === 0) return 'unknown field';
  return `unknown field, expected ${oneOf(allowed)}`;
}

function closest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 4)) + 1;
  for (const c of candidates) {
    const d = editDistance(key.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = row;
  }
  return prev[b.length]!;
}
