import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { knownHostKeys, knownHostMatches } from '../../../src/libvirt/transport/ssh.ts';

describe('known_hosts matching', () => {
  it('matches plain names, lists, [host]:port and hashed entries', () => {
    expect(knownHostMatches('10.0.0.1', '10.0.0.1', 22)).toBe(true);
    expect(knownHostMatches('a.example,10.0.0.1', '10.0.0.1', 22)).toBe(true);
    expect(knownHostMatches('10.0.0.1', '10.0.0.1', 2222)).toBe(false);
    expect(knownHostMatches('[10.0.0.1]:2222', '10.0.0.1', 2222)).toBe(true);
    const salt = Buffer.from('0123456789abcdefghij');
    const hash = createHmac('sha1', salt).update('h1.example').digest('base64');
    expect(knownHostMatches(`|1|${salt.toString('base64')}|${hash}`, 'h1.example', 22)).toBe(true);
    expect(knownHostMatches(`|1|${salt.toString('base64')}|${hash}`, 'h2.example', 22)).toBe(false);
  });

  it('collects the keys of the host and skips comments, markers and other hosts', () => {
    const text = [
      '# comment',
      '10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==',
      '10.0.0.2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB==',
      '@revoked 10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC==',
      '@cert-authority *.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID==',
    ].join('\n');
    expect(knownHostKeys(text, '10.0.0.1', 22).map((k) => k.toString('base64'))).toEqual([
      'AAAAC3NzaC1lZDI1NTE5AAAAIA==',
    ]);
    expect(knownHostKeys(text, '10.0.0.9', 22)).toEqual([]);
  });
});
