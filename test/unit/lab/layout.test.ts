import { describe, expect, it } from 'vitest';
import { labLayout, vmAddress } from '../../../lab/src/layout.ts';
import { parsePingLog } from '../../../lab/src/ping-log.ts';
import { checkVmName, domainXml } from '../../../lab/src/vm.ts';

describe('lab layout', () => {
  it('spreads hosts over sites in contiguous blocks', () => {
    const l = labLayout(0, 3, 2);
    expect(l.hosts.map((h) => [h.name, h.site])).toEqual([
      ['h1', 'dc1'],
      ['h2', 'dc1'],
      ['h3', 'dc2'],
    ]);
    expect(labLayout(0, 5, 3).hosts.map((h) => h.site)).toEqual(['dc1', 'dc1', 'dc2', 'dc2', 'dc3']);
  });

  it('gives two labs disjoint names, subnets and host UUIDs', () => {
    const a = labLayout(0, 9, 3);
    const b = labLayout(49, 9, 3);
    const names = (l: typeof a) => [
      l.wanMgmtBridge,
      l.wanSvcBridge,
      ...l.sites.flatMap((s) => [s.mgmtBridge, s.svcBridge, ...s.mgmtUplink, ...s.svcUplink]),
      ...l.hosts.flatMap((h) => [h.netns, h.mgmtLink, h.svcLink, h.mgmtAddress, h.hostUuid]),
    ];
    const na = names(a);
    const nb = names(b);
    expect(new Set(na).size).toBe(na.length);
    expect(na.filter((n) => nb.includes(n))).toEqual([]);
    expect(a.mgmtNet).not.toBe(b.mgmtNet);
  });

  it('keeps every interface name within the kernel limit of 15 characters', () => {
    const l = labLayout(49, 9, 9);
    const ifnames = [
      l.wanMgmtBridge,
      ...l.sites.flatMap((s) => [s.mgmtBridge, s.svcBridge, ...s.mgmtUplink, ...s.svcUplink]),
      ...l.hosts.flatMap((h) => [h.mgmtLink, h.svcLink]),
    ];
    for (const n of ifnames) expect(n.length, n).toBeLessThanOrEqual(15);
  });

  it('rejects impossible shapes with the option named', () => {
    expect(() => labLayout(0, 0, 1)).toThrow(/--hosts/);
    expect(() => labLayout(0, 2, 3)).toThrow(/--sites/);
    expect(() => labLayout(50, 2, 1)).toThrow(/lab id/);
  });

  it('derives a VM address and MAC from the slot', () => {
    expect(vmAddress(3, 10)).toEqual({
      address: '10.103.1.10',
      cidr: '10.103.1.10/24',
      mac: '52:54:00:67:01:0a',
    });
  });
});

describe('lab guest domain XML', () => {
  const vm = {
    name: 'web1',
    createdOn: 'h1',
    octet: 10,
    address: '10.100.1.10',
    mac: '52:54:00:64:01:0a',
    memoryMiB: 96,
    disk: 'none' as const,
  };
  it('uses the lab domain type and boots the kernel with the guest address', () => {
    const xml = domainXml({ vm, domainType: 'qemu', guestDir: '/c/guest' });
    expect(xml).toContain("<domain type='qemu'>");
    expect(xml).toContain('guestip=10.100.1.10/24 guestname=web1');
    expect(xml).toContain('<kernel>/c/guest/vmlinuz</kernel>');
    expect(xml).not.toContain('<disk');
    expect(domainXml({ vm, domainType: 'kvm', guestDir: '/g', diskPath: '/i/web1.qcow2' })).toMatch(
      /<domain type='kvm'>[\s\S]*<source file='\/i\/web1.qcow2'\/>/,
    );
  });
  it('refuses names that are not safe file and domain names', () => {
    expect(checkVmName('web-1')).toBeNull();
    for (const bad of ['', '1vm', 'Web', 'a/b', 'x'.repeat(40), 'a b'])
      expect(checkVmName(bad)).toMatch(/invalid/);
  });
});

describe('ping -D log', () => {
  it('finds the longest gap between replies, including the start and the end of the capture', () => {
    const log = [
      'PING 10.100.1.10 (10.100.1.10) 56(84) bytes of data.',
      '[1000.000000] 64 bytes from 10.100.1.10: icmp_seq=1 ttl=64 time=0.5 ms',
      '[1000.010000] 64 bytes from 10.100.1.10: icmp_seq=2 ttl=64 time=0.5 ms',
      '[1000.250000] 64 bytes from 10.100.1.10: icmp_seq=26 ttl=64 time=0.5 ms',
      '',
      '--- 10.100.1.10 ping statistics ---',
      '30 packets transmitted, 3 received, 90% packet loss, time 290ms',
    ].join('\n');
    const s = parsePingLog(log, 999_990, 1_000_300);
    expect(s).toMatchObject({
      sent: 30,
      received: 3,
      maxGapMs: 240,
      replies: [1_000_000, 1_000_010, 1_000_250],
    });
    expect(parsePingLog('', 0, 500).maxGapMs).toBe(500);
  });
});
