import { describe, expect, it } from 'vitest';
import { vmFromDomainXml } from '../../../src/core/domain-size.ts';

describe('vmFromDomainXml', () => {
  it('reads memory with its unit and the vCPU count', () => {
    const xml =
      "<domain><name>a</name><uuid>1-2</uuid><memory unit='MiB'>96</memory><vcpu placement='static'>2</vcpu></domain>";
    expect(vmFromDomainXml('a', 'h1', xml)).toMatchObject({
      uuid: '1-2',
      memoryKiB: 96 * 1024,
      vcpus: 2,
      host: 'h1',
    });
    expect(
      vmFromDomainXml('a', 'h1', '<domain><memory>2048</memory><vcpu>1</vcpu></domain>')!.memoryKiB,
    ).toBe(2048);
  });

  it('gives null for a missing definition, size or unknown unit', () => {
    expect(vmFromDomainXml('a', 'h1', null)).toBeNull();
    expect(vmFromDomainXml('a', 'h1', '<domain><vcpu>1</vcpu></domain>')).toBeNull();
    expect(
      vmFromDomainXml('a', 'h1', "<domain><memory unit='furlong'>1</memory><vcpu>1</vcpu></domain>"),
    ).toBeNull();
  });
});
