import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { domainXml } from '../../../lab/src/vm.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { labelsFromMetadata } from '../../../src/core/vm-labels.ts';
import { PolicyBook } from '../../../src/store/policy-book.ts';

const EXAMPLE = fileURLToPath(new URL('../../../examples/keizokud.yaml', import.meta.url));

describe('labelsFromMetadata', () => {
  it("reads every <kz:label name=...> of keizoku's element, unescaped, first value kept", () => {
    const xml = `<kz:vm xmlns:kz="urn:keizoku:vm:1">
      <kz:address>10.1.0.20</kz:address>
      <kz:label name="season">tax</kz:label>
      <kz:label name='app/tier'> front &amp; back </kz:label>
      <kz:label name="season">summer</kz:label>
      <kz:label name="">ignored</kz:label>
      <kz:label name="__proto__">x</kz:label>
    </kz:vm>`;
    const labels = labelsFromMetadata(xml);
    expect(labels).toEqual({ season: 'tax', 'app/tier': 'front & back', ['__proto__']: 'x' });
    expect(Object.hasOwn(labels, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(labels)).toBe(Object.prototype);
    expect(labelsFromMetadata('<vm><label name="role">office</label></vm>')).toEqual({ role: 'office' });
    expect(labelsFromMetadata(null)).toEqual({});
    expect(labelsFromMetadata('<kz:vm><kz:address>10.0.0.1</kz:address></kz:vm>')).toEqual({});
  });

  it("reads back the labels the lab writes into a guest's definition, escaped", () => {
    const labels = { season: 'tax', owner: "o'brien & <co>" };
    const vm = { name: 'tax1', createdOn: 'h1', octet: 10, address: '10.1.0.10', mac: '52:54:00:00:00:0a' };
    const xml = domainXml({
      vm: { ...vm, memoryMiB: 96, disk: 'none', labels },
      domainType: 'qemu',
      guestDir: '/g',
    });
    expect(labelsFromMetadata(xml)).toEqual(labels);
  });
});

describe('policy by label', () => {
  it("the example's seasonal front-end tier goes to a VM labelled season=tax, by label alone", async () => {
    const { config } = await loadConfig(EXAMPLE, {});
    const labels: Record<string, Record<string, string>> = {
      'tax-web': { season: 'tax' },
      'summer-web': { season: 'summer' },
      web1: { season: 'tax' },
    };
    const book = new PolicyBook({} as Redis, 'kz:', config.vms, (vm) => labels[vm] ?? {});
    expect(book.policyOf('tax-web')).toMatchObject({
      tier: 'frontend-seasonal',
      limits: 'standard',
      haPriority: 500,
    });
    expect(book.policyOf('summer-web')).toBeNull();
    expect(book.policyOf('unlabelled')).toBeNull();
    // The first entry that matches wins: web1 is matched by name before the label entry.
    expect(book.policyOf('web1')?.tier).toBe('frontend');
    // Labels changed live (the metadata read again): the next lookup follows them.
    labels['summer-web'] = { season: 'tax' };
    expect(book.policyOf('summer-web')?.tier).toBe('frontend-seasonal');
    labels['tax-web'] = { season: 'over' };
    expect(book.policyOf('tax-web')).toBeNull();
  });
});
