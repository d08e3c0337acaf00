import { z } from 'zod';
import {
  isHostAddress,
  isRedisUrl,
  isTimeZone,
  LISTEN_EXAMPLE,
  type Parsed,
  parseListen,
  REDIS_URL_EXAMPLE,
} from './formats.ts';
import { expectedGot } from './zod-issues.ts';

/** Field types shared by the config and policy schemas, each with its operator-facing wording. */

/** A string accepted by `ok`; any failure (wrong type, missing, rejected) reads `expected <expected>, got ...`. */
export function text(expected: string, ok: (s: string) => boolean = (s) => s.length > 0) {
  return z.string({ error: (iss) => expectedGot(expected, iss.input) }).refine(ok);
}

/** A string checked by a parser that explains what it expected. */
export function parsedText<T>(example: string, parse: (s: string) => Parsed<T>) {
  return z.string({ error: (iss) => expectedGot(example, iss.input) }).superRefine((value, ctx) => {
    const parsed = parse(value);
    if (!parsed.ok)
      ctx.addIssue({ code: 'custom', input: value, message: expectedGot(parsed.expected, value) });
  });
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const NAME_EXPECTED =
  'a name of letters, digits, ".", "_" or "-" (at most 63, starting with a letter or digit)';

/** Names of sites, hosts, tiers, profiles and groups. */
export const name = text(NAME_EXPECTED, (s) => NAME.test(s));

/** A file path; relative paths are taken from the directory of the file that names them. */
export const filePath = text('a file path');

export const hostAddress = text('an IP address or host name', isHostAddress);

export const listen = parsedText(LISTEN_EXAMPLE, parseListen);

export const redisUrl = text(REDIS_URL_EXAMPLE, isRedisUrl);

export const timeZone = text('an IANA time zone like Asia/Tokyo or UTC', isTimeZone);

/** A whole number of milliseconds, at least `min`. */
export function millis(min: number, fallback: number) {
  return z.int().min(min).default(fallback);
}

export const positiveInt = z.int().min(1);
