import { readFileSync, statSync } from 'node:fs';

/**
 * Key, password and token files must be readable by their owner only (as ssh refuses a
 * private key others can read). Why a file of this mode is refused, or undefined when it is not.
 */
export function secretModeProblem(mode: number): string | undefined {
  if ((mode & 0o044) === 0) return undefined;
  return `readable by group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')})`;
}

/** Reads a secret file; throws `PATH: readable by group or others (mode 0644): chmod 600 it`. */
export function readSecretFileSync(path: string): Buffer {
  const problem = secretModeProblem(statSync(path).mode);
  if (problem) throw new Error(`${path}: ${problem}: chmod 600 it`);
  return readFileSync(path);
}
