import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import type { ConfigIssue } from './errors.ts';

/** Reads one YAML document; every failure is a ConfigIssue naming the file (and line, column). */

export type YamlResult =
  | { ok: true; data: unknown; warnings: ConfigIssue[] }
  | { ok: false; issues: ConfigIssue[] };

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'file not found',
  EACCES: 'cannot read the file: permission denied',
  EISDIR: 'is a directory, expected a YAML file',
};

export function readErrorMessage(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code ?? '';
  return READ_ERRORS[code] ?? `cannot read the file: ${code || String(e)}`;
}

/**
 * @param absPath where to read
 * @param shown the file's name in messages
 * @param expected what the document should be, for an empty file (`a mapping with sites, hosts, ...`)
 */
export async function readYaml(absPath: string, shown: string, expected: string): Promise<YamlResult> {
  let source: string;
  try {
    source = await readFile(absPath, 'utf8');
  } catch (e) {
    return { ok: false, issues: [{ file: shown, path: [], message: readErrorMessage(e) }] };
  }
  return parseYaml(source, shown, expected);
}

export function parseYaml(source: string, shown: string, expected: string): YamlResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined, kind: string, message: string): ConfigIssue => {
    const { line, col } = lineCounter.linePos(offset ?? 0);
    return {
      file: shown,
      path: [],
      line,
      column: col,
      message: `${kind} at line ${line}, column ${col}: ${message}`,
    };
  };
  // Later errors are mostly echoes of the first one; the first is the one to fix.
  const first = doc.errors[0];
  if (first !== undefined) {
    const message =
      first.code === 'MULTIPLE_DOCS'
        ? 'a second document (---) begins here; keizoku reads one document per file'
        : first.message;
    return { ok: false, issues: [at(first.pos[0], 'YAML syntax error', message)] };
  }
  if (doc.contents === null) {
    return {
      ok: false,
      issues: [{ file: shown, path: [], message: `the file is empty: expected ${expected}` }],
    };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    return {
      ok: false,
      issues: [at(doc.contents.range[0], 'YAML error', e instanceof Error ? e.message : String(e))],
    };
  }
  const warnings = doc.warnings.map((w) => at(w.pos[0], 'YAML warning', w.message));
  return { ok: true, data, warnings };
}
