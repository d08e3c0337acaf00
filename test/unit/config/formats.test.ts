import { describe, expect, it } from 'vitest';
import { describeValue } from '../../../src/config/errors.ts';
import {
  assignmentFor,
  formatPath,
  globToRegExp,
  parseLibvirtUri,
  parseListen,
  type VmAssignment,
} from '../../../src/config/index.ts';

describe('parseLibvirtUri', () => {
  it.each([
    ['qemu+tcp://10.100.0.11/system', { transport: 'tcp', host: '10.100.0.11', path: 'system' }],
    ['qemu+tls://h1.example.org/system', { transport: 'tls', host: 'h1.example.org', path: 'system' }],
    ['qemu://h1/system', { transport: 'tls', host: 'h1', path: 'system' }],
    ['qemu+ssh://root@h1:2222/system?keyfile=/k', { transport: 'ssh', host: 'h1', port: 2222, user: 'root' }],
    ['qemu:///system', { transport: 'unix', host: '', path: 'system' }],
    ['qemu+unix:///session', { transport: 'unix', host: '', path: 'session' }],
    ['qemu+tls://[fd00::11]/system', { transport: 'tls', host: 'fd00::11' }],
  ])('accepts %s', (uri, expected) => {
    const parsed = parseLibvirtUri(uri);
    expect(parsed.ok && parsed.value).toMatchObject(expected);
  });

  it('keeps query parameters', () => {
    const parsed = parseLibvirtUri('qemu+ssh://h1/system?keyfile=/k&no_verify=1');
    expect(parsed.ok && parsed.value.params).toEqual({ keyfile: '/k', no_verify: '1' });
  });

  it.each([
    ['http://x', 'a libvirt URI like qemu+tls://host/system'],
    ['not a uri', 'a libvirt URI like qemu+tls://host/system'],
    ['xen://h1/system', 'a libvirt URI like qemu+tls://host/system'],
    ['qemu+tcp:/h1/system', 'a libvirt URI like qemu+tls://host/system'],
    ['qemu+tcp://h1/', 'a libvirt URI like qemu+tls://host/system (path /system or /session)'],
    ['qemu+tcp://h1', 'a libvirt URI like qemu+tls://host/system (path /system or /session)'],
    ['qemu+unix://h1/system', 'a local libvirt URI without a host, like qemu+unix:///system'],
    ['qemu+tcp:///system', 'a libvirt URI with a host for qemu+tcp, like qemu+tcp://host/system'],
  ])('rejects %s', (uri, expected) => {
    expect(parseLibvirtUri(uri)).toEqual({ ok: false, expected });
  });
});

describe('parseListen', () => {
  it.each([
    ['127.0.0.1:7480', { host: '127.0.0.1', port: 7480 }],
    ['[::1]:7480', { host: '::1', port: 7480 }],
    ['keizoku.example.org:443', { host: 'keizoku.example.org', port: 443 }],
  ])('accepts %s', (text, value) => {
    expect(parseListen(text)).toEqual({ ok: true, value });
  });

  it.each(['7480', '127.0.0.1:0', '127.0.0.1:65536', '::1:7480', 'a b:80'])('rejects %s', (text) => {
    expect(parseListen(text).ok).toBe(false);
  });
});

describe('formatPath and describeValue', () => {
  it('writes paths the way an operator reads them', () => {
    expect(formatPath(['hosts', 1, 'uri'])).toBe('hosts[1].uri');
    expect(formatPath(['profiles', 'capped-50', 'cpu'])).toBe('profiles.capped-50.cpu');
    expect(formatPath(['vms', 0, 'match', 'labels', 'app.kubernetes.io/name'])).toBe(
      'vms[0].match.labels["app.kubernetes.io/name"]',
    );
    expect(formatPath([])).toBe('');
  });

  it('shows received values short, hiding URL passwords', () => {
    expect(describeValue('x'.repeat(100))).toBe(`"${'x'.repeat(57)}..."`);
    expect(describeValue('redis://:hunter2@db:6379')).toBe('"redis://:***@db:6379"');
    expect(describeValue(null)).toBe('an empty value');
    expect(describeValue([1])).toBe('a list');
    expect(describeValue({})).toBe('an empty mapping');
    expect(describeValue(-5)).toBe('-5');
  });
});

describe('VM policy assignment', () => {
  const entry = (match: VmAssignment['match'], tier: string): VmAssignment => ({
    match,
    tier,
    haPriority: 0,
  });
  const vms = [
    entry({ name: 'db1' }, 'core'),
    entry({ name: 'web-*', labels: { season: 'tax' } }, 'frontend-seasonal'),
    entry({ name: 'web-?' }, 'frontend'),
    entry({ labels: { role: 'office' } }, 'low'),
  ];

  it.each([
    [{ name: 'db1' }, 'core'],
    [{ name: 'web-tax', labels: { season: 'tax' } }, 'frontend-seasonal'],
    [{ name: 'web-1' }, 'frontend'],
    [{ name: 'web-12' }, undefined],
    [{ name: 'x', labels: { role: 'office' } }, 'low'],
    [{ name: 'db10' }, undefined],
  ])('%j -> %s', (vm, tier) => {
    expect(assignmentFor(vms, vm)?.tier).toBe(tier);
  });

  it('treats regular-expression characters in globs literally', () => {
    expect(globToRegExp('a.b(1)*').test('a.b(1)-x')).toBe(true);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
  });
});
