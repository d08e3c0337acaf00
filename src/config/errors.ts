/**
 * Errors of the configuration: every problem is one issue naming the file, the path inside
 * it and what was expected, printed one per line as `FILE: hosts[1].uri: expected ..., got ...`.
 */

export type ConfigPath = readonly (string | number)[];

export interface ConfigIssue {
  /** The file the issue is in, as shown to the operator (or `environment` for an env var). */
  readonly file: string;
  /** Where inside the file; empty for the file as a whole. */
  readonly path: ConfigPath;
  readonly message: string;
  /** 1-based position, known for YAML syntax errors only. */
  readonly line?: number;
  readonly column?: number;
}

/** Every issue found while loading a configuration; `message` is the formatted list. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.issues = Object.freeze([...issues]);
  }
}

export function isConfigError(e: unknown): e is ConfigError {
  return e instanceof ConfigError;
}

const BARE_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `hosts[1].fence.method`; keys that are not plain words are quoted: `labels["app/tier"]`. */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (BARE_KEY.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

/** One line: `FILE: path: message`, or `FILE: message` for the file as a whole. */
export function formatIssue(issue: ConfigIssue): string {
  const where = formatPath(issue.path);
  return where === '' ? `${issue.file}: ${issue.message}` : `${issue.file}: ${where}: ${issue.message}`;
}

/**
 * The text to show an operator for an error thrown by `loadConfig`: the issue lines of a
 * ConfigError, the message of any other error (never a stack trace).
 */
export function formatConfigError(e: unknown): string {
  if (e instanceof ConfigError) return e.issues.map(formatIssue).join('\n');
  if (e instanceof Error) return e.message;
  return String(e);
}

const MAX_SHOWN = 60;

/** A received value, shown short: `"http://x"`, `-5`, `a list`, `a mapping`, `null`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (typeof value === 'object') return Object.keys(value).length === 0 ? 'an empty mapping' : 'a mapping';
  if (typeof value === 'string') return quoteShort(hideUrlPassword(value));
  return String(value);
}

function quoteShort(s: string): string {
  const shown = s.length > MAX_SHOWN ? `${s.slice(0, MAX_SHOWN - 3)}...` : s;
  return JSON.stringify(shown);
}

/** `redis://:secret@h:6379` -> `redis://:***@h:6379`: error lines end up in logs. */
function hideUrlPassword(s: string): string {
  return s.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

/** `"a", "b" or "c"` */
export function listQuoted(values: readonly unknown[]): string {
  const quoted = values.map((v) => (typeof v === 'string' ? JSON.stringify(v) : String(v)));
  if (quoted.length <= 1) return quoted.join('');
  return `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
}
