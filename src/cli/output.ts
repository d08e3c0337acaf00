/** Human tables and --json output. */

export type Cell = string | number | boolean | null | undefined;

export function table(header: string[], rows: Cell[][]): string {
  const text = [header, ...rows.map((r) => r.map(cell))];
  const widths = header.map((_, i) => Math.max(...text.map((r) => (r[i] ?? '').length)));
  return `${text
    .map((r) =>
      r
        .map((c, i) => (c ?? '').padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

function cell(c: Cell): string {
  if (c === null || c === undefined || c === '') return '-';
  if (typeof c === 'number') return Number.isInteger(c) ? String(c) : c.toFixed(2);
  return String(c);
}

/** Key: value lines for one object (nested values as compact JSON). */
export function details(o: Record<string, unknown>): string {
  const width = Math.max(...Object.keys(o).map((k) => k.length));
  return `${Object.entries(o)
    .map(
      ([k, v]) =>
        `${k.padEnd(width)}  ${typeof v === 'object' && v !== null ? JSON.stringify(v) : cell(v as Cell)}`,
    )
    .join('\n')}\n`;
}

export interface OutputFlags {
  json?: boolean;
}

/** Writes `data` as one JSON document with --json, else the human rendering. */
export function emit(flags: OutputFlags, data: unknown, human: () => string): void {
  process.stdout.write(flags.json ? `${JSON.stringify(data, null, 2)}\n` : human());
}
