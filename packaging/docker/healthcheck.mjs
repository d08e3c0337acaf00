#!/usr/bin/env node
// HEALTHCHECK of the keizoku images: exit 0 when the URL (KEIZOKU_HEALTHCHECK_URL, else the
// first argument) answers 2xx within 4 s, else 1 with the reason on stderr. Plain JavaScript,
// no dependencies: it runs every few seconds. It checks the container's own daemon on
// loopback and sends no token, so an https URL is not verified (its certificate names the
// service, not 127.0.0.1).
import { request as http } from 'node:http';
import { request as https } from 'node:https';

const target = process.env.KEIZOKU_HEALTHCHECK_URL || process.argv[2];
if (!target) {
  process.stderr.write('healthcheck: no URL (argument or KEIZOKU_HEALTHCHECK_URL)\n');
  process.exit(1);
}
const url = new URL(target);
const send = url.protocol === 'https:' ? https : http;
const req = send(url, { method: 'GET', timeout: 4000, rejectUnauthorized: false }, (res) => {
  res.resume();
  const ok = res.statusCode >= 200 && res.statusCode < 300;
  if (!ok) process.stderr.write(`healthcheck: ${url.href}: HTTP ${res.statusCode}\n`);
  process.exit(ok ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('no answer within 4 s')));
req.on('error', (e) => {
  process.stderr.write(`healthcheck: ${url.href}: ${e.message}\n`);
  process.exit(1);
});
req.end();
