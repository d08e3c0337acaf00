import { describe, expect, it } from 'vitest';
import { mirrorReady, replicaDomainXml } from '../../../src/replication/mirror.ts';

const xml = `<domain type='qemu'><name>db1</name><devices>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/vg/db1'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/srv/shared/db1-logs.qcow2'>
        <seclabel model='none'/>
      </source>
      <target dev='vdb' bus='virtio'/>
    </disk>
</devices></domain>`;

describe('replicaDomainXml', () => {
  it('points each replicated disk at its replica file as qcow2 and leaves the others alone', () => {
    const out = replicaDomainXml(xml, [
      { disk: 'vda', path: '/var/lib/keizoku/replicas/db1-vda.replica.qcow2' },
    ]);
    expect(out).toContain(`<disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/keizoku/replicas/db1-vda.replica.qcow2'/>
      <target dev='vda' bus='virtio'/>`);
    expect(out).toContain("<source file='/srv/shared/db1-logs.qcow2'>");
    const both = replicaDomainXml(xml, [
      { disk: 'vda', path: '/r/a.qcow2' },
      { disk: 'vdb', path: '/r/b.qcow2' },
    ]);
    expect(both).not.toContain('seclabel');
    expect(both.match(/<source file='\/r\/[ab]\.qcow2'\/>/g)).toHaveLength(2);
  });

  it('refuses a replica of a disk the definition does not have', () => {
    expect(() => replicaDomainXml(xml, [{ disk: 'vdc', path: '/r/c.qcow2' }])).toThrow(
      'the definition has no disk vdc to point at its replica /r/c.qcow2',
    );
  });
});

describe('mirrorReady', () => {
  const withMirror = (attrs: string) =>
    xml.replace(
      "<target dev='vda' bus='virtio'/>",
      `<mirror type='network' job='copy'${attrs}><format type='raw'/><source protocol='nbd' name='db1-vda'><host name='10.0.0.3' port='10820'/></source></mirror><target dev='vda' bus='virtio'/>`,
    );
  it("is libvirt's ready='yes' on the disk's own mirror, whatever cur and end read", () => {
    expect(mirrorReady(withMirror(" ready='yes'"), 'vda')).toBe(true);
    expect(mirrorReady(withMirror(''), 'vda')).toBe(false);
    expect(mirrorReady(withMirror(" ready='yes'"), 'vdb')).toBe(false);
    expect(mirrorReady(xml, 'vda')).toBe(false);
  });
});
