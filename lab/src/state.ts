import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabLayout } from './layout.ts';
import type { LabPki } from './pki.ts';

/** Root of every lab's state; each lab has `<root>/<id>/` with state.json and per-host dirs. */
export const LAB_ROOT = process.env.KEIZOKU_LAB_ROOT ?? '/var/lib/keizoku-lab';
export const GUEST_DIR = join(process.env.KEIZOKU_CACHE ?? '/var/cache/keizoku', 'guest');

export interface HostState {
  name: string;
  /** Pid of the host's first process: the subreaper that runs libvirtd and adopts its QEMUs. */
  reaperPid: number | null;
  libvirtdPid: number | null;
  fenced: boolean;
  partitioned: boolean;
}

export interface VmRecord {
  name: string;
  /** Host it was created on; where it runs now is read from libvirt. */
  createdOn: string;
  octet: number;
  address: string;
  mac: string;
  memoryMiB: number;
  disk: 'local' | 'shared' | 'none';
  /** Written into keizoku's metadata element as <kz:label name=...> (policies select by them). */
  labels?: Record<string, string>;
}

export interface LabState {
  id: number;
  owner: string;
  createdAt: string;
  domainType: string;
  wanRateMbit: number;
  hostCount: number;
  siteCount: number;
  layout: LabLayout;
  /** Every kernel object `up` created, recorded before it is created, removed by `down`. */
  namespaces: string[];
  links: string[];
  bridges: string[];
  cgroups: string[];
  hosts: HostState[];
  vms: VmRecord[];
  /** The lab's CA and certificates for libvirt's TLS transport. */
  pki: LabPki | null;
}

export const labDir = (id: number) => join(LAB_ROOT, String(id));
export const hostDir = (id: number, host: string) => join(labDir(id), 'hosts', host);
/** A site's shared storage, mounted at SHARED_MOUNT in every host of the site. */
export const sharedDir = (id: number, site: string) => join(labDir(id), 'shared', site);
export const SHARED_MOUNT = '/srv/keizoku-shared';
const stateFile = (id: number) => join(labDir(id), 'state.json');

/** Claims the lab id atomically: fails if a lab with this id exists (mkdir is the lock). */
export function claimLabDir(id: number): boolean {
  mkdirSync(LAB_ROOT, { recursive: true });
  try {
    mkdirSync(labDir(id));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

export function readState(id: number): LabState | null {
  const f = stateFile(id);
  if (!existsSync(f)) return null;
  return JSON.parse(readFileSync(f, 'utf8')) as LabState;
}

export function writeState(state: LabState): void {
  const f = stateFile(state.id);
  writeFileSync(`${f}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${f}.tmp`, f);
}

export function removeLabDir(id: number): void {
  rmSync(labDir(id), { recursive: true, force: true });
}

/** Ids of every lab directory present (up, or left half-made by a crash). */
export function listLabIds(): number[] {
  if (!existsSync(LAB_ROOT)) return [];
  return readdirSync(LAB_ROOT)
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}

const inProcess = new Map<number, Promise<unknown>>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `fn` holding the lab's state lock, across processes (a lock directory holding the
 * owner's pid; a dead owner's lock is broken) and within this process (a promise chain).
 */
export function withLabLock<T>(id: number, fn: () => Promise<T>): Promise<T> {
  const prev = inProcess.get(id) ?? Promise.resolve();
  const next = prev
    .catch(() => undefined)
    .then(async () => {
      const lock = join(labDir(id), 'lock');
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          mkdirSync(lock);
          writeFileSync(join(lock, 'pid'), String(process.pid));
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw e;
          let owner = Number.NaN;
          try {
            owner = Number(readFileSync(join(lock, 'pid'), 'utf8'));
          } catch {
            // being created or removed right now
          }
          if (Number.isInteger(owner) && !pidAlive(owner)) rmSync(lock, { recursive: true, force: true });
          else if (Date.now() > deadline)
            throw new Error(`lab ${id}: state lock held by pid ${owner} for over 60 s`);
          else await new Promise((r) => setTimeout(r, 25));
        }
      }
      try {
        return await fn();
      } finally {
        rmSync(lock, { recursive: true, force: true });
      }
    });
  inProcess.set(id, next);
  return next;
}
