import { describe, expect, it } from 'vitest';
import { judgeHealth } from '../../../src/core/health.ts';
import { witnessVotes } from '../../../src/core/witness.ts';

const w = (probe: string, vm: string, sent: number, lost: number) => ({ probe, vm, sent, lost });

describe('witnessVotes', () => {
  it('counts an agent up when any of the host VMs answered it, down when all were silent', () => {
    const votes = witnessVotes(
      ['a', 'b'],
      [
        w('p1', 'a', 10, 10),
        w('p1', 'b', 10, 3),
        w('p2', 'a', 10, 10),
        w('p2', 'b', 10, 10),
        w('p3', 'x', 10, 10),
      ],
    );
    expect(votes).toEqual({ up: 1, down: 1, total: 2 });
  });

  it('lets an agent with too few probes abstain, and ignores VMs of other hosts', () => {
    expect(witnessVotes(['a'], [w('p1', 'a', 2, 2), w('p2', 'z', 10, 0)])).toEqual({
      up: 0,
      down: 0,
      total: 0,
    });
  });

  it('makes a silent host down only with ICMP silent and a witness majority', () => {
    const now = 100_000;
    const lost = {
      connected: false,
      lastSuccessAt: now - 20_000,
      lastAttemptAt: now - 1_000,
      icmp: { lastReplyAt: now - 20_000, lastSentAt: now - 500 },
    };
    const majority = witnessVotes(['a'], [w('p1', 'a', 10, 10), w('p2', 'a', 10, 10), w('p3', 'a', 0, 0)]);
    expect(judgeHealth({ ...lost, witnesses: majority }, now).health).toBe('down');
    const split = witnessVotes(['a'], [w('p1', 'a', 10, 10), w('p2', 'a', 10, 9)]);
    expect(judgeHealth({ ...lost, witnesses: split }, now).health).toBe('partitioned');
    expect(judgeHealth({ ...lost, witnesses: { up: 0, down: 0, total: 0 } }, now).health).toBe('unreachable');
  });
});
