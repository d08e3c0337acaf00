import { globToRegExp } from '../../config/index.ts';

/**
 * Who may do what (standard spec 4.3, table 4-4: a system administrator with every right and
 * a VM administrator per VM; plus an operator and a read-only viewer). Pure: a decision from
 * the token's role and scope and the action, no I/O.
 */

export const ROLES = ['admin', 'operator', 'vm-admin', 'viewer', 'probe'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  /** Token id, or `controller` for keizokud's own actions. */
  id: string;
  name: string;
  role: Role;
  /** vm-admin only: the VM names or globs it administers. */
  vms: readonly string[];
  /** vm-admin only: whether it may migrate its VMs. */
  allowMigrate: boolean;
  /** probe only: the agent the token speaks for; the API takes its name and site from here. */
  probe?: { name: string; site: string };
}

/** What a route does, named `resource.verb`. */
export type Action =
  | 'host.read'
  | 'host.maintenance'
  /** Record that a lost host is powered off (its VMs may then restart elsewhere). */
  | 'host.confirm-off'
  | 'vm.read'
  | 'vm.start'
  | 'vm.shutdown'
  | 'vm.destroy'
  | 'vm.migrate'
  | 'vm.policy'
  | 'job.read'
  | 'job.cancel'
  | 'decision.read'
  | 'drill.read'
  | 'drill.run'
  | 'audit.read'
  | 'probe.report'
  | 'recommendation.read'
  /** Run a move DRS recommends (operators and admins). */
  | 'recommendation.apply'
  /** Automatic failover's state and what-if plans. */
  | 'ha.read'
  /** Pause automatic failover, and end the pause (operators and admins). */
  | 'ha.pause'
  | 'ha.resume'
  /** Clear a VM from failover's `error` state: it is restarted (operators and admins). */
  | 'ha.clear'
  /** Prometheus /metrics on the API listener: it names every VM and host. */
  | 'metrics.read';

const READ: ReadonlySet<Action> = new Set([
  'host.read',
  'vm.read',
  'job.read',
  'decision.read',
  'drill.read',
  'recommendation.read',
  'ha.read',
  'metrics.read',
]);

/**
 * `allow`; `deny` (403: the principal may know the target exists); `hide` (404: a vm-admin
 * asking about a VM outside its scope, so that names do not leak).
 */
export type Decision = 'allow' | 'deny' | 'hide';

export function decide(p: Principal, action: Action, vm?: string): Decision {
  switch (p.role) {
    case 'admin':
      return 'allow';
    case 'operator':
      // Everything on hosts, VMs, jobs and drills; tokens and config are admin-only, and the
      // audit log is for the administrators who review it.
      return action === 'audit.read' || action === 'probe.report' ? 'deny' : 'allow';
    case 'viewer':
      return READ.has(action) ? 'allow' : 'deny';
    case 'probe':
      return action === 'vm.read' || action === 'probe.report' ? 'allow' : 'deny';
    case 'vm-admin': {
      if (vm === undefined) {
        // Lists (and a decision by id) are filtered to the scope; host and cluster-wide
        // actions are not theirs.
        return action === 'vm.read' || action === 'job.read' || action === 'decision.read' ? 'allow' : 'deny';
      }
      if (!inScope(p, vm)) return 'hide';
      return onOwnVm(p, action);
    }
  }
}

/** A vm-admin's rights on a VM of its scope. */
function onOwnVm(p: Principal, action: Action): Decision {
  if (action === 'vm.read' || action === 'vm.start' || action === 'vm.shutdown') return 'allow';
  if (action === 'job.read' || action === 'job.cancel' || action === 'decision.read') return 'allow';
  if (action === 'vm.migrate') return p.allowMigrate ? 'allow' : 'deny';
  return 'deny';
}

/**
 * Whether the principal may do `action` on at least one VM: the check before a route has found
 * its VM (a job's, say), which then calls decide() with it.
 */
export function mayOnSomeVm(p: Principal, action: Action): boolean {
  if (p.role !== 'vm-admin') return decide(p, action) === 'allow';
  return p.vms.length > 0 && onOwnVm(p, action) === 'allow';
}

export function inScope(p: Principal, vm: string): boolean {
  return scopeMatcher(p)(vm);
}

/** inScope for many VMs: the principal's patterns compiled once. */
export function scopeMatcher(p: Principal): (vm: string) => boolean {
  if (p.role !== 'vm-admin') return () => true;
  const patterns = p.vms.map(globToRegExp);
  return (vm) => patterns.some((re) => re.test(vm));
}
