// One measured live move, by keizoku (API -> job) or by raw virsh, as bench:migrate and
// bench:site take them: pinged every `pingMs` from outside the hosts by the same independent
// capture (outage = the longest gap between replies), carrying the same TCP session (keizoku's
// job holds one; here one is held for virsh).
import { type LabState, startPing, virshMigrate } from '../lab/index.ts';
import { TcpSessionCheck } from '../src/probe/tcp-session.ts';
import type { RunningKeizokud } from '../test/support/keizokud.ts';
import { median, p95, r1 } from './stats.ts';

/** A JSON object from the environment variable `name` ({} when unset). */
export function jsonEnv(name: string): Record<string, unknown> {
  const raw = process.env[name];
  if (!raw) return {};
  try {
    const v = JSON.parse(raw);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v;
  } catch {
    // reported below
  }
  throw new Error(`${name} must be a JSON object, got: ${raw}`);
}

/** Figures of a series of moves by one tool. */
export interface Series {
  totalMs: number[];
  downtimeMs: number[];
  outageMs: number[];
  lost: number[];
  /** Pre-copy iterations of each move, as libvirt reports the completed job. */
  iterations: number[];
  /** keizoku only: moves whose switch-over limit was raised (migration.maxDowntimeSteps). */
  downtimeRaised: number;
  sessions: number;
  sessionConnectFailures: number;
  /** keizoku only: pre-checks, and request to result as the client saw it. */
  checkMs: number[];
  requestMs: number[];
}

export const series = (): Series => ({
  totalMs: [],
  downtimeMs: [],
  outageMs: [],
  lost: [],
  iterations: [],
  downtimeRaised: 0,
  sessions: 0,
  sessionConnectFailures: 0,
  checkMs: [],
  requestMs: [],
});

/** Moves `vm` from `from` to `to` through keizokud's API (`body` joins the request) and records it in `s`. */
export async function keizokuMove(
  daemon: RunningKeizokud,
  token: string,
  m: { vm: string; address: string; from: string; to: string; body?: Record<string, unknown> },
  s: Series,
  pingMs = 10,
): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await daemon.request('GET', `/v1/vms/${m.vm}`, token);
    if (r.body.host === m.from && r.body.state === 'running') break;
    await new Promise((res) => setTimeout(res, 100));
  }
  const cap = startPing(m.address, pingMs);
  await new Promise((res) => setTimeout(res, 300));
  const t0 = Date.now();
  const post = await daemon.request('POST', `/v1/vms/${m.vm}/migrate`, token, { to: m.to, ...m.body });
  if (post.status !== 202) {
    await cap.stop();
    throw new Error(`migrate refused: ${JSON.stringify(post.body)}`);
  }
  let job = post.body;
  // Polled gently: the load generator shares the 2 cores with the TCG guest and both
  // hosts, and a busy poll lengthened keizoku's downtime (the totals come from the job).
  while (job.state === 'waiting' || job.state === 'active') {
    await new Promise((res) => setTimeout(res, 250));
    job = (await daemon.request('GET', `/v1/jobs/${job.id}`, token)).body;
  }
  const requestMs = Date.now() - t0;
  const ping = await cap.stop();
  if (job.state !== 'succeeded') throw new Error(`keizoku move failed: ${JSON.stringify(job.result)}`);
  s.totalMs.push(job.result.checkMs + job.result.totalMs);
  s.checkMs.push(job.result.checkMs);
  s.requestMs.push(requestMs);
  s.downtimeMs.push(job.result.libvirtDowntimeMs);
  s.outageMs.push(ping.maxGapMs);
  s.lost.push(ping.sent - ping.received);
  if (job.result.iterations !== null) s.iterations.push(job.result.iterations);
  if (job.result.downtimeRaises?.length > 0) s.downtimeRaised++;
  if (job.result.session?.survived) s.sessions++;
  if (!job.result.session) s.sessionConnectFailures++;
}

/** Moves `vm` with raw `virsh migrate --live --p2p FLAGS` and records it in `s`. */
export async function virshMove(
  lab: LabState,
  m: { vm: string; address: string; from: string; to: string; flags: string[] },
  s: Series,
  pingMs = 10,
): Promise<void> {
  // The same TCP session keizoku's job holds (heartbeat every 100 ms to the echo port): the
  // guest carries the same load under both tools (it lengthens libvirt's downtime here).
  const session = new TcpSessionCheck({ host: m.address, port: 7, heartbeatMs: 100, breakAfterMs: 10_000 });
  // A connect that fails is counted and the move still measured (keizoku's job does the same).
  const connected = await session.start().then(
    () => true,
    (e: Error) => {
      console.log(`virsh move: session check could not connect: ${e.message}`);
      s.sessionConnectFailures++;
      return false;
    },
  );
  try {
    const r = await virshMigrate(lab, m.vm, m.from, m.to, m.flags, pingMs);
    s.totalMs.push(r.wallMs);
    s.downtimeMs.push(r.downtimeMs);
    s.outageMs.push(r.ping.maxGapMs);
    s.lost.push(r.ping.sent - r.ping.received);
    if (Number.isFinite(r.iterations)) s.iterations.push(r.iterations);
  } finally {
    if (connected && session.stop().survived) s.sessions++;
  }
}

/** The figures of a series under `prefix`: `${prefix}_outage_ms_median` and the like. */
export function summary(prefix: string, s: Series): Record<string, number> {
  return {
    [`${prefix}_total_ms_median`]: r1(median(s.totalMs)),
    [`${prefix}_libvirt_downtime_ms_median`]: r1(median(s.downtimeMs)),
    [`${prefix}_outage_ms_median`]: r1(median(s.outageMs)),
    [`${prefix}_outage_p95_ms`]: r1(p95(s.outageMs)),
    [`${prefix}_pings_lost_median`]: median(s.lost),
    [`${prefix}_iterations_median`]: median(s.iterations),
    [`${prefix}_moves_downtime_raised`]: s.downtimeRaised,
    [`${prefix}_sessions_survived`]: s.sessions,
    [`${prefix}_session_connect_failures`]: s.sessionConnectFailures,
  };
}

/**
 * `rounds` rounds of one move by each tool, interleaved, each tool first in half of them (so
 * each also goes first from the first host in half), a line per round on stderr.
 */
export async function interleave(
  rounds: number,
  tools: { keizoku: () => Promise<void>; virsh: () => Promise<void> },
  k: Series,
  v: Series,
): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      await tools.keizoku();
      await tools.virsh();
    } else {
      await tools.virsh();
      await tools.keizoku();
    }
    process.stderr.write(
      `round ${round + 1}: keizoku ${k.totalMs.at(-1)} ms (downtime ${k.downtimeMs.at(-1)}, outage ${k.outageMs.at(-1)}) | virsh ${v.totalMs.at(-1)} ms (downtime ${v.downtimeMs.at(-1)}, outage ${v.outageMs.at(-1)})\n`,
    );
  }
}
