import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

/**
 * The CLI's connection to keizokud: server URL, token and TLS material from flags, then the
 * environment (KEIZOKU_URL, KEIZOKU_TOKEN), then a config file (KEIZOKU_CONFIG or
 * ~/.config/keizoku/cli.yaml), in that order.
 */

export interface ClientSettings {
  server: string;
  token: string | null;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Exit codes scripts can rely on (also in docs/cli.md). */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  auth: 3,
  notFound: 4,
  conflict: 5,
  unreachable: 6,
} as const;

export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

interface FileSettings {
  server?: string;
  token?: string;
  tokenFile?: string;
  ca?: string;
  cert?: string;
  key?: string;
}

export interface SettingFlags {
  server?: string;
  token?: string;
  tokenFile?: string;
  ca?: string;
}

function readFileSetting(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new CliError(
      `${what}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      EXIT.usage,
    );
  }
}

export function resolveSettings(flags: SettingFlags, env: NodeJS.ProcessEnv = process.env): ClientSettings {
  const file = env.KEIZOKU_CONFIG ?? join(homedir(), '.config/keizoku/cli.yaml');
  let fromFile: FileSettings = {};
  try {
    const raw = readFileSync(file, 'utf8');
    const parsed = parseYaml(raw) as unknown;
    if (parsed !== null && typeof parsed === 'object') fromFile = parsed as FileSettings;
    else throw new CliError(`${file}: expected a mapping with server and token`, EXIT.usage);
  } catch (e) {
    if (e instanceof CliError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' || env.KEIZOKU_CONFIG)
      throw new CliError(`${file}: ${(e as Error).message}`, EXIT.usage);
  }
  const server = flags.server ?? env.KEIZOKU_URL ?? fromFile.server ?? 'http://127.0.0.1:7480';
  if (!/^https?:\/\/[^\s/]+/.test(server))
    throw new CliError(`server "${server}" is not an http:// or https:// URL`, EXIT.usage);
  const tokenFile = flags.tokenFile ?? fromFile.tokenFile;
  const token =
    flags.token ??
    (flags.tokenFile ? readFileSetting(flags.tokenFile, '--token-file').toString().trim() : undefined) ??
    env.KEIZOKU_TOKEN ??
    fromFile.token ??
    (tokenFile ? readFileSetting(tokenFile, 'tokenFile').toString().trim() : null);
  const ca = flags.ca ?? fromFile.ca;
  return {
    server: server.replace(/\/+$/, ''),
    token,
    ...(ca ? { ca: readFileSetting(ca, 'ca') } : {}),
    ...(fromFile.cert ? { cert: readFileSetting(fromFile.cert, 'cert') } : {}),
    ...(fromFile.key ? { key: readFileSetting(fromFile.key, 'key') } : {}),
  };
}

export interface ApiReply<T> {
  status: number;
  body: T;
}

export class ApiClient {
  constructor(private readonly s: ClientSettings) {}

  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.raw<T & { error?: { message?: string; code?: string } }>(method, path, body);
    if (r.status < 400) return r.body;
    const message = r.body?.error?.message ?? `HTTP ${r.status}`;
    const code =
      r.status === 401 || r.status === 403
        ? EXIT.auth
        : r.status === 404
          ? EXIT.notFound
          : r.status === 409
            ? EXIT.conflict
            : r.status < 500
              ? EXIT.usage
              : EXIT.failed;
    throw new CliError(message, code);
  }

  raw<T>(method: string, path: string, body?: unknown): Promise<ApiReply<T>> {
    const url = new URL(this.s.server + path);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.s.token) headers.authorization = `Bearer ${this.s.token}`;
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(
        url,
        {
          method,
          headers,
          timeout: 30_000,
          ...(this.s.ca ? { ca: this.s.ca } : {}),
          ...(this.s.cert ? { cert: this.s.cert } : {}),
          ...(this.s.key ? { key: this.s.key } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            let parsed: unknown = text;
            try {
              parsed = text ? JSON.parse(text) : null;
            } catch {
              // Not JSON: kept as text.
            }
            resolve({ status: res.statusCode ?? 0, body: parsed as T });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
      req.on('error', (e: NodeJS.ErrnoException) =>
        reject(
          new CliError(`cannot reach keizokud at ${this.s.server}: ${e.code ?? e.message}`, EXIT.unreachable),
        ),
      );
      req.end(payload);
    });
  }
}
