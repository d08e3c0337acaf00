import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, type LabState, labKeizokudConfig } from '../../lab/index.ts';
import type { Role } from '../../src/api/auth/rbac.ts';
import { TokenStore } from '../../src/api/auth/tokens.ts';
import { type RedisTarget, redisOptions } from '../../src/jobs/connection.ts';
import { Contract } from './openapi.ts';
import { recordChild } from './process.ts';

/** A real keizokud process against the lab and a real Redis, with its API on a free port. */
export interface RunningKeizokud {
  url: string;
  metricsUrl: string;
  configFile: string;
  auditDir: string;
  redis: Redis;
  /** The daemon's stdout+stderr so far (pino JSON lines). */
  output(): string;
  /**
   * Resolves once `ok` is true (asked every `everyMs`, 250 by default; a throw counts as not
   * yet); after `ms` fails naming `what`, with the end of the daemon's output.
   */
  until(what: string, ms: number, ok: () => Promise<boolean>, everyMs?: number): Promise<void>;
  /** A probe token is bound to the agent `name` (default "probe") at `site` (default dc1). */
  token(
    role: Role,
    o?: { name?: string; vms?: string[]; allowMigrate?: boolean; site?: string },
  ): Promise<string>;
  /** Runs the `keizokud` command (e.g. `token create`) with this config. */
  cli(args: string[]): { status: number; stdout: string; stderr: string };
  /**
   * Every answer is checked against the OpenAPI document the daemon publishes: one that does
   * not fit it (status, content type, body) throws, naming what differs.
   */
  request(method: string, path: string, token: string | null, body?: unknown): Promise<ApiResponse>;
  /** Whether the daemon's process is still running. */
  alive(): boolean;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the daemon again with the same config and Redis (after kill); `wait: false` returns at once. */
  restart(o?: { wait?: boolean }): Promise<void>;
  /** Resolves when the daemon is ready and has seen every host (after `restart({ wait: false })`). */
  waitUp(): Promise<void>;
  stop(): Promise<void>;
}

export interface ApiResponse {
  status: number;
  requestId: string | null;
  // biome-ignore lint/suspicious/noExplicitAny: test code reads whatever JSON the route answers
  body: any;
}

export async function startKeizokud(
  lab: LabState,
  /** A Redis URL, or a whole `redis` section (e.g. a SentinelGroup's target). */
  redisAt: RedisTarget,
  extra: Record<string, unknown> = {},
  /** Last changes to the generated config (e.g. a host's capacity). */
  mutate?: (config: Record<string, unknown>) => void,
): Promise<RunningKeizokud> {
  const dir = mkdtempSync(join(tmpdir(), 'keizokud-api-'));
  const [apiPort, metricsPort] = [await freePort(), await freePort()];
  const auditDir = join(dir, 'audit');
  const config = labKeizokudConfig(lab, {
    redisUrl: typeof redisAt === 'string' ? redisAt : redisAt.url,
    metricsPort,
    extra: {
      audit: { dir: auditDir },
      loops: { inventoryIntervalMs: 1_000 },
      // The shared lab gathers dozens of 1-vCPU guests on hosts of 2 CPUs.
      placement: { cpuOvercommit: 32 },
      ...extra,
      api: { listen: `127.0.0.1:${apiPort}`, ...((extra.api as object) ?? {}) },
    },
  });
  if (typeof redisAt !== 'string') config.redis = redisAt;
  mutate?.(config);
  const configFile = join(dir, 'keizokud.yaml');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  let out = '';
  let child: ChildProcess;
  let exited: Promise<void>;
  const spawnDaemon = () => {
    child = spawn('node', ['bin/keizokud.mjs', '--config', configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    recordChild(child.pid, 'keizokud');
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    exited = new Promise<void>((r) => child.once('exit', () => r()));
  };
  spawnDaemon();
  const url = `http://127.0.0.1:${apiPort}`;
  const redis = new Redis({ maxRetriesPerRequest: 1, ...redisOptions(redisAt) });
  redis.on('error', () => undefined); // a Redis failover under test: commands fail, then resume
  const tokens = new TokenStore(redis, 'keizoku:default:');

  // What every answer of request() is held to: the document this daemon publishes.
  let contract: Contract | null = null;
  const request = async (method: string, path: string, token: string | null, body?: unknown) => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(url + path, {
      method,
      headers,
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // left as text
    }
    const violations =
      contract?.check({
        method,
        url: path,
        status: r.status,
        contentType: r.headers.get('content-type'),
        body: parsed,
      }) ?? [];
    if (violations.length > 0)
      throw new Error(`the answer does not fit keizokud's OpenAPI document:\n${violations.join('\n')}`);
    return { status: r.status, requestId: r.headers.get('x-request-id'), body: parsed };
  };

  let restartedAt = 0;
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  const running: RunningKeizokud = {
    url,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    configFile,
    auditDir,
    redis,
    output: () => out,
    until: async (what, ms, ok, everyMs = 250) => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        if (await ok().catch(() => false)) return;
        await new Promise((r) => setTimeout(r, everyMs));
      }
      throw new Error(`${what}: not within ${ms} ms\n${out.slice(-3000)}`);
    },
    token: async (role, o = {}) =>
      (
        await tokens.create({
          name: o.name ?? role,
          role,
          ...(o.vms ? { vms: o.vms } : {}),
          ...(o.allowMigrate ? { allowMigrate: true } : {}),
          ...(role === 'probe' ? { probe: { name: o.name ?? role, site: o.site ?? 'dc1' } } : {}),
        })
      ).token,
    cli: (args) => {
      const r = spawnSync('node', ['bin/keizokud.mjs', ...args, '--config', configFile], {
        encoding: 'utf8',
      });
      return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    },
    request,
    alive: () => child.exitCode === null && child.signalCode === null,
    kill,
    restart: async (o = {}) => {
      await kill();
      restartedAt = out.length;
      spawnDaemon();
      if (o.wait !== false) await waitUp(restartedAt);
    },
    waitUp: () => waitUp(restartedAt),
    stop: async () => {
      // keizokud's own drain gives up after 25 s; a daemon still alive well after that hangs
      // on shutdown, which is a failure of its own (killed, so the run goes on).
      let timer: NodeJS.Timeout | undefined;
      const hung = await Promise.race([
        kill('SIGTERM').then(() => false),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(true), 40_000);
        }),
      ]);
      clearTimeout(timer);
      if (hung) await kill('SIGKILL');
      // artifacts/keizokud/ keeps each daemon's log, for a failure that needs reading later.
      mkdirSync('artifacts/keizokud', { recursive: true });
      writeFileSync(join('artifacts/keizokud', `${basename(dir)}.log`), out);
      redis.disconnect();
      rmSync(dir, { recursive: true, force: true });
      if (hung) throw new Error(`keizokud did not exit within 40 s of SIGTERM:\n${out.slice(-2000)}`);
    },
  };
  // Up when keizokud is ready (loops started) and the inventory has seen every host.
  async function waitUp(from: number): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`keizokud exited early:\n${out}`);
      const up = await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      const connected = out.slice(from).match(/"msg":"connected to libvirt"/g)?.length ?? 0;
      if (up && connected >= lab.layout.hosts.length) return;
      if (Date.now() > deadline) {
        await kill();
        throw new Error(`keizokud did not come up in 30 s:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await waitUp(0);
  const doc = await fetch(`${url}/v1/openapi.json`);
  if (!doc.ok) throw new Error(`GET /v1/openapi.json answered ${doc.status}`);
  contract = new Contract(await doc.json());
  return running;
}
