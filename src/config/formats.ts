import { isIP } from 'node:net';

import type { Parsed } from '../libvirt/uri.ts';

export {
  LIBVIRT_URI_EXAMPLE,
  type LibvirtTransport,
  type LibvirtUri,
  type Parsed,
  parseLibvirtUri,
} from '../libvirt/uri.ts';

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** An IPv4 or IPv6 address or a DNS host name. */
export function isHostAddress(text: string): boolean {
  return isIP(text) !== 0 || HOSTNAME.test(text);
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

const LISTEN = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/;
export const LISTEN_EXAMPLE = 'host:port like 127.0.0.1:7480 or [::1]:7480';

/** `host:port` with an IPv6 host in brackets; port 1-65535. */
export function parseListen(text: string): Parsed<ListenAddress> {
  const m = LISTEN.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (host === undefined || !isHostAddress(host) || !(port >= 1 && port <= 65535)) {
    return { ok: false, expected: LISTEN_EXAMPLE };
  }
  return { ok: true, value: { host, port } };
}

/** True for addresses that only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export const REDIS_URL_EXAMPLE = 'a Redis URL like redis://127.0.0.1:6379/0 or rediss://host:6380';

export function isRedisUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** IANA time zone known to this Node (`Asia/Tokyo`, `UTC`). */
export function isTimeZone(text: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: text });
    return true;
  } catch {
    return false;
  }
}
