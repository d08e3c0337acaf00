import type { DeepReadonly } from './load.ts';
import type { VmAssignment, VmMatch } from './schema.ts';

/** Which `vms:` entry applies to a VM: the first whose match fits, in file order. */

export interface VmIdentity {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * Compiled globs, kept because the same few patterns from the config are matched for every VM
 * on every placement and policy lookup. Bounded: patterns from API tokens could be many.
 */
const compiled = new Map<string, RegExp>();
const COMPILED_MAX = 10_000;

/**
 * `*` matches any run of characters, `?` one character; everything else is literal. The
 * RegExp is shared between callers (it has no `g` flag, so `test` keeps no state).
 */
export function globToRegExp(glob: string): RegExp {
  const cached = compiled.get(glob);
  if (cached) return cached;
  if (compiled.size >= COMPILED_MAX) compiled.clear();
  const re = compileGlob(glob);
  compiled.set(glob, re);
  return re;
}

function compileGlob(glob: string): RegExp {
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
