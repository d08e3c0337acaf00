import { describe, expect, it } from 'vitest';
import { type Action, decide, type Principal, type Role } from '../../../src/api/auth/rbac.ts';
import { redact } from '../../../src/store/audit.ts';

const p = (role: Role, vms: string[] = [], allowMigrate = false): Principal => ({
  id: 'x',
  name: 'x',
  role,
  vms,
  allowMigrate,
});

describe('decide', () => {
  it('scopes a vm-admin to its VMs by name or glob, hiding the others', () => {
    const owner = p('vm-admin', ['tax-*', 'web1']);
    expect(decide(owner, 'vm.start', 'tax-01')).toBe('allow');
    expect(decide(owner, 'vm.shutdown', 'web1')).toBe('allow');
    expect(decide(owner, 'vm.start', 'web10')).toBe('hide');
    expect(decide(owner, 'vm.read', 'db1')).toBe('hide');
    expect(decide(owner, 'vm.destroy', 'web1')).toBe('deny');
    expect(decide(owner, 'vm.policy', 'web1')).toBe('deny');
    expect(decide(owner, 'host.read')).toBe('deny');
    expect(decide(owner, 'audit.read')).toBe('deny');
  });

  it('lets a vm-admin migrate only when its token allows it', () => {
    expect(decide(p('vm-admin', ['web1']), 'vm.migrate', 'web1')).toBe('deny');
    expect(decide(p('vm-admin', ['web1'], true), 'vm.migrate', 'web1')).toBe('allow');
    expect(decide(p('vm-admin', ['web1'], true), 'vm.migrate', 'web2')).toBe('hide');
  });

  it("lets whoever reads jobs read decisions, a vm-admin its VMs' only", () => {
    for (const role of ['admin', 'operator', 'viewer'] as const)
      expect(decide(p(role), 'decision.read', 'db1')).toBe('allow');
    expect(decide(p('vm-admin', ['web*']), 'decision.read', 'web1')).toBe('allow');
    expect(decide(p('vm-admin', ['web*']), 'decision.read', 'db1')).toBe('hide');
    // By id: the route shows only the vm-admin's parts, or the same 404 as for a missing one.
    expect(decide(p('vm-admin', ['web*']), 'decision.read')).toBe('allow');
    expect(decide(p('probe'), 'decision.read', 'web1')).toBe('deny');
  });

  it('lets admins and operators pause and resume failover, viewers read it and plan what-ifs, no one else', () => {
    for (const role of ['admin', 'operator'] as const)
      for (const a of ['ha.read', 'ha.pause', 'ha.resume'] as Action[])
        expect(decide(p(role), a)).toBe('allow');
    expect(decide(p('viewer'), 'ha.read')).toBe('allow');
    for (const role of ['viewer', 'vm-admin', 'probe'] as const)
      for (const a of ['ha.pause', 'ha.resume'] as Action[]) expect(decide(p(role, ['*']), a)).toBe('deny');
    expect(decide(p('vm-admin', ['*']), 'ha.read')).toBe('deny');
    expect(decide(p('probe'), 'ha.read')).toBe('deny');
  });

  it('keeps viewers to reads, operators off the audit log, probes to their reports', () => {
    const reads: Action[] = ['host.read', 'vm.read', 'job.read', 'drill.read', 'recommendation.read'];
    for (const a of reads) expect(decide(p('viewer'), a, 'vm1')).toBe('allow');
    for (const a of ['vm.start', 'vm.migrate', 'job.cancel', 'drill.run', 'audit.read'] as Action[])
      expect(decide(p('viewer'), a, 'vm1')).toBe('deny');
    expect(decide(p('operator'), 'vm.migrate', 'vm1')).toBe('allow');
    expect(decide(p('operator'), 'host.maintenance')).toBe('allow');
    expect(decide(p('operator'), 'audit.read')).toBe('deny');
    expect(decide(p('probe'), 'probe.report')).toBe('allow');
    expect(decide(p('probe'), 'vm.read')).toBe('allow');
    expect(decide(p('probe'), 'vm.start', 'vm1')).toBe('deny');
    expect(decide(p('admin'), 'audit.read')).toBe('allow');
  });

  it('lets operators and admins apply a DRS recommendation, nobody else', () => {
    expect(decide(p('admin'), 'recommendation.apply')).toBe('allow');
    expect(decide(p('operator'), 'recommendation.apply')).toBe('allow');
    for (const role of ['viewer', 'probe', 'vm-admin'] as const)
      expect(decide(p(role, ['web*'], true), 'recommendation.apply')).toBe('deny');
  });
});

describe('redact', () => {
  it('replaces values of secret-looking keys at any depth and keeps the rest', () => {
    expect(
      redact({
        tier: 'low',
        token: 'kz_1',
        nested: [{ password: 'p', keyFile: '/k', name: 'n' }],
        apiKey: 1,
      }),
    ).toEqual({
      tier: 'low',
      token: '[redacted]',
      nested: [{ password: '[redacted]', keyFile: '[redacted]', name: 'n' }],
      apiKey: '[redacted]',
    });
  });

  it('bounds long strings, long lists and deep nesting', () => {
    expect((redact('x'.repeat(5000)) as string).length).toBe(1001);
    expect((redact(Array.from({ length: 500 }, () => 1)) as unknown[]).length).toBe(100);
    let deep: unknown = 'leaf';
    for (let i = 0; i < 20; i++) deep = { d: deep };
    expect(JSON.stringify(redact(deep))).toContain('[too deep]');
  });
});
