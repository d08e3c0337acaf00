import { LibvirtClient } from './client.ts';
import { LibvirtConnection } from './connection.ts';
import { AuthUnsupportedError, InsecureTransportError, UriError } from './errors.ts';
import {
  remoteProcedures as P,
  REMOTE_AUTH_NONE,
  REMOTE_AUTH_POLKIT,
  REMOTE_AUTH_SASL,
  remoteProgram,
} from './protocol/generated/remote.ts';
import type { Dialer } from './transport/index.ts';
import { tcpDialer, unixDialer } from './transport/net.ts';
import { sshDialer } from './transport/ssh.ts';
import { defaultTlsMaterial, type TlsMaterial, tlsDialer } from './transport/tls.ts';
import { parseLibvirtUri } from './uri.ts';

export { LibvirtClient } from './client.ts';
export { LibvirtConnection } from './connection.ts';
export * from './errors.ts';

export interface ConnectOptions {
  /** Allow plain TCP (qemu+tcp://): unencrypted and unauthenticated, for labs only. */
  insecure?: boolean;
  tls?: TlsMaterial;
  /** SSH defaults; the URI's keyfile=, known_hosts= and user@ win. */
  ssh?: { user?: string; keyFile?: string; knownHostsFile?: string };
  connectTimeoutMs?: number;
  callTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCount?: number;
  log?: (msg: string) => void;
}

const VIR_DRV_FEATURE_PROGRAM_KEEPALIVE = 10;
const AUTH_NAMES: Record<number, string> = {
  [REMOTE_AUTH_NONE]: 'none',
  [REMOTE_AUTH_SASL]: 'sasl',
  [REMOTE_AUTH_POLKIT]: 'polkit',
};

/** The dialer for a libvirt URI; plain TCP only with `insecure`. */
export function dialerFor(uri: string, opts: ConnectOptions = {}): Dialer {
  const parsed = parseLibvirtUri(uri);
  if (!parsed.ok) throw new UriError(`${uri}: expected ${parsed.expected}`);
  const u = parsed.value;
  if (u.params.no_verify === '1' && !opts.insecure) {
    throw new InsecureTransportError(
      `${uri}: no_verify=1 turns off the server's certificate or host key check; remove it, or mark the host insecure`,
    );
  }
  switch (u.transport) {
    case 'unix':
      return unixDialer(
        u.params.socket ??
          (u.path === 'system'
            ? '/var/run/libvirt/libvirt-sock'
            : `${process.env.XDG_RUNTIME_DIR}/libvirt/libvirt-sock`),
      );
    case 'tcp':
      if (!opts.insecure) {
        throw new InsecureTransportError(
          `${uri}: plain TCP is unencrypted and unauthenticated; use qemu+tls or qemu+ssh, or mark the host insecure`,
        );
      }
      return tcpDialer(u.host, u.port ?? 16509);
    case 'tls':
      return tlsDialer(
        u.host,
        u.port ?? 16514,
        opts.tls ?? defaultTlsMaterial(u.params.pkipath),
        u.params.no_verify !== '1',
      );
    case 'ssh':
      return sshDialer({
        host: u.host,
        port: u.port,
        user: u.user ?? opts.ssh?.user,
        keyFile: u.params.keyfile ?? opts.ssh?.keyFile,
        knownHostsFile: u.params.known_hosts ?? opts.ssh?.knownHostsFile,
        noVerify: u.params.no_verify === '1',
        proxy: u.params.proxy === 'netcat' || u.params.netcat ? 'netcat' : 'virt-ssh-helper',
        remoteName: `qemu:///${u.path}`,
        socketPath: u.params.socket,
      });
  }
}

/** Dials, authenticates (AUTH_NONE only), enables keepalive and opens the remote driver. */
export async function connectLibvirt(uri: string, opts: ConnectOptions = {}): Promise<LibvirtClient> {
  const dialer = dialerFor(uri, opts);
  const stream = await dialer.dial(opts.connectTimeoutMs ?? 10_000);
  const conn = new LibvirtConnection(stream, opts);
  const client = new LibvirtClient(conn);
  try {
    const auth = await client.rpc(P.REMOTE_PROC_AUTH_LIST, undefined, {
      timeoutMs: opts.connectTimeoutMs ?? 10_000,
    });
    if (auth.types.length > 0 && !auth.types.includes(REMOTE_AUTH_NONE)) {
      throw new AuthUnsupportedError(
        `${uri}: server requires ${auth.types.map((t) => AUTH_NAMES[t] ?? t).join(' or ')} authentication, which this client does not support`,
      );
    }
    const ka = await client.rpc(P.REMOTE_PROC_CONNECT_SUPPORTS_FEATURE, {
      feature: VIR_DRV_FEATURE_PROGRAM_KEEPALIVE,
    });
    if (ka.supported) conn.startKeepalive();
    const name = uri
      .replace(/^qemu\+[a-z]+:/, 'qemu:')
      .replace(/\/\/[^/]*\//, '///')
      .replace(/\?.*$/, '');
    await client.rpc(P.REMOTE_PROC_CONNECT_OPEN, { name, flags: 0 });
    return client;
  } catch (e) {
    await conn.close();
    throw e;
  }
}

export { remoteProgram };
