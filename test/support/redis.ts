import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../lab/index.ts';
import { recordChild } from './process.ts';

/** One redis-server process of the test's own (a data node or a sentinel), known by its pid. */
interface RedisProcess {
  port: number;
  pid: number;
  /** SIGKILL by pid (idempotent); resolves once it has exited. */
  kill(): Promise<void>;
  alive(): boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Spawns `redis-server ARGS` in `dir` on `port` and waits until it answers PING; killed (and
 * awaited) if it does not.
 */
async function spawnRedis(args: string[], port: number): Promise<RedisProcess> {
  const child: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' });
  recordChild(child.pid, 'redis-server');
  const exited = new Promise((r) => child.once('exit', r));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const proc: RedisProcess = {
    port,
    pid: child.pid ?? -1,
    alive,
    kill: async () => {
      if (alive()) process.kill(child.pid!, 'SIGKILL');
      await exited;
    },
  };
  const probe = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => undefined); // refused until the server listens: retried below
  try {
    for (let i = 0; ; i++) {
      try {
        if (!alive()) throw new Error(`redis-server ${args.join(' ')} exited at start`);
        await probe.connect();
        await probe.ping();
        break;
      } catch (e) {
        if (i > 50 || !alive()) throw e;
        probe.disconnect();
        await sleep(100);
      }
    }
  } catch (e) {
    await proc.kill();
    throw e;
  } finally {
    probe.disconnect();
  }
  return proc;
}

/** Arguments of a data node without persistence on a loopback port. */
function dataNode(port: number, dir: string): string[] {
  return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
}

/** A real redis-server of the test's own on a free loopback port, stopped by its pid. */
export async function startRedis(): Promise<{ url: string; port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'kz-redis-'));
  const node = await spawnRedis(dataNode(port, dir), port).catch((e) => {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  });
  const stop = async () => {
    await node.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  return { url: `redis://127.0.0.1:${port}/0`, port, stop };
}

export interface SentinelGroup {
  /** The `redis` section of a keizokud config for this group (also a RedisTarget). */
  target: { url: string; sentinels: string[]; sentinelName: string };
  /** What the sentinels were told: a primary is down after this long without an answer. */
  downAfterMs: number;
  /** The data nodes (primary first, as started) and the three sentinels. */
  nodes: RedisProcess[];
  sentinels: RedisProcess[];
  /** The port of the primary the sentinels name now. */
  primaryPort(): Promise<number>;
  /** kill -9 of the current primary, by pid; the time it was sent (performance.now()). */
  killPrimary(): Promise<{ port: number; pid: number; at: number }>;
  /** Resolves with the new primary's port once every sentinel names a primary other than `port`. */
  awaitPromotion(port: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

const NAME = 'keizoku';

/**
 * A Redis primary, one replica and three sentinels (redis-server --sentinel) on free loopback
 * ports, each process known by its pid and killed by it in stop(); everything started is torn
 * down if the group does not come up. Resolves once all three sentinels agree on the primary,
 * know the replica and each other, and have a quorum (SENTINEL CKQUORUM).
 */
export async function startSentinelGroup(o: { downAfterMs?: number } = {}): Promise<SentinelGroup> {
  const downAfterMs = o.downAfterMs ?? 1_000;
  const dir = mkdtempSync(join(tmpdir(), 'kz-sentinel-'));
  const started: RedisProcess[] = [];
  const clients: Redis[] = [];
  const stop = async () => {
    for (const c of clients) c.disconnect();
    for (const p of started) await p.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  const client = (port: number) => {
    const c = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1, retryStrategy: () => 200 });
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  };
  try {
    const primaryPort = await freePort();
    const replicaPort = await freePort();
    const primary = await spawnRedis(dataNode(primaryPort, dir), primaryPort);
    started.push(primary);
    // Its own file name in the shared directory: a full resync writes the primary's data there.
    const replica = await spawnRedis(
      [
        ...dataNode(replicaPort, dir),
        ...['--dbfilename', 'replica.rdb', '--replicaof', '127.0.0.1', String(primaryPort)],
      ],
      replicaPort,
    );
    started.push(replica);
    const sentinels: RedisProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${i}.conf`);
      // Sentinel rewrites its config file (what it learns); each has its own.
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${NAME} 127.0.0.1 ${primaryPort} 2`,
          `sentinel down-after-milliseconds ${NAME} ${downAfterMs}`,
          `sentinel failover-timeout ${NAME} 10000`,
          `sentinel parallel-syncs ${NAME} 1`,
          '',
        ].join('\n'),
      );
      const s = await spawnRedis([conf, '--sentinel'], port);
      started.push(s);
      sentinels.push(s);
    }
    const sentinelClients = sentinels.map((s) => client(s.port));
    const named = async (c: Redis) => {
      const r = (await c.call('SENTINEL', 'get-master-addr-by-name', NAME).catch(() => null)) as
        | string[]
        | null;
      return r ? Number(r[1]) : null;
    };
    // Ready: each sentinel has quorum, sees the other two and the replica (hello messages
    // every 2 s spread this), and the replica's link is up.
    const replicaClient = client(replicaPort);
    for (let i = 0; ; i++) {
      const views = await Promise.all(
        sentinelClients.map(async (c) => {
          const quorum = await c.call('SENTINEL', 'ckquorum', NAME).catch(() => null);
          const others = ((await c.call('SENTINEL', 'sentinels', NAME).catch(() => [])) as unknown[]).length;
          const replicas = ((await c.call('SENTINEL', 'replicas', NAME).catch(() => [])) as unknown[]).length;
          return typeof quorum === 'string' && quorum.startsWith('OK') && others === 2 && replicas === 1;
        }),
      );
      const link = /master_link_status:up/.test(await replicaClient.info('replication').catch(() => ''));
      if (views.every(Boolean) && link) break;
      if (i > 150) throw new Error('the sentinels did not agree on the primary and its replica within 30 s');
      await sleep(200);
    }
    const primaryPortNow = async () => {
      for (const c of sentinelClients) {
        const p = await named(c);
        if (p !== null) return p;
      }
      throw new Error('no sentinel answers');
    };
    const nodes = [primary, replica];
    return {
      target: {
        url: `redis://127.0.0.1:${primaryPort}/0`,
        sentinels: sentinels.map((s) => `127.0.0.1:${s.port}`),
        sentinelName: NAME,
      },
      downAfterMs,
      nodes,
      sentinels,
      primaryPort: primaryPortNow,
      killPrimary: async () => {
        const port = await primaryPortNow();
        const node = nodes.find((n) => n.port === port);
        if (!node) throw new Error(`the sentinels name ${port}, not a node of this group`);
        const at = performance.now();
        await node.kill();
        return { port, pid: node.pid, at };
      },
      awaitPromotion: async (port, timeoutMs = 30_000) => {
        const deadline = performance.now() + timeoutMs;
        for (;;) {
          const seen = await Promise.all(sentinelClients.map(named));
          const next = seen[0];
          if (next != null && next !== port && seen.every((p) => p === next)) return next;
          if (performance.now() > deadline)
            throw new Error(`the sentinels still name ${seen.join(', ')} ${timeoutMs} ms on`);
          await sleep(50);
        }
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
