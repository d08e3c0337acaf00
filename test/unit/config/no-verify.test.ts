import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatConfigError, isConfigError, loadConfig } from '../../../src/config/index.ts';
import { InsecureTransportError } from '../../../src/libvirt/errors.ts';
import { dialerFor } from '../../../src/libvirt/index.ts';

const FIXTURES = fileURLToPath(new URL('../../fixtures/config/no-verify/', import.meta.url));
const shown = (name: string) => relative(process.cwd(), join(FIXTURES, `${name}.yaml`));

async function problems(name: string): Promise<string> {
  const e = await loadConfig(shown(name), {}).then(
    () => undefined,
    (x: unknown) => x,
  );
  if (!isConfigError(e)) throw new Error(`${name}: expected a config error, got ${e}`);
  return formatConfigError(e);
}

describe('no_verify=1 in a host URI', () => {
  it('F23: --check-config refuses no_verify=1 in a host URI without insecure: true, naming host and field', async () => {
    expect(await problems('tls-without-insecure')).toBe(
      `${shown('tls-without-insecure')}: hosts[0].uri: host "h1" turns off server verification (no_verify=1), which needs insecure: true (lab only)`,
    );
  });

  it('F23: and in its migration URI', async () => {
    expect(await problems('ssh-migration-without-insecure')).toBe(
      `${shown('ssh-migration-without-insecure')}: hosts[0].migrationUri: host "h1" turns off server verification (no_verify=1), which needs insecure: true (lab only)`,
    );
  });

  it('F23: with insecure: true it is accepted, with a warning that the server is not verified', async () => {
    const loaded = await loadConfig(shown('tls-insecure'), {});
    expect(loaded.warnings).toEqual([
      `${shown('tls-insecure')}: hosts[0].uri: host "h1" does not verify its server (no_verify=1)`,
    ]);
  });

  it('F23: the dialer refuses no_verify=1 unless the caller passes insecure', () => {
    for (const uri of [
      'qemu+tls://h1.example/system?no_verify=1',
      'qemu+ssh://h1.example/system?no_verify=1',
    ]) {
      expect(() => dialerFor(uri)).toThrow(InsecureTransportError);
      expect(() => dialerFor(uri, { insecure: true })).not.toThrow();
    }
    expect(() => dialerFor('qemu+tls://h1.example/system?no_verify=0')).not.toThrow();
  });
});
