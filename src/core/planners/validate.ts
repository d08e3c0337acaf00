import type { ClusterSnapshot } from '../model.ts';
import type { Action } from '../plan.ts';
import { restartRefusals } from './restart.ts';

/**
 * What `submit` checks of each action of a decision against a fresh snapshot, just before the
 * locks are taken (the decision may have been made on an older one). Pure. The executors check
 * again right before acting.
 */

export const SUPPORTED_KINDS = new Set([
  'migrate',
  'start',
  'shutdown',
  'destroy',
  'define',
  'undefine',
  'restart-elsewhere',
  'raise-cpu-cap',
  'start-mirror',
  'restart-from-replica',
]);

export function actionRefusals(snap: ClusterSnapshot, a: Action): string[] {
  if (!SUPPORTED_KINDS.has(a.kind)) return [`${a.kind} actions are not supported yet`];
  if (a.kind === 'fence') return [];
  if (a.kind === 'restart-elsewhere') return restartRefusals(snap, a);
  if (a.kind === 'restart-from-replica') {
    const off = a.replicas
      .filter((r) => r.host !== a.to)
      .map((r) => `${r.disk}'s replica is on ${r.host}, not ${a.to}`);
    return [...restartRefusals(snap, a), ...off];
  }
  if (a.kind === 'start-mirror') {
    const t = snap.hosts.get(a.target.host);
    if (!t) return [`no host named "${a.target.host}"`];
    if (t.health !== 'up') return [`replica host ${a.target.host} is ${t.health}`];
  }
  const where = a.kind === 'migrate' ? a.from : a.host;
  const host = snap.hosts.get(where);
  const out: string[] = [];
  if (!host) return [`no host named "${where}"`];
  if (host.health !== 'up') out.push(`host ${where} is ${host.health}`);
  if (a.kind === 'define') return out;
  const vm = snap.vms.get(a.vm);
  if (!vm) return [...out, `no VM named "${a.vm}"`];
  if (vm.host !== where) out.push(`${a.vm} is on ${vm.host}, not ${where}`);
  if (a.kind === 'migrate' && !snap.hosts.has(a.to)) out.push(`no host named "${a.to}"`);
  if (a.kind === 'raise-cpu-cap' && vm.state !== 'running') out.push(`${a.vm} is ${vm.state}, not running`);
  return out;
}
