import { chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * git records no file modes beyond the executable bit, so a checkout leaves the fixture keys
 * 0644, which keizokud refuses (a secret file must be readable by its owner only).
 */
const SECRET_FIXTURES = ['config/valid/pki/key.pem'];

export default function setup(): void {
  for (const f of SECRET_FIXTURES)
    chmodSync(fileURLToPath(new URL(`../fixtures/${f}`, import.meta.url)), 0o600);
}
