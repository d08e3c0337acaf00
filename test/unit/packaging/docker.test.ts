import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The Dockerfiles, read statically (no Docker engine here: the images are built elsewhere,
 * docs/operations.md): pinned bases, a dependency stage, npm ci without dev dependencies,
 * an unprivileged user, a HEALTHCHECK, and every file they COPY present in the build context.
 */
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const DOCKER = join(REPO, 'packaging/docker');

interface Instruction {
  op: string;
  args: string;
}
/** Instructions with continuation lines joined and comments dropped. */
function instructions(file: string): Instruction[] {
  const joined = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}
const ignored = readFileSync(join(REPO, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

const images = [
  { file: 'keizokud.Dockerfile', entry: 'bin/keizokud.mjs', health: '/readyz' },
  { file: 'keizoku-probe.Dockerfile', entry: 'bin/keizoku-probe.mjs', health: '/v1/targets' },
];

describe('Dockerfiles', () => {
  for (const image of images) {
    const all = instructions(join(DOCKER, image.file));
    const lastFrom = all.map((i) => i.op).lastIndexOf('FROM');
    const runtime = all.slice(lastFrom);

    it(`${image.file}: every base image is pinned to an exact version, a dependency stage before the runtime`, () => {
      const froms = all.filter((i) => i.op === 'FROM').map((i) => i.args);
      expect(froms.length).toBeGreaterThanOrEqual(2);
      for (const f of froms)
        expect(f).toMatch(/^node:\d+\.\d+\.\d+-bookworm(-slim)?(@sha256:[0-9a-f]{64})?( AS \w+)?$/);
      expect(froms.slice(0, -1).every((f) => / AS \w+$/.test(f))).toBe(true);
      expect(all.some((i) => i.op === 'RUN' && /npm ci --omit=dev\b/.test(i.args))).toBe(true);
      expect(
        runtime.some((i) => i.op === 'COPY' && i.args.startsWith('--from=deps /opt/keizoku/node_modules')),
      ).toBe(true);
    });

    it(`${image.file}: runs as an unprivileged user, with a HEALTHCHECK on ${image.health}`, () => {
      const user = runtime.filter((i) => i.op === 'USER').at(-1)?.args;
      expect(user).toBeDefined();
      expect(['root', '0', '0:0']).not.toContain(user);
      const health = runtime.filter((i) => i.op === 'HEALTHCHECK');
      expect(health).toHaveLength(1);
      expect(health[0]!.args).toContain(`packaging/docker/healthcheck.mjs", "http://127.0.0.1:`);
      expect(health[0]!.args).toContain(image.health);
      expect(runtime.find((i) => i.op === 'ENTRYPOINT')?.args).toBe(`["node", "${image.entry}"]`);
    });

    it(`${image.file}: every file it copies is in the repository and in the build context`, () => {
      const copies = all.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from='));
      expect(copies.length).toBeGreaterThan(0);
      for (const c of copies) {
        const sources = c.args.split(' ').slice(0, -1);
        for (const s of sources) {
          expect(existsSync(join(REPO, s)), `${image.file}: COPY ${s}`).toBe(true);
          expect(
            ignored.some((p) => s === p || s.startsWith(`${p}/`)),
            `${s} is in .dockerignore`,
          ).toBe(false);
        }
      }
      // What the entry point imports at run time is copied.
      const copied = copies.flatMap((c) => c.args.split(' ').slice(0, -1));
      expect(copied).toEqual(expect.arrayContaining(['bin', 'src', 'package.json']));
      if (image.file.startsWith('keizoku-probe')) expect(copied).toContain('agents');
    });

    it(`${image.file}: the files it copies are enough to start the daemon and check a config`, () => {
      // The image's /opt/keizoku, with this repository's node_modules standing in for the deps stage.
      const root = mkdtempSync(join(tmpdir(), 'kz-image-'));
      try {
        for (const c of all.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from='))) {
          const parts = c.args.split(' ');
          const dest = parts.at(-1)!;
          for (const s of parts.slice(0, -1)) {
            const to = dest.endsWith('/') ? join(root, dest, s.split('/').at(-1)!) : join(root, dest);
            mkdirSync(dirname(to), { recursive: true });
            cpSync(join(REPO, s), to, { recursive: true });
          }
        }
        symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'));
        const config = join(root, 'check.yaml');
        writeFileSync(
          config,
          image.file.startsWith('keizokud')
            ? 'sites: [{ name: dc1 }]\nhosts: [{ name: h1, uri: "qemu:///system", site: dc1, managementAddress: 127.0.0.1 }]\nredis: { url: "redis://127.0.0.1:6379/0" }\n'
            : 'name: p1\nsite: dc1\ntargets: [{ name: t, addresses: [127.0.0.1] }]\n',
        );
        const r = spawnSync(process.execPath, [image.entry, '--config', config, '--check-config'], {
          cwd: root,
          encoding: 'utf8',
          env: { ...process.env, KEIZOKU_REDIS_URL: '' },
        });
        expect(r.stderr).toBe('');
        expect(r.stdout).toContain('check.yaml: ok');
        expect(r.status).toBe(0);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }
});

describe('packaging/docker/healthcheck.mjs', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(req.url === '/readyz' ? 200 : 503).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const check = (args: string[], env: Record<string, string> = {}) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [join(DOCKER, 'healthcheck.mjs'), ...args], {
        env: { ...process.env, KEIZOKU_HEALTHCHECK_URL: '', ...env },
      });
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.on('exit', (code) => resolve({ code, stderr }));
    });

  it('exits 0 on a 2xx, 1 on a 503 or a refused connection, naming the URL', async () => {
    expect((await check([`${base}/readyz`])).code).toBe(0);
    const notReady = await check([`${base}/other`]);
    expect(notReady.code).toBe(1);
    expect(notReady.stderr).toContain(`${base}/other: HTTP 503`);
    const refused = await check(['http://127.0.0.1:1/readyz']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/127\.0\.0\.1:1\/readyz: .*ECONNREFUSED/);
  });

  it('takes KEIZOKU_HEALTHCHECK_URL over its argument', async () => {
    expect(
      (await check(['http://127.0.0.1:1/readyz'], { KEIZOKU_HEALTHCHECK_URL: `${base}/readyz` })).code,
    ).toBe(0);
  });
});
