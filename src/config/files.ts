import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { ConfigIssue, ConfigPath } from './errors.ts';
import type { KeizokuConfig } from './schema.ts';
import { secretModeProblem } from './secret-file.ts';
import { readErrorMessage } from './yaml-file.ts';

/** File names as operators see them, and the key and certificate files a config points at. */

/** Relative to the working directory when inside it, else absolute. */
export function displayPath(abs: string): string {
  const rel = relative(process.cwd(), abs);
  const inside = rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
  return inside ? rel : abs;
}

/** Why a file cannot be used, or undefined when it is a readable regular file. */
export async function fileProblem(abs: string): Promise<string | undefined> {
  try {
    if (!(await stat(abs)).isFile()) return 'not a regular file';
    await access(abs, constants.R_OK);
    return undefined;
  } catch (e) {
    return readErrorMessage(e);
  }
}

interface FileRef {
  path: ConfigPath;
  holder: Record<string, unknown>;
  key: string;
}

/** Fields that name private keys or passwords (not certificates nor known_hosts). */
const SECRET_KEYS = new Set(['keyFile', 'passwordFile', 'sentinelPasswordFile']);

/** Every field of the config that names key material (TLS, SSH, IPMI and Sentinel passwords). */
function materialFiles(config: KeizokuConfig): FileRef[] {
  const refs: FileRef[] = [];
  const add = (holder: Record<string, unknown> | undefined, path: ConfigPath, keys: string[]) => {
    for (const key of keys) {
      if (holder !== undefined && typeof holder[key] === 'string')
        refs.push({ path: [...path, key], holder, key });
    }
  };
  add(config.libvirt.tls, ['libvirt', 'tls'], ['caFile', 'certFile', 'keyFile']);
  add(config.libvirt.ssh, ['libvirt', 'ssh'], ['keyFile', 'knownHostsFile']);
  add(config.api.tls, ['api', 'tls'], ['certFile', 'keyFile', 'clientCaFile']);
  add(config.redis, ['redis'], ['sentinelPasswordFile']);
  for (const [i, host] of config.hosts.entries()) {
    add(host.fence, ['hosts', i, 'fence'], ['passwordFile', 'keyFile', 'knownHostsFile', 'caFile']);
  }
  return refs;
}

/**
 * Makes every material path absolute (relative paths are taken from the config's directory),
 * in place, and reports each one that is not a readable file.
 */
export async function resolveMaterialFiles(
  config: KeizokuConfig,
  dir: string,
  shown: string,
): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  for (const ref of materialFiles(config)) {
    const abs = resolve(dir, String(ref.holder[ref.key]));
    ref.holder[ref.key] = abs;
    const problem = await fileProblem(abs);
    if (problem !== undefined)
      issues.push({ file: shown, path: ref.path, message: `${problem}: ${displayPath(abs)}` });
    else if (SECRET_KEYS.has(ref.key)) {
      const open = secretModeProblem((await stat(abs)).mode);
      if (open !== undefined)
        issues.push({ file: shown, path: ref.path, message: `${open}: chmod 600 ${displayPath(abs)}` });
    }
  }
  return issues;
}
