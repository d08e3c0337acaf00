import type { Principal, Role } from '../../../src/api/auth/rbac.ts';
import { createApi } from '../../../src/api/server.ts';
import type { AuditInput } from '../../../src/store/audit.ts';

/** Fakes for the API frame: tokens named after their role, an audit sink that records or fails. */

export const principal = (role: Role, vms: string[] = [], allowMigrate = false): Principal => ({
  id: `id-${role}`,
  name: role,
  role,
  vms,
  allowMigrate,
});

/** Tokens: `Bearer <key>` for each key of the map; anything else is unknown. */
export function fakeTokens(byToken: Record<string, Principal>) {
  return {
    verify: async (token: string): Promise<Principal | null> => byToken[token] ?? null,
  };
}

export const TOKENS = {
  admin: principal('admin'),
  operator: principal('operator'),
  viewer: principal('viewer'),
  probe: principal('probe'),
  owner: principal('vm-admin', ['vm1'], true),
  ownerNoMigrate: principal('vm-admin', ['vm1'], false),
};

export const bearer = (t: keyof typeof TOKENS | string) => ({ authorization: `Bearer ${t}` });

/** Every record() call in order; `fail` decides which calls throw (like a full disk). */
export function fakeAudit(fail: (input: AuditInput) => Error | null = () => null) {
  const calls: AuditInput[] = [];
  const written: AuditInput[] = [];
  return {
    calls,
    written,
    record: async (input: AuditInput) => {
      calls.push(input);
      const e = fail(input);
      if (e) throw e;
      written.push(input);
      return { ...input, time: '', status: null, message: null, requestId: null, remote: null, role: null };
    },
  };
}

export async function api(o: { audit?: ReturnType<typeof fakeAudit>; rateLimitPerMinute?: number } = {}) {
  const audit = o.audit ?? fakeAudit();
  const app = await createApi({
    tokens: fakeTokens(TOKENS) as never,
    audit: audit as never,
    bodyLimitBytes: 65_536,
    rateLimitPerMinute: o.rateLimitPerMinute ?? 1_000,
  });
  return { app, audit };
}
