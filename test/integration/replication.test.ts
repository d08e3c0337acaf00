import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVm, downLab, type LabState, readState, waitFor } from '../../lab/index.ts';
import type { LibvirtClient } from '../../src/libvirt/client.ts';
import { type NbdExport, nbdDiskXml, SshNbdExports } from '../../src/replication/nbd-export.ts';
import { upTestLab } from '../support/lab-fixture.ts';
import { openLabClient } from '../support/libvirt.ts';

const MiB = 1024 * 1024;

/**
 * Class ア replication on the lab's real libvirtd and QEMU: a VM's local disk on h1 (dc1)
 * mirrored with synchronous writes into a qcow2 that qemu-nbd serves on h3 (dc2).
 */
describe('synchronous mirror of a local disk to the recovery site over NBD', () => {
  let lab: LabState;
  let h1: LibvirtClient;
  let exports: SshNbdExports;
  let target: NbdExport;

  beforeAll(async () => {
    lab = await upTestLab({ hosts: 3, sites: 2 });
    await createVm(lab.id, { name: 'ra1', host: 'h1', disk: 'local' });
    lab = readState(lab.id)!;
    h1 = await openLabClient(lab, 'h1');
    exports = new SshNbdExports({
      user: 'root',
      port: 22,
      keyFile: lab.pki!.sshClientKeyFile,
      knownHostsFile: lab.pki!.sshKnownHostsFile,
    });
    const h3 = lab.layout.hosts.find((h) => h.name === 'h3')!;
    target = {
      path: '/var/lib/libvirt/images/ra1.replica.qcow2',
      address: h3.mgmtAddress,
      port: 10809,
      name: 'ra1-vda',
    };
  }, 120_000);

  afterAll(async () => {
    await h1?.close();
    if (lab) await downLab(lab.id);
  });

  it('starts the export over SSH, copies into it with synchronous writes, mirrors (ready) and stops on abort', async () => {
    const h3 = lab.layout.hosts.find((h) => h.name === 'h3')!;
    await exports.ensure(h3.mgmtAddress, { ...target, sizeBytes: 64 * MiB });
    // A second ensure finds qemu-nbd alive and starts nothing.
    await exports.ensure(h3.mgmtAddress, { ...target, sizeBytes: 64 * MiB });
    const dom = await h1.lookupByName('ra1');
    expect(await h1.blockJobInfo(dom, 'vda')).toBeNull();
    // The domain is persistent: libvirt copies its disk only as a job outside its definition.
    const refused = await h1
      .blockCopy(dom, 'vda', nbdDiskXml(target), { synchronousWrites: true, reuseExternal: true })
      .then(
        () => null,
        (e: Error) => e.message,
      );
    expect(refused).toMatch(/domain is not transient/);
    await h1.blockCopy(dom, 'vda', nbdDiskXml(target), {
      synchronousWrites: true,
      reuseExternal: true,
      transientJob: true,
    });
    await waitFor(
      'the copy to be ready',
      async () => (await h1.blockJobInfo(dom, 'vda'))?.ready === true,
      60_000,
      100,
    );
    const job = (await h1.blockJobInfo(dom, 'vda'))!;
    expect(job).toMatchObject({ type: 'copy', ready: true, end: 64 * MiB });
    const xml = await h1.getXml(dom);
    expect(xml).toMatch(/<mirror type='network' job='copy' ready='yes'>/);
    expect(xml).toContain(`<host name='${target.address}' port='${target.port}'/>`);
    // Not pivoted: the VM still runs on its local disk.
    expect(xml).toContain("<source file='/var/lib/libvirt/images/ra1.qcow2'");

    await h1.blockJobAbort(dom, 'vda');
    expect(await h1.blockJobInfo(dom, 'vda')).toBeNull();
    expect(await h1.getXml(dom)).not.toContain('<mirror');
    await exports.release(h3.mgmtAddress, target);
    // Released twice: nothing to stop, no error.
    await exports.release(h3.mgmtAddress, target);
    // Nothing serves the export any more: a copy into it is refused.
    await expect(
      h1.blockCopy(dom, 'vda', nbdDiskXml(target), {
        synchronousWrites: true,
        reuseExternal: true,
        transientJob: true,
      }),
    ).rejects.toThrow();
  }, 120_000);
});
