// The API of bench:api in its own process: keizokud's real routes, auth, rate limits and audit
// over a real Redis, and the real read path behind GET /v1/vms: an InventoryLoop whose hosts
// answer N synthetic domains (bulk stats and address metadata, as libvirt gives them), read by
// its own passes, so every request pays for InventoryLoop.snapshot() (buildSnapshot),
// addressesOf and the PolicyBook as keizokud does. Prints {"port":…,"admin":…,"vmAdmin":…}
// once listening. With --bare, a plain Fastify route that returns the same document without
// authentication: the baseline the API is compared with.
import { EventEmitter } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { buildApi, TokenStore } from '../src/api/index.ts';
import { vmView } from '../src/api/routes/vms.ts';
import type { LibvirtClient } from '../src/libvirt/index.ts';
import { InventoryLoop } from '../src/loops/inventory.ts';
import { createMetrics } from '../src/metrics/registry.ts';
import { AuditLog } from '../src/store/audit.ts';
import type { LeaderLease } from '../src/store/lease.ts';
import { PolicyBook } from '../src/store/policy-book.ts';
import { Store } from '../src/store/store.ts';

const [redisUrl, vmCount, mode] = [process.argv[2]!, Number(process.argv[3]), process.argv[4]];
const PREFIX = 'keizoku:bench:';
const HOSTS = 20;
const T0 = Date.now();

/** What InventoryLoop reads from one host, answered from memory: N/HOSTS running domains. */
function fakeHost(h: number, n: number, reads: { count: number }) {
  const doms: { name: string; uuid: string; i: number }[] = [];
  for (let i = h; i < n; i += HOSTS)
    doms.push({
      name: `vm-${String(i).padStart(5, '0')}`,
      uuid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      i,
    });
  const byName = new Map(doms.map((d) => [d.name, d]));
  return Object.assign(new EventEmitter(), {
    channel: new EventEmitter(),
    subscribeDomainEvents: async () => undefined,
    close: async () => undefined,
    nodeInfo: async () =>
      ({ cpus: 64, memoryKiB: 512 * 1024 * 1024 }) as Awaited<ReturnType<LibvirtClient['nodeInfo']>>,
    nodeCpuStats: async () => {
      reads.count++;
      return { user: reads.count * 3e9, kernel: reads.count * 1e9, idle: reads.count * 12e9, iowait: 0 };
    },
    nodeMemoryStats: async () => ({
      total: 512 * 1024 * 1024,
      free: 300 * 1024 * 1024,
      buffers: 1024,
      cached: 4096,
    }),
    getAllDomainStats: async () =>
      doms.map((d) => ({
        name: d.name,
        uuid: d.uuid,
        id: d.i + 1,
        stats: {
          'state.state': 1,
          // A quarter of a vCPU busy, by the clock the inventory stamps its observations with.
          'cpu.time': (Date.now() - T0) * 0.25e6,
          'vcpu.current': 2,
          'balloon.maximum': 4 * 1024 * 1024,
          'balloon.current': 4 * 1024 * 1024,
          'balloon.available': 4 * 1024 * 1024,
          'balloon.unused': 2 * 1024 * 1024,
        },
      })),
    getMetadataElement: async (dom: { name: string }) => {
      const i = byName.get(dom.name)!.i;
      return `<kz:vm xmlns:kz="urn:keizoku:vm:1"><kz:address>10.9.${i >> 8}.${i & 255}</kz:address></kz:vm>`;
    },
  });
}

const metrics = createMetrics();
const quiet = { info: () => undefined, warn: () => undefined };
const inventory = new InventoryLoop({
  hosts: Array.from({ length: HOSTS }, (_, h) => ({
    name: `h${h}`,
    site: h < HOSTS / 2 ? 'dc1' : 'dc2',
    uri: `test:///h${h}`,
  })),
  sites: ['dc1', 'dc2'],
  connectOptions: () => ({}),
  intervalMs: 3_600_000,
  metrics,
  log: quiet,
  // Each host's connection answers from memory (the seam InventoryLoop's own tests use).
  connect: async (uri) =>
    fakeHost(Number(uri.slice('test:///h'.length)), vmCount, { count: 0 }) as unknown as LibvirtClient,
});
// Two passes: CPU usage and utilisation need a previous observation.
await inventory.pass(Date.now());
await new Promise((r) => setTimeout(r, 100));
await inventory.pass(Date.now());
if (inventory.snapshot().vms.size !== vmCount) throw new Error('the inventory did not read every VM');

const redis = new Redis(redisUrl);
const policies = new PolicyBook(redis, PREFIX, [
  { match: { name: 'vm-0000*' }, tier: 'backend', limits: 'standard', haPriority: 900 },
  { match: { name: 'vm-*' }, tier: 'frontend', limits: 'standard', haPriority: 500 },
]);
await policies.refresh();
const deps = {
  snapshot: () => inventory.snapshot(),
  clientFor: () => null,
  policyOf: (vm: string) => policies.policyOf(vm),
  setPolicy: async () => undefined,
  addressesOf: (vm: string) => inventory.addressesOf(vm),
  tierIds: ['frontend', 'backend'],
  limitsProfiles: ['standard'],
  store: new Store(redis, PREFIX, { isLeader: false } as unknown as LeaderLease),
  audit: new AuditLog(redis, PREFIX, {
    dir: mkdtempSync(join(tmpdir(), 'bench-audit-')),
    retentionDays: 1,
    streamMaxEntries: 10_000,
    timeZone: 'Asia/Tokyo',
  }),
  redis,
  prefix: PREFIX,
};

if (mode === '--bare') {
  // The same document, computed once: what serving it costs without keizoku's read path.
  const snap = deps.snapshot();
  const doc = { vms: [...snap.vms.values()].map((vm) => vmView(deps, snap, vm)) };
  const app = Fastify();
  app.get('/v1/vms', async () => doc);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`);
} else {
  const tokens = new TokenStore(redis, PREFIX);
  const admin = (await tokens.create({ name: 'bench-admin', role: 'admin' })).token;
  const vmAdmin = (await tokens.create({ name: 'bench-owner', role: 'vm-admin', vms: ['vm-000*'] })).token;
  const app = await buildApi(
    {
      listen: '127.0.0.1:0',
      allowPlainHttp: false,
      bodyLimitBytes: 65_536,
      rateLimitPerMinute: 10_000_000,
      vmAdminMigrationPolicy: { maxTimeoutMs: 300_000, minBandwidthMiBs: 100, allowPostCopy: false },
    },
    tokens,
    deps,
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ port: addr.port, admin, vmAdmin })}\n`);
}
