import { describe, expect, it } from 'vitest';
import { ensureCommand, nbdDiskXml, releaseCommand } from '../../../src/replication/nbd-export.ts';

const e = {
  path: '/var/lib/libvirt/images/db1.replica.qcow2',
  address: '10.0.0.13',
  port: 10809,
  name: 'db1-vda',
};

describe('NBD export commands', () => {
  it('creates the replica only when absent and starts qemu-nbd writethrough on the given address', () => {
    const c = ensureCommand({ ...e, sizeBytes: 64 * 1024 * 1024 });
    expect(c).toContain(`[ -e ${e.path} ] || qemu-img create -q -f qcow2 ${e.path} 67108864`);
    expect(c).toContain('--cache=writethrough');
    expect(c).toContain('--bind 10.0.0.13 --port 10809 --export-name db1-vda');
    // Idempotent: an alive qemu-nbd of this export ends the command before a second is started.
    expect(c.indexOf('kill -0')).toBeLessThan(c.indexOf('qemu-nbd --fork'));
  });

  it('refuses names, paths and ports a shell would misread', () => {
    expect(() => ensureCommand({ ...e, name: 'x; rm -rf /', sizeBytes: 1 })).toThrow(
      /NBD export name 'x; rm -rf \/'/,
    );
    expect(() => releaseCommand({ ...e, path: '/tmp/$(id)' })).toThrow(/NBD export path/);
    expect(() => releaseCommand({ ...e, port: 0 })).toThrow(/port 0 is not 1-65535/);
  });

  it('describes the export as a raw NBD disk for virDomainBlockCopy', () => {
    expect(nbdDiskXml(e)).toBe(
      "<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='nbd' name='db1-vda'><host name='10.0.0.13' port='10809'/></source></disk>",
    );
  });
});
