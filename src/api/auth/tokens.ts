import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { redisKeys } from '../../store/keys.ts';
import { type Principal, ROLES, type Role } from './rbac.ts';

/**
 * API tokens: `kz_<id>_<secret>`. Only a SHA-256 of the whole token is stored (the secret is
 * 32 random bytes, so a fast hash is enough); the token itself is shown once, at creation.
 * Records are kept in one hash (`tokens` in store/keys.ts).
 */

const recordSchema = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  vms: z.array(z.string()),
  allowMigrate: z.boolean(),
  /** probe tokens: the one agent (name and site) the token speaks for. */
  probe: z.object({ name: z.string(), site: z.string() }).optional(),
  sha256: z.string(),
  createdAt: z.number(),
  revokedAt: z.number().nullable(),
});
export type TokenRecord = z.infer<typeof recordSchema>;
export type TokenInfo = Omit<TokenRecord, 'sha256'>;

/** The agent and site names a probe token is bound to (as the API's NAME_PATTERN). */
const PROBE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const TOKEN_RE = /^kz_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export class TokenError extends Error {
  override name = 'TokenError';
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

export class TokenStore {
  private readonly key: string;
  /** Verified tokens, briefly, so that a burst of requests does not read Redis each time. */
  private readonly cache = new Map<string, { principal: Principal | null; until: number }>();

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly cacheMs = 2_000,
  ) {
    this.key = redisKeys(prefix).tokens;
  }

  async create(o: {
    name: string;
    role: Role;
    vms?: string[];
    allowMigrate?: boolean;
    probe?: { name: string; site: string };
  }): Promise<{
    token: string;
    info: TokenInfo;
  }> {
    if (o.role === 'vm-admin' && (o.vms ?? []).length === 0)
      throw new TokenError('a vm-admin token needs the VMs it administers (--vms)');
    if (o.role !== 'vm-admin' && ((o.vms ?? []).length > 0 || o.allowMigrate))
      throw new TokenError(`--vms and --allow-migrate apply to vm-admin tokens only, not ${o.role}`);
    if (o.role === 'probe') {
      if (!o.probe) throw new TokenError('a probe token needs the agent it is for (--probe-name and --site)');
      for (const [flag, v] of [
        ['--probe-name', o.probe.name],
        ['--site', o.probe.site],
      ] as const)
        if (!PROBE_NAME_RE.test(v))
          throw new TokenError(`${flag}: expected 1-64 letters, digits, ".", "_" or "-", got "${v}"`);
    } else if (o.probe)
      throw new TokenError(`--probe-name and --site apply to probe tokens only, not ${o.role}`);
    const id = randomBytes(6).toString('hex');
    const token = `kz_${id}_${randomBytes(32).toString('base64url')}`;
    const record: TokenRecord = {
      id,
      name: o.name,
      role: o.role,
      vms: o.vms ?? [],
      allowMigrate: o.allowMigrate ?? false,
      ...(o.probe ? { probe: { name: o.probe.name, site: o.probe.site } } : {}),
      sha256: sha256(token).toString('hex'),
      createdAt: Date.now(),
      revokedAt: null,
    };
    await this.redis.hset(this.key, id, JSON.stringify(record));
    return { token, info: strip(record) };
  }

  async list(): Promise<TokenInfo[]> {
    const all = await this.redis.hgetall(this.key);
    return Object.values(all)
      .map((raw) => recordSchema.safeParse(JSON.parse(raw)))
      .filter((r) => r.success)
      .map((r) => strip(r.data))
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  async revoke(id: string): Promise<TokenInfo> {
    const record = await this.read(id);
    if (record === null) throw new TokenError(`no token with id "${id}" (see keizokud token list)`);
    if (record.revokedAt === null) {
      record.revokedAt = Date.now();
      await this.redis.hset(this.key, id, JSON.stringify(record));
    }
    this.cache.clear();
    return strip(record);
  }

  /** The principal of a presented token, or null for an unknown, revoked or malformed one. */
  async verify(token: string, now = Date.now()): Promise<Principal | null> {
    const cached = this.cache.get(token);
    if (cached && cached.until > now) return cached.principal;
    const principal = await this.lookup(token);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(token, { principal, until: now + this.cacheMs });
    return principal;
  }

  private async lookup(token: string): Promise<Principal | null> {
    const m = TOKEN_RE.exec(token);
    if (!m) return null;
    const record = await this.read(m[1]!);
    if (record === null || record.revokedAt !== null) return null;
    const want = Buffer.from(record.sha256, 'hex');
    const got = sha256(token);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return null;
    return {
      id: record.id,
      name: record.name,
      role: record.role,
      vms: record.vms,
      allowMigrate: record.allowMigrate,
      ...(record.probe ? { probe: record.probe } : {}),
    };
  }

  private async read(id: string): Promise<TokenRecord | null> {
    const raw = await this.redis.hget(this.key, id);
    if (raw === null) return null;
    const r = recordSchema.safeParse(JSON.parse(raw));
    return r.success ? r.data : null;
  }
}

function strip(r: TokenRecord): TokenInfo {
  const { sha256: _, ...info } = r;
  return info;
}
