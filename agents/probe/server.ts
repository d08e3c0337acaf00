import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { computeWindow } from '../../src/probe/outage.ts';
import type { ProbeAgent } from './agent.ts';

/**
 * keizoku-probe's HTTP endpoints (loopback by default):
 *   GET /metrics                              Prometheus
 *   GET /v1/targets                           what is probed, samples kept
 *   GET /v1/window?target=&from=&to=[&samples=1]   the studies' figures over a period
 */

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
}

export function windowReply(
  agent: ProbeAgent,
  o: { intervalMs: number; timeoutMs: number },
  q: URLSearchParams,
  now = Date.now(),
) {
  const target = q.get('target');
  const from = Number(q.get('from'));
  const to = Number(q.get('to'));
  if (!target) return { status: 400, body: { error: { message: 'query: target is required' } } };
  if (
    !Number.isFinite(from) ||
    !Number.isFinite(to) ||
    q.get('from') === null ||
    q.get('to') === null ||
    from > to
  )
    return {
      status: 400,
      body: { error: { message: 'query: from and to must be epoch milliseconds with from <= to' } },
    };
  if (!agent.has(target)) return { status: 404, body: { error: { message: `not probing "${target}"` } } };
  // Probes of the last moments may still get their reply: they are not yet counted as lost.
  const until = Math.min(to, now - 2 * o.intervalMs);
  const samples = agent.samples(target, from, until);
  const w = computeWindow(samples, { intervalMs: o.intervalMs, timeoutMs: o.timeoutMs, from, to: until });
  const longest = w.outages.reduce<(typeof w.outages)[number] | null>(
    (a, b) => (a && a.durationMs >= b.durationMs ? a : b),
    null,
  );
  return {
    status: 200,
    body: {
      target,
      addresses: Object.keys(w.perAddress),
      fromMs: from,
      toMs: until,
      intervalMs: o.intervalMs,
      sent: w.sent,
      lost: w.lost,
      lossRate: w.lossRate,
      rttMinMs: w.rttMs?.min ?? null,
      rttMaxMs: w.rttMs?.max ?? null,
      rttAvgMs: w.rttMs?.avg ?? null,
      outageMs: Math.round(w.outageMs * 10) / 10,
      outageStartMs: longest?.start ?? null,
      outageEndMs: longest?.end ?? null,
      outages: w.outages.map((x) => ({
        startMs: x.start,
        endMs: x.end,
        durationMs: x.durationMs,
        lost: x.lostSlots,
      })),
      ...(q.get('samples') === '1'
        ? {
            samples: samples
              .sort((a, b) => a.sentAt - b.sentAt)
              .map((s) => ({
                tMs: s.sentAt,
                rttMs:
                  s.receivedAt !== null && s.receivedAt - s.sentAt <= o.timeoutMs
                    ? s.receivedAt - s.sentAt
                    : null,
              })),
          }
        : {}),
    },
  };
}

export function startServer(
  agent: ProbeAgent,
  o: { host: string; port: number; intervalMs: number; timeoutMs: number },
): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://probe');
    if (req.method !== 'GET') return send(res, 405, { error: { message: `${req.method} is not allowed` } });
    if (url.pathname === '/metrics') {
      agent.registry.metrics().then(
        (t) => res.writeHead(200, { 'content-type': agent.registry.contentType }).end(t),
        () => res.writeHead(500).end(),
      );
      return;
    }
    if (url.pathname === '/v1/targets') return send(res, 200, { targets: agent.targets() });
    if (url.pathname === '/v1/window') {
      const r = windowReply(agent, o, url.searchParams);
      return send(res, r.status, r.body);
    }
    send(res, 404, { error: { message: `no route ${url.pathname}` } });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve(server));
  });
}
