import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LabError } from './errors.ts';
import { run, waitFor } from './exec.ts';
import type { HostLayout } from './layout.ts';
import { hostDir, sharedDir } from './state.ts';

const HOST_INIT = join(dirname(fileURLToPath(import.meta.url)), '..', 'host-init.sh');
const CGROUP_CONTROLLERS = ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids'];

/** virsh against a lab host, run inside its namespace so a partition does not hide it. */
export function virsh(labHost: HostLayout, args: readonly string[], timeoutMs = 60_000) {
  return run('ip', ['netns', 'exec', labHost.netns, 'virsh', '-q', '-c', labHost.uri, ...args], {
    timeoutMs,
  });
}

export interface HostTls {
  caFile: string;
  certFile: string;
  keyFile: string;
  sshHostKeyFile: string;
  sshAuthorizedKeysFile: string;
}

function writeConfigs(labId: number, h: HostLayout, tls: HostTls): string {
  const dir = hostDir(labId, h.name);
  const etc = join(dir, 'etc/libvirt');
  mkdirSync(etc, { recursive: true });
  // Plain TCP without auth: lab only, on addresses inside the lab's own namespaces.
  writeFileSync(
    join(etc, 'libvirtd.conf'),
    [
      // TLS on 16514 with the lab's own CA (how keizoku talks to real hosts), and plain TCP on 16509.
      'listen_tls = 1',
      `ca_file = "${tls.caFile}"`,
      `cert_file = "${tls.certFile}"`,
      `key_file = "${tls.keyFile}"`,
      'listen_tcp = 1',
      `listen_addr = "${h.mgmtAddress}"`,
      'auth_tcp = "none"',
      'auth_unix_rw = "none"',
      `host_uuid = "${h.hostUuid}"`,
      'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(etc, 'qemu.conf'),
    [
      'security_driver = "none"',
      'user = "root"',
      'group = "root"',
      'dynamic_ownership = 0',
      'stdio_handler = "file"',
      `migration_host = "${h.mgmtAddress}"`,
      'lock_manager = "lockd"',
      '',
    ].join('\n'),
  );
  // Leases are fcntl locks on the disk files themselves (no separate lockspace): a disk on the
  // site's shared storage is one file for every host of the site, a local disk is per host.
  writeFileSync(
    join(etc, 'qemu-lockd.conf'),
    ['auto_disk_leases = 1', 'require_lease_for_disks = 1', ''].join('\n'),
  );
  // sshd for the qemu+ssh transport: root by key only, started by host-init.sh inside the host.
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `ListenAddress ${h.mgmtAddress}`,
      'Port 22',
      `HostKey ${tls.sshHostKeyFile}`,
      `AuthorizedKeysFile ${tls.sshAuthorizedKeysFile}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PidFile none',
      '',
    ].join('\n'),
  );
  return dir;
}

/** Starts the host's libvirtd under its subreaper; returns both pids once libvirt answers. */
export async function startHost(
  labId: number,
  h: HostLayout,
  tls: HostTls,
): Promise<{ reaperPid: number; libvirtdPid: number }> {
  const dir = writeConfigs(labId, h, tls);
  const pidFile = join(dir, 'run/libvirt/libvirtd.pid');
  const log = openSync(join(dir, 'host-init.log'), 'a');
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      h.netns,
      'unshare',
      '--mount',
      '--propagation',
      'private',
      '--',
      'bash',
      HOST_INIT,
      dir,
      h.cgroup,
      sharedDir(labId, h.site),
    ],
    { detached: true, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  child.unref();
  const reaperPid = child.pid;
  if (reaperPid === undefined) throw new LabError(`host ${h.name}: could not start libvirtd`);
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  try {
    await waitFor(
      `libvirtd of ${h.name} at ${h.uri}`,
      async () => {
        if (exited) throw new LabError(`host ${h.name}: libvirtd exited at start (see ${dir}/host-init.log)`);
        if (!existsSync(pidFile)) return false;
        try {
          await virsh(h, ['version'], 5_000);
          return true;
        } catch {
          return false;
        }
      },
      30_000,
      100,
    );
  } catch (e) {
    await killTree(reaperPid);
    throw e;
  }
  return { reaperPid, libvirtdPid: Number(readFileSync(pidFile, 'utf8').trim()) };
}

/** The per-host `dir` pool that --copy-storage-all pre-creates destination images in. */
export async function definePool(h: HostLayout): Promise<void> {
  await virsh(h, ['pool-define-as', 'default', 'dir', '--target', '/var/lib/libvirt/images']);
  await virsh(h, ['pool-build', 'default']);
  await virsh(h, ['pool-start', 'default']);
  await virsh(h, ['pool-autostart', 'default']);
}

function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 4 after the parenthesised command name, which may itself hold spaces.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/** The pid and all its live descendants (QEMUs are adopted by the subreaper, so they are here). */
export function processTree(root: number): number[] {
  const all = readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
  const children = new Map<number, number[]>();
  for (const pid of all) {
    const ppid = parentOf(pid);
    if (ppid !== null) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  if (!all.includes(root)) return [];
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

/**
 * Kills a host's processes like a power cut: descendants first (QEMUs, libvirtd), then the
 * subreaper once it has reaped them, so nothing is left as a zombie of PID 1.
 */
export async function killTree(reaperPid: number | null): Promise<void> {
  if (reaperPid === null) return;
  const tree = processTree(reaperPid);
  if (tree.length === 0) return;
  for (const pid of tree.slice(1)) tryKill(pid);
  // The subreaper reaps them at once; wait until they are gone from /proc, not just dead.
  await waitFor(
    'host processes to be reaped',
    () => tree.slice(1).every((p) => !existsSync(`/proc/${p}`)),
    10_000,
    20,
  );
  tryKill(reaperPid);
  await waitFor('host subreaper to exit', () => !alive(reaperPid), 10_000, 20);
}

function tryKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Removes the host's cgroup subtree (libvirt's machine directories inside it), deepest first. */
export function removeCgroup(name: string): void {
  for (const c of CGROUP_CONTROLLERS) {
    const top = `/sys/fs/cgroup/${c}/${name}`;
    if (!existsSync(top)) continue;
    const dirs: string[] = [];
    const walk = (d: string) => {
      dirs.push(d);
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    };
    walk(top);
    for (const d of dirs.reverse()) {
      try {
        rmdirSync(d);
      } catch {
        // busy until the last task in it is reaped; the caller killed those first
      }
    }
  }
}
