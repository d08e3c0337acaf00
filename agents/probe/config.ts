import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, formatConfigError } from '../../src/config/errors.ts';
import { displayPath } from '../../src/config/files.ts';
import { isHostAddress, parseListen } from '../../src/config/formats.ts';
import { secretModeProblem } from '../../src/config/secret-file.ts';
import { readYaml } from '../../src/config/yaml-file.ts';
import { validate } from '../../src/config/zod-issues.ts';

/** keizoku-probe's config file (docs/probe.md). Strict: unknown fields are errors naming them. */

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, {
  message: 'expected 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit',
});
const address = z
  .string()
  .refine((s) => isHostAddress(s), { message: 'expected an IP address or host name' });

export const probeConfigSchema = z
  .strictObject({
    name,
    site: name,
    listen: z
      .string()
      .refine((s) => parseListen(s).ok, { message: 'expected host:port, like 127.0.0.1:9464' })
      .default('127.0.0.1:9464'),
    /** One probe per address every intervalMs. */
    intervalMs: z.int().min(10).max(10_000).default(100),
    /**
     * How probes are sent: `fping`, one process per 50 addresses, paced exactly (100 Hz at
     * 10 ms); `ping`, one iputils ping per address (at most every ~16 ms; docs/probe.md).
     */
    prober: z.enum(['fping', 'ping']).default('fping'),
    /** A reply later than this counts as lost. */
    timeoutMs: z.int().min(10).max(10_000).default(1_000),
    /** How long samples are kept for /v1/window (16 bytes a probe). */
    retentionSec: z.int().min(10).max(86_400).default(900),
    /** An outage is reported when it lasted at least this many intervals. */
    reportAfterIntervals: z.int().min(1).max(1000).default(2),
    controller: z
      .strictObject({
        url: z.string().regex(/^https?:\/\/\S+$/, { message: 'expected an http:// or https:// URL' }),
        tokenFile: z.string().min(1),
        /** How often the VM list is read with followController. */
        refreshSec: z.int().min(1).max(3600).default(10),
      })
      .optional(),
    targets: z.array(z.strictObject({ name, addresses: z.array(address).min(1).max(16) })).default([]),
    /** Probe every running VM of the controller's list that has addresses. */
    followController: z.boolean().default(false),
  })
  .refine((c) => !c.followController || c.controller !== undefined, {
    message: 'followController needs controller (url and tokenFile)',
    path: ['followController'],
  })
  .refine((c) => c.followController || c.targets.length > 0, {
    message: 'expected targets, followController: true, or both',
    path: ['targets'],
  })
  .superRefine((c, ctx) => {
    const seen = new Map<string, number>();
    c.targets.forEach((t, i) => {
      const first = seen.get(t.name);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          message: `"${t.name}" is already the name of targets[${first}]`,
          path: ['targets', i, 'name'],
        });
      else seen.set(t.name, i);
    });
  });

export type ProbeConfig = z.output<typeof probeConfigSchema> & { token: string | null };

/** Loads and checks the file; throws ConfigError (format with formatProbeConfigError). */
export async function loadProbeConfig(file: string): Promise<ProbeConfig> {
  const abs = resolve(file);
  const shown = displayPath(abs);
  const read = await readYaml(abs, shown, 'a mapping with name, site and targets or followController');
  if (!read.ok) throw new ConfigError(read.issues);
  const parsed = validate(probeConfigSchema, read.data, shown);
  if (!parsed.ok) throw new ConfigError(parsed.issues);
  const c = parsed.value;
  let token: string | null = null;
  if (c.controller) {
    const tokenFile = resolve(dirname(abs), c.controller.tokenFile);
    try {
      token = readFileSync(tokenFile, 'utf8').trim();
    } catch (e) {
      throw new ConfigError([
        {
          file: shown,
          path: ['controller', 'tokenFile'],
          message: `cannot read ${displayPath(tokenFile)}: ${(e as NodeJS.ErrnoException).code ?? e}`,
        },
      ]);
    }
    const open = secretModeProblem(statSync(tokenFile).mode);
    if (open)
      throw new ConfigError([
        {
          file: shown,
          path: ['controller', 'tokenFile'],
          message: `${open}: chmod 600 ${displayPath(tokenFile)}`,
        },
      ]);
    if (!token)
      throw new ConfigError([
        { file: shown, path: ['controller', 'tokenFile'], message: 'the token file is empty' },
      ]);
  }
  return { ...c, token };
}

export const formatProbeConfigError = formatConfigError;
