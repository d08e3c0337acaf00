// libvirt URIs in libvirt's own form, shared by the config checker and the client.

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
