import type { DeepReadonly } from './load.ts';
import type { VmAssignment, VmMatch } from './schema.ts';

/** Which `vms:` entry applies to a VM: the first whose match fits, in file order. */

export interface VmIdentity {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
}

/** `*` matches any run of characters, `?` one character; everything else is literal. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (const ch of glob) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 'su');
}

export function matchesVm(match: DeepReadonly<VmMatch>, vm: VmIdentity): boolean {
  if (match.name !== undefined && !globToRegExp(match.name).test(vm.name)) return false;
  for (const [key, value] of Object.entries(match.labels ?? {})) {
    if (vm.labels?.[key] !== value) return false;
  }
  return true;
}

export function assignmentFor<T extends DeepReadonly<VmAssignment>>(
  vms: readonly T[],
  vm: VmIdentity,
): T | undefined {
  return vms.find((entry) => matchesVm(entry.match, vm));
}
