import { firstLine, run } from '../fence/run.ts';
import { type SshLogin, sshArgs } from '../fence/ssh.ts';

/**
 * The writable NBD export of a replica on a recovery-site host: a qcow2 file there served by
 * qemu-nbd, which the VM's host mirrors into (virDomainBlockCopy to an NBD destination). libvirt
 * has no call that serves a disk of a host over NBD without a running domain, so keizokud
 * starts qemu-nbd over SSH on the management path, with the same login as ssh fencing.
 */
export interface NbdExport {
  /** The replica file on the recovery host. */
  path: string;
  /** Where the VM's host reaches the export. */
  address: string;
  port: number;
  name: string;
}

export interface ExportRequest extends NbdExport {
  /** Size of the replica when it has to be created (the source disk's virtual size). */
  sizeBytes: number;
}

const CALL_TIMEOUT_MS = 30_000;
const SAFE = /^[A-Za-z0-9._/-]+$/;

/** Where the recovery host keeps the pid of the export's qemu-nbd. */
export const pidFile = (e: Pick<NbdExport, 'name' | 'port'>) => `/run/keizoku-nbd-${e.name}-${e.port}.pid`;

function checkSafe(e: NbdExport): void {
  for (const [k, v] of Object.entries({ path: e.path, address: e.address, name: e.name }))
    if (!SAFE.test(v)) throw new Error(`NBD export ${k} '${v}' has characters outside [A-Za-z0-9._/-]`);
  if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535)
    throw new Error(`NBD export port ${e.port} is not 1-65535`);
}

/**
 * The shell command that makes the export serve: creates the replica if absent, starts qemu-nbd
 * unless its pid is alive. writethrough: a write qemu-nbd acknowledges is on the recovery
 * host's disk, not only in its page cache.
 */
export function ensureCommand(e: ExportRequest): string {
  checkSafe(e);
  const pid = pidFile(e);
  return [
    'set -e',
    `[ -e ${e.path} ] || qemu-img create -q -f qcow2 ${e.path} ${Math.ceil(e.sizeBytes)}`,
    `if [ -f ${pid} ] && kill -0 "$(cat ${pid})" 2>/dev/null; then exit 0; fi`,
    `qemu-nbd --fork --persistent --shared=4 --cache=writethrough --format=qcow2 --bind ${e.address} --port ${e.port} --export-name ${e.name} --pid-file ${pid} ${e.path}`,
  ].join('; ');
}

/** The shell command that stops the export (the replica file stays), waiting until qemu-nbd is gone. */
export function releaseCommand(e: NbdExport): string {
  checkSafe(e);
  const pid = pidFile(e);
  return [
    `[ -f ${pid} ] || exit 0`,
    `p=$(cat ${pid})`,
    'kill "$p" 2>/dev/null || true',
    'i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done',
    'kill -0 "$p" 2>/dev/null && { echo "qemu-nbd $p did not stop" >&2; exit 1; }',
    `rm -f ${pid}`,
  ].join('; ');
}

/** Runs shell commands on recovery hosts over SSH. */
export class SshNbdExports {
  constructor(private readonly login: SshLogin) {}

  async ensure(managementAddress: string, e: ExportRequest): Promise<void> {
    await this.exec(managementAddress, ensureCommand(e), `start the NBD export ${e.name}`);
  }

  async release(managementAddress: string, e: NbdExport): Promise<void> {
    await this.exec(managementAddress, releaseCommand(e), `stop the NBD export ${e.name}`);
  }

  private async exec(address: string, command: string, what: string): Promise<void> {
    const r = await run('ssh', sshArgs(this.login, address, command), CALL_TIMEOUT_MS);
    if (r.code !== 0)
      throw new Error(
        `ssh ${this.login.user}@${address}: could not ${what} (exit ${r.code}): ${firstLine(r.stderr || r.stdout)}`,
      );
  }
}

/** The destination of virDomainBlockCopy: the export as a raw network disk (qemu-nbd serves the guest's view). */
export function nbdDiskXml(e: NbdExport): string {
  return `<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='nbd' name='${e.name}'><host name='${e.address}' port='${e.port}'/></source></disk>`;
}
