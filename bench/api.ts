// bench:api — requests/s and latency of GET /v1/vms under autocannon load on loopback, through
// keizoku's real read path (an InventoryLoop over synthetic hosts, its snapshot and addresses,
// the PolicyBook, authentication, role filter, rate limiter, schema serialisation): with 500 VMs
// for an admin and for a vm-admin, beside a bare Fastify route serving the same document ready
// made; and one request at a time with 20,000 VMs (the list's own cost, not the queueing of 16
// connections). Each server runs in its own process. Prints one JSON object on the last line.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { startRedis } from '../test/support/redis.ts';

const VMS = Number(process.env.BENCH_VMS ?? 500);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const LIST_VMS = Number(process.env.BENCH_LIST_VMS ?? 20_000);
const LIST_REQUESTS = Number(process.env.BENCH_LIST_REQUESTS ?? 40);

async function server(
  redisUrl: string,
  bare: boolean,
  vms = VMS,
): Promise<{ child: ChildProcess; info: { port: number; admin?: string; vmAdmin?: string } }> {
  const child = spawn(
    'node',
    ['--import', 'tsx', 'bench/api-server.ts', redisUrl, String(vms), ...(bare ? ['--bare'] : [])],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (c) => reject(new Error(`bench server exited ${c}`)));
  });
  return { child, info: JSON.parse(line) };
}

async function load(port: number, token?: string, one?: { requests: number }) {
  const r = await autocannon({
    url: `http://127.0.0.1:${port}/v1/vms`,
    ...(one
      ? { connections: 1, amount: one.requests, timeout: 600 }
      : { connections: CONNECTIONS, duration: SECONDS }),
    ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
  });
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${r.non2xx} non-2xx, ${r.errors} errors`);
  return {
    rps: Math.round(r.requests.average),
    p50: r.latency.p50,
    p99: r.latency.p99,
    kib: Math.round(r.throughput.total / 1024 / Math.max(1, r.requests.total)),
  };
}

const redis = await startRedis();
const children: ChildProcess[] = [];
try {
  const api = await server(redis.url, false);
  children.push(api.child);
  const bare = await server(redis.url, true);
  children.push(bare.child);
  // Warm-up, then the measured runs, alternating.
  await load(api.info.port, api.info.admin);
  const admin = await load(api.info.port, api.info.admin);
  const baseline = await load(bare.info.port);
  const vmAdmin = await load(api.info.port, api.info.vmAdmin);
  for (const c of children.splice(0)) c.kill('SIGTERM');
  const big = await server(redis.url, false, LIST_VMS);
  children.push(big.child);
  await load(big.info.port, big.info.admin, { requests: 2 });
  const list = await load(big.info.port, big.info.admin, { requests: LIST_REQUESTS });
  const result = {
    vms: VMS,
    seconds_per_run: SECONDS,
    connections: CONNECTIONS,
    admin_rps: admin.rps,
    admin_latency_p50_ms: admin.p50,
    admin_latency_p99_ms: admin.p99,
    response_kib: admin.kib,
    vm_admin_rps: vmAdmin.rps,
    vm_admin_latency_p99_ms: vmAdmin.p99,
    bare_fastify_rps: baseline.rps,
    bare_fastify_latency_p99_ms: baseline.p99,
    ratio_rps_vs_bare: Number((admin.rps / baseline.rps).toFixed(3)),
    vm_list_vms: LIST_VMS,
    vm_list_requests: LIST_REQUESTS,
    vm_list_20k_p50_ms: list.p50,
    vm_list_20k_p99_ms: list.p99,
    vm_list_20k_response_kib: list.kib,
  };
  console.log(JSON.stringify(result));
} finally {
  for (const c of children) c.kill('SIGTERM');
  await redis.stop();
}
