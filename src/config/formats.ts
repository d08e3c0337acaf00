import { isIP } from 'node:net';

/** How keizokud reaches a libvirtd. `qemu://host/...` (no transport) is TLS, as in libvirt. */
export type LibvirtTransport = 'tls' | 'ssh' | 'tcp' | 'unix';

export interface LibvirtUri {
  readonly transport: LibvirtTransport;
  /** Empty for the local unix socket. */
  readonly host: string;
  readonly port?: number;
  readonly user?: string;
  readonly path: 'system' | 'session';
  /** Query parameters as given (`?socket=...`, `?keyfile=...`). */
  readonly params: Readonly<Record<string, string>>;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string };

export const LIBVIRT_URI_EXAMPLE = 'a libvirt URI like qemu+tls://host/system';
const SCHEME = /^qemu(?:\+(tls|ssh|tcp|unix))?:$/;

/**
 * Checks a libvirt URI the way keizokud uses it: `qemu[+tls|+ssh|+tcp|+unix]://[user@]host[:port]/system`
 * (or `/session`). On failure, says what was expected, for `expected X, got "uri"`.
 */
export function parseLibvirtUri(text: string): Parsed<LibvirtUri> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, expected: LIBVIRT_URI_EXAMPLE };
  }
  const scheme = SCHEME.exec(url.protocol);
  if (!scheme || !text.includes('://')) return { ok: false, expected: LIBVIRT_URI_EXAMPLE };
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const transport: LibvirtTransport = (scheme[1] as LibvirtTransport | undefined) ?? (host ? 'tls' : 'unix');
  if (url.pathname !== '/system' && url.pathname !== '/session') {
    return { ok: false, expected: `${LIBVIRT_URI_EXAMPLE} (path /system or /session)` };
  }
  if (transport === 'unix' && host !== '') {
    return { ok: false, expected: 'a local libvirt URI without a host, like qemu+unix:///system' };
  }
  if (transport !== 'unix' && host === '') {
    return {
      ok: false,
      expected: `a libvirt URI with a host for qemu+${transport}, like qemu+${transport}://host/system`,
    };
  }
  const params: Record<string, string> = {};
  for (const [k, v] of url.searchParams) params[k] = v;
  return {
    ok: true,
    value: {
      transport,
      host,
      ...(url.port ? { port: Number(url.port) } : {}),
      ...(url.username ? { user: decodeURIComponent(url.username) } : {}),
      path: url.pathname === '/system' ? 'system' : 'session',
      params,
    },
  };
}

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
