// The reset proxy as a process, to run inside a lab host's network namespace (where the
// host's certificate address is local): `ip netns exec kzN-hI node --import tsx
// test/support/reset-proxy-main.ts LISTEN_HOST TARGET_HOST:PORT RESETS SEED`.
// It forwards untouched until a line "arm" on stdin; then it resets the open connections and
// every new one at a random byte offset (or after 2 s) until RESETS resets are done, then
// forwards again. Prints JSON lines: {"port":P} once listening, {"resets":N} after each reset.
import { createInterface } from 'node:readline';
import { startResetProxy } from './reset-proxy.ts';

const [listenHost, target, resetsArg, seedArg] = process.argv.slice(2);
const [targetHost, targetPort] = target!.split(':');
const total = Number(resetsArg);
let seed = Number(seedArg) || 1;
const random = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
let armed = false;
let reported = 0;
const proxy = await startResetProxy({
  listenHost: listenHost!,
  targetHost: targetHost!,
  targetPort: Number(targetPort),
  plan: () =>
    armed && proxy.resets < total
      ? {
          at: 'bytes',
          direction: random() < 0.5 ? 'toServer' : 'toClient',
          // The TLS handshake, libvirtd's verdict byte and the first RPCs are in the first ~3 KB.
          after: Math.floor(random() * 3_000),
          orAfterMs: 2_000,
        }
      : null,
});
process.stdout.write(`${JSON.stringify({ port: proxy.port })}\n`);
setInterval(() => {
  if (proxy.resets !== reported) {
    reported = proxy.resets;
    process.stdout.write(`${JSON.stringify({ resets: reported })}\n`);
  }
}, 50);
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'arm') return;
  armed = true;
  proxy.resetOpen();
});
process.stdin.on('end', () => void proxy.close().then(() => process.exit(0)));
