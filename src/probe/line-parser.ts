/**
 * Output of a long-lived process read as it arrives: chunks in, whole lines out to `line()`;
 * a trailing partial line waits for the rest. Shared by the iputils and fping parsers.
 */
export abstract class LineParser {
  private partial = '';

  /** Feeds output; whole lines are parsed, a trailing partial line waits for the rest. */
  push(chunk: string): void {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line.trimEnd());
  }

  /** Parses whatever partial line is left (call when the stream ends). */
  end(): void {
    if (this.partial) this.line(this.partial.trimEnd());
    this.partial = '';
  }

  protected abstract line(line: string): void;
}

/** A `-D` timestamp `[1732330000.123456]` (seconds, fraction) as ms since the epoch, fractions kept. */
export const stamp = (sec: string, frac = ''): number => Number(sec) * 1000 + Number(`0.${frac}0`) * 1000;
