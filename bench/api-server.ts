// The API of bench:api in its own process: keizokud's real routes, auth, rate limits and audit
// over a real Redis, with a cluster snapshot of N synthetic VMs in place of libvirt's. Prints
// {"port":…,"admin":…,"vmAdmin":…} once listening. With --bare, a plain Fastify route that
// returns the same document without authentication: the baseline the API is compared with.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { buildApi, TokenStore } from '../src/api/index.ts';
import { vmView } from '../src/api/routes/vms.ts';
import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../src/core/model.ts';
import { AuditLog } from '../src/store/audit.ts';
import type { LeaderLease } from '../src/store/lease.ts';
import { Store } from '../src/store/store.ts';

const [redisUrl, vmCount, mode] = [process.argv[2]!, Number(process.argv[3]), process.argv[4]];
const PREFIX = 'keizoku:bench:';

function snapshot(n: number): ClusterSnapshot {
  const hosts = new Map<string, HostSnapshot>();
  const vms = new Map<string, VmSnapshot>();
  for (let h = 0; h < 20; h++)
    hosts.set(`h${h}`, {
      name: `h${h}`,
      site: h < 10 ? 'dc1' : 'dc2',
      health: 'up',
      cpus: 64,
      memoryKiB: 512 * 1024 * 1024,
      cpuUtilisation: 0.3,
      memoryUsedKiB: 200 * 1024 * 1024,
      maintenance: false,
      observedAt: Date.now(),
      vms: [],
    });
  for (let i = 0; i < n; i++) {
    const name = `vm-${String(i).padStart(4, '0')}`;
    (hosts.get(`h${i % 20}`)!.vms as string[]).push(name);
    vms.set(name, {
      name,
      uuid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      host: `h${i % 20}`,
      state: 'running',
      vcpus: 2,
      memoryKiB: 4 * 1024 * 1024,
      cpuUsage: 0.25,
      memoryUsedKiB: 2 * 1024 * 1024,
    });
  }
  return { takenAt: Date.now(), sites: ['dc1', 'dc2'], hosts, vms };
}

const snap = snapshot(vmCount);
const redis = new Redis(redisUrl);
const deps = {
  snapshot: () => snap,
  clientFor: () => null,
  policyOf: () => ({
    tier: 'frontend',
    limits: 'standard',
    haPriority: 500,
    homeSite: null,
    source: 'config' as const,
  }),
  setPolicy: async () => undefined,
  addressesOf: (vm: string) => [`10.9.${Number(vm.slice(3)) >> 8}.${Number(vm.slice(3)) & 255}`],
  tierIds: ['frontend'],
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
  const app = Fastify();
  app.get('/v1/vms', async () => ({ vms: [...snap.vms.values()].map((vm) => vmView(deps, vm)) }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`);
} else {
  const tokens = new TokenStore(redis, PREFIX);
  const admin = (await tokens.create({ name: 'bench-admin', role: 'admin' })).token;
  const vmAdmin = (await tokens.create({ name: 'bench-owner', role: 'vm-admin', vms: ['vm-00*'] })).token;
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
