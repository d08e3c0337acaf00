import { readdirSync, readFileSync } from 'node:fs';

/**
 * QEMU processes on this machine whose command line names the VM. Every lab host shares the
 * machine, so these are the copies of a VM across all hosts: the one-copy invariant of
 * failover, checked from outside keizokud and libvirt.
 */
export function qemuPids(vm: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (cmd[0]?.includes('qemu-system') && cmd.includes(`guest=${vm},debug-threads=on`))
        pids.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

export function qemuCopies(vm: string): number {
  return qemuPids(vm).length;
}
