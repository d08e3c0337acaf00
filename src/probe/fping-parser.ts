import { LineParser, stamp } from './line-parser.ts';
import type { ProbeSample } from './outage.ts';
import { PingParser } from './ping-parser.ts';

const LINE = /^\[(\d+)(?:\.(\d{1,9}))?\] (\S+)\s+: \[(\d+)\], (.*)$/;
const REPLY = /^\d+ bytes, (\d+(?:\.\d+)?) ms\b/;

/**
 * Turns the output of one `fping -l -D -e -p P -t T ADDRESS...` (loop mode, every address of
 * a group) into probe samples per address, as it arrives:
 *   [1732330000.12345] 10.0.0.1 : [5], 64 bytes, 0.512 ms (0.498 avg, 0% loss)
 *   [1732330001.14000] 10.0.0.2 : [5], timed out (NaN avg, 100% loss)
 * fping prints one line per probe: a reply dates its probe exactly (arrival - RTT); `timed
 * out` comes T after the send. A probe fping has not spoken of yet, but a later one of the same
 * address it has, was sent and is lost until its line says otherwise; its send time is
 * interpolated between its dated neighbours (fping paces each address evenly). Duplicate
 * replies (`duplicate for [N]`) and other lines are ignored. The per-address bookkeeping is
 * PingParser's: the same rules as for iputils.
 */
export class FpingParser extends LineParser {
  private readonly byAddress = new Map<string, PingParser>();

  constructor(
    addresses: readonly string[],
    intervalMs: number,
    private readonly timeoutMs: number,
  ) {
    super();
    for (const a of addresses) this.byAddress.set(a, new PingParser(a, intervalMs));
  }

  /** The address's probes so far (seq as fping numbers them in this run). */
  samples(address: string): ProbeSample[] {
    return this.byAddress.get(address)?.samples() ?? [];
  }

  /** Forgets the address's probes sent before `t`. */
  discardBefore(address: string, t: number): void {
    this.byAddress.get(address)?.discardBefore(t);
  }

  protected line(line: string): void {
    const m = LINE.exec(line);
    if (!m) return;
    const p = this.byAddress.get(m[3]!);
    if (!p) return;
    const at = stamp(m[1]!, m[2]);
    const seq = Number(m[4]);
    const rest = m[5]!;
    const reply = REPLY.exec(rest);
    if (reply) p.reply(seq, at, Number(reply[1]));
    else if (rest.startsWith('timed out')) p.sent(seq, at - this.timeoutMs);
  }
}
