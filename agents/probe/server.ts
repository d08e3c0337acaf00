import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
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

/** Epoch milliseconds: digits only (a fraction allowed), so `1e3`, `0x10` or `-5` are refused. */
const EPOCH_MS = /^\d{1,15}(\.\d+)?$/;

export function windowReply(
  agent: ProbeAgent,
  o: { intervalMs: number; timeoutMs: number },
  q: URLSearchParams,
  now = Date.now(),
): { status: number; body: unknown } {
  const bad = (message: string) => ({ status: 400, body: { error: { message } } });
  const target = q.get('target');
  if (!target) return bad('query: target is required (the name of a probed target)');
  const fromText = q.get('from');
  const toText = q.get('to');
  if (fromText === null || !EPOCH_MS.test(fromText))
    return bad(`query: from must be epoch milliseconds, got ${JSON.stringify(fromText)}`);
  if (toText === null || !EPOCH_MS.test(toText))
    return bad(`query: to must be epoch milliseconds, got ${JSON.stringify(toText)}`);
  const from = Number(fromText);
  const to = Number(toText);
  if (from > to) return bad(`query: from (${fromText}) is after to (${toText})`);
  const withSamples = q.get('samples');
  if (withSamples !== null && withSamples !== '0' && withSamples !== '1')
    return bad(`query: samples must be 0 or 1, got ${JSON.stringify(withSamples)}`);
  // Probes of the last moments may still get their reply: they are not counted yet.
  const until = Math.max(from, Math.min(to, now - 2 * o.intervalMs));
  const w = agent.window(target, from, until);
  if (!w) return { status: 404, body: { error: { message: `not probing a target named "${target}"` } } };
  return {
    status: 200,
    body: {
      target,
      addresses: agent.targets().find((t) => t.name === target)?.addresses ?? [],
      intervalMs: o.intervalMs,
      ...w.stats,
      ...(withSamples === '1'
        ? {
            samples: w.samples
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
