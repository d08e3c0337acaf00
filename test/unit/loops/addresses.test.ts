import { describe, expect, it } from 'vitest';
import { addressesFromMetadata } from '../../../src/loops/inventory.ts';

describe('addressesFromMetadata', () => {
  it("reads the IP literals of keizoku's element, in order, and nothing else", () => {
    const xml = `<kz:vm xmlns:kz="urn:keizoku:vm:1">
      <kz:address>10.1.0.20</kz:address>
      <kz:address> fd00::20 </kz:address>
      <kz:address>portal.example</kz:address>
      <kz:address>10.1.0.300</kz:address>
    </kz:vm>`;
    expect(addressesFromMetadata(xml)).toEqual(['10.1.0.20', 'fd00::20']);
    expect(addressesFromMetadata('<vm><address>10.2.0.5</address></vm>')).toEqual(['10.2.0.5']);
    expect(addressesFromMetadata(null)).toEqual([]);
  });
});
