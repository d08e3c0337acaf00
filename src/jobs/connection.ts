import type { RedisOptions } from 'ioredis';
import type { DeepReadonly } from '../config/index.ts';
import type { RedisConfig } from '../config/schema.ts';
import { readSecretFileSync } from '../config/secret-file.ts';

/** Where Redis is: the config's `redis` section, or a bare URL (tools and tests). */
export type RedisTarget = string | DeepReadonly<RedisConfig>;

/**
 * ioredis options for every Redis connection keizokud makes (the store, the lease, BullMQ).
 * With `sentinels`, ioredis asks them for the primary named `sentinelName` and, when the
 * connection to it is lost, asks them again until they name a promoted one; the URL gives the database, user,
 * password and TLS only. Passwords are read here, from the URL or the secret file, never logged.
 */
export function redisOptions(target: RedisTarget): RedisOptions {
  const r = typeof target === 'string' ? { url: target } : target;
  const u = new URL(r.url);
  const common: RedisOptions = {
    db: Number(u.pathname.slice(1) || 0),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
  const tls = u.protocol === 'rediss:';
  if (!r.sentinels || !r.sentinelName)
    return {
      ...common,
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: Number(u.port || 6379),
      ...(tls ? { tls: {} } : {}),
    };
  return {
    ...common,
    name: r.sentinelName,
    sentinels: r.sentinels.map(sentinelAddress),
    ...(r.sentinelPasswordFile ? { sentinelPassword: secretText(r.sentinelPasswordFile) } : {}),
    ...(tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
    // No +switch-master detector: with it, a connection whose reconnect was in flight when the
    // message came ended for good ("Connection is closed."): 19 of 440 connections in 3 of 22
    // promotions (bench:sentinel-clients); without it none of 400, and writes landed as soon.
    failoverDetector: false,
    // Until the sentinels have promoted a replica they still name the dead primary: retry often
    // (at most every 500 ms, ioredis's default backs off to 2 s) so the new one is found soon.
    retryStrategy: (attempt: number) => Math.min(attempt * 50, 500),
    // A command waits through a promotion instead of failing at the first refused reconnect
    // (a job's lock, slot or audit write failing would fail the move): 40 attempts are ~18 s.
    maxRetriesPerRequest: PROMOTION_RETRIES,
  };
}

/** Reconnect attempts a command waits for in sentinel mode: 50, 100, ... 500 ms, then 500 ms each. */
export const PROMOTION_RETRIES = 40;

/** Options for BullMQ's own Redis connections (its blocking commands need no retry limit). */
export function bullConnection(target: RedisTarget): RedisOptions {
  return { ...redisOptions(target), maxRetriesPerRequest: null };
}

/** `10.0.0.5:26379` or `[fd00::5]:26379` (validated by the config). */
function sentinelAddress(hostPort: string): { host: string; port: number } {
  const i = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hostPort.slice(i + 1)) };
}

/** A password file's text without its final newline. */
function secretText(path: string): string {
  return readSecretFileSync(path)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}
