import { type ChildProcess, spawn } from 'node:child_process';

/** A running `ping -D` to one address, for an independent view of reachability. */
export interface PingCapture {
  stop(): Promise<PingSummary>;
}

export interface PingSummary {
  sent: number;
  received: number;
  /** Longest time between two consecutive replies (or capture start/end and a reply), ms. */
  maxGapMs: number;
  /** Reply timestamps, ms since the epoch. */
  replies: number[];
}

/** Starts `ping -D -i interval` from the root namespace. Interval below 0.2 s needs root. */
export function startPing(address: string, intervalMs = 10): PingCapture {
  const child: ChildProcess = spawn(
    'ping',
    ['-D', '-n', '-i', String(intervalMs / 1000), '-W', '1', address],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const started = Date.now();
  let out = '';
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  return {
    stop: () =>
      new Promise((resolve) => {
        const stopped = Date.now();
        child.once('close', () => resolve(parsePingLog(out, started, stopped)));
        child.kill('SIGINT');
      }),
  };
}

/** Parses iputils `ping -D` output: `[1732330000.123456] 64 bytes from ...: icmp_seq=N ...`. */
export function parsePingLog(text: string, startedMs: number, stoppedMs: number): PingSummary {
  const replies = [...text.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)/gm)].map((m) =>
    Math.round(Number(m[1]) * 1000),
  );
  const sentMatch = text.match(/(\d+) packets transmitted, (\d+) received/);
  const points = [startedMs, ...replies, stoppedMs];
  let maxGapMs = 0;
  for (let i = 1; i < points.length; i++) maxGapMs = Math.max(maxGapMs, points[i]! - points[i - 1]!);
  return {
    sent: sentMatch ? Number(sentMatch[1]) : replies.length,
    received: sentMatch ? Number(sentMatch[2]) : replies.length,
    maxGapMs,
    replies,
  };
}
