import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import type { Duplex } from 'node:stream';
import { Client, type ConnectConfig } from 'ssh2';
import { readSecretFileSync } from '../../config/secret-file.ts';
import { type Dialer, guardErrors } from './index.ts';

export interface SshOptions {
  host: string;
  port?: number;
  user?: string;
  /** Private key file; without it the agent at SSH_AUTH_SOCK is used. */
  keyFile?: string;
  agent?: string;
  /** known_hosts to verify the host key against (default ~/.ssh/known_hosts); fails closed. */
  knownHostsFile?: string;
  /** Skip host key verification: only when the URI says no_verify=1. */
  noVerify?: boolean;
  /** The remote side: libvirt's own helper (default) or netcat to a socket path. */
  proxy?: 'virt-ssh-helper' | 'netcat';
  remoteName: string;
  socketPath?: string;
}

/** Whether a known_hosts host field names this host (plain, [host]:port, or hashed |1|salt|hash). */
export function knownHostMatches(field: string, host: string, port: number): boolean {
  const name = port === 22 ? host : `[${host}]:${port}`;
  return field.split(',').some((f) => {
    if (f.startsWith('|1|')) {
      const [, , salt, hash] = f.split('|');
      if (!salt || !hash) return false;
      return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
    }
    return f === name;
  });
}

/** Host keys known for the host, as raw key blobs. */
export function knownHostKeys(text: string, host: string, port: number): Buffer[] {
  const keys: Buffer[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#') || t.startsWith('@revoked')) continue;
    const parts = t.startsWith('@cert-authority') ? [] : t.split(/\s+/);
    if (parts.length >= 3 && knownHostMatches(parts[0]!, host, port))
      keys.push(Buffer.from(parts[2]!, 'base64'));
  }
  return keys;
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** SSH to the host and run libvirt's helper there; the exec channel is the RPC stream. */
export function sshDialer(o: SshOptions): Dialer {
  const port = o.port ?? 22;
  return {
    describe: `ssh:${o.user ? `${o.user}@` : ''}${o.host}:${port}`,
    dial: (timeoutMs) =>
      new Promise<Duplex>((resolve, reject) => {
        const what = `ssh ${o.host}:${port}`;
        let known: Buffer[] = [];
        if (!o.noVerify) {
          const file = o.knownHostsFile ?? `${homedir()}/.ssh/known_hosts`;
          try {
            known = knownHostKeys(readFileSync(file, 'utf8'), o.host, port);
          } catch (e) {
            reject(
              new Error(
                `${what}: cannot read known_hosts ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`,
              ),
            );
            return;
          }
          if (known.length === 0) {
            reject(new Error(`${what}: host is not in ${file}; refusing to connect to an unverified host`));
            return;
          }
        }
        const conn = new Client();
        let hostKeyRefused = false;
        const config: ConnectConfig = {
          host: o.host,
          port,
          username: o.user ?? 'root',
          readyTimeout: timeoutMs,
          hostVerifier: (key: Buffer) => {
            if (o.noVerify) return true;
            const ok = known.some((k) => k.equals(key));
            if (!ok) hostKeyRefused = true;
            return ok;
          },
        };
        try {
          if (o.keyFile) config.privateKey = readSecretFileSync(o.keyFile);
          else config.agent = o.agent ?? process.env.SSH_AUTH_SOCK;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          reject(
            new Error(
              code
                ? `${what}: cannot read key ${o.keyFile}: ${code}`
                : `${what}: key ${(e as Error).message}`,
            ),
          );
          return;
        }
        const fp = (k: Buffer) =>
          `SHA256:${createHash('sha256').update(k).digest('base64').replace(/=+$/, '')}`;
        let settled = false;
        let stream: Duplex | null = null;
        // Listened for as long as the client lives: ssh2 may emit more than one error (a reset
        // after 'ready', then another on teardown), and one with no listener kills the process.
        conn.on('error', (e: Error) => {
          if (!settled) {
            settled = true;
            conn.end();
            reject(
              new Error(
                hostKeyRefused
                  ? `${what}: host key does not match known_hosts (${known.map(fp).join(', ')})`
                  : `${what}: ${e.message}`,
              ),
            );
            return;
          }
          // After the hand-over the SSH link carried the RPC stream: closing it tells the connection.
          stream?.destroy();
          conn.end();
        });
        conn.once('ready', () => {
          const cmd =
            o.proxy === 'netcat'
              ? `nc -U ${shellQuote(o.socketPath ?? '/var/run/libvirt/libvirt-sock')}`
              : `virt-ssh-helper ${shellQuote(o.remoteName)}`;
          conn.exec(cmd, (err, channel) => {
            if (settled) return;
            settled = true;
            if (err) {
              conn.end();
              reject(new Error(`${what}: cannot run '${cmd}': ${err.message}`));
              return;
            }
            stream = channel;
            guardErrors(channel);
            channel.on('close', () => conn.end());
            channel.stderr.on('data', () => undefined);
            resolve(channel);
          });
        });
        conn.connect(config);
      }),
  };
}
