import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { ROLES, type Role } from '../api/auth/rbac.ts';
import { TokenError, type TokenInfo, TokenStore } from '../api/auth/tokens.ts';
import { formatConfigError, isConfigError, type LoadedConfig, loadConfig } from '../config/index.ts';
import { redisOptions } from '../jobs/connection.ts';
import { AuditLog } from '../store/audit.ts';
import { CLUSTER_PREFIX as PREFIX } from '../store/keys.ts';

const USAGE = `usage: keizokud token create --config FILE --name NAME --role ROLE [--vms VM,...] [--allow-migrate]
                             [--probe-name AGENT --site SITE] [--json]
       keizokud token list   --config FILE [--json]
       keizokud token revoke --config FILE ID
  roles: ${ROLES.join(', ')} (vm-admin needs --vms: names or globs like web-*;
  probe needs --probe-name and --site: the agent it is for, whatever the agent says)
  The token is printed once, on creation; only its hash is kept.`;

/** `keizokud token ...`: API tokens, made and revoked on the controller host (admin's job). */
export async function tokenCommand(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    process.stderr.write(`keizokud token: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const [verb, ...rest] = positionals;
  if (v.help || verb === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return verb === undefined && !v.help ? 2 : 0;
  }
  if (!v.config) {
    process.stderr.write(`keizokud token: --config FILE is required\n${USAGE}\n`);
    return 2;
  }
  let loaded: LoadedConfig;
  try {
    loaded = await loadConfig(v.config);
  } catch (e) {
    if (!isConfigError(e)) throw e;
    process.stderr.write(`${formatConfigError(e)}\n`);
    return 1;
  }
  // Through sentinels a command waits through a promotion, as keizokud's own do; else one retry.
  const redis = new Redis({
    ...(loaded.config.redis.sentinels ? {} : { maxRetriesPerRequest: 1 }),
    ...redisOptions(loaded.config.redis),
    lazyConnect: true,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
  } catch (e) {
    const at = loaded.config.redis.sentinels ? 'through redis.sentinels' : 'at redis.url';
    process.stderr.write(`keizokud token: cannot reach Redis ${at}: ${(e as Error).message}\n`);
    redis.disconnect();
    return 1;
  }
  const tokens = new TokenStore(redis, PREFIX);
  const audit = new AuditLog(redis, PREFIX, { ...loaded.config.audit, timeZone: loaded.config.timeZone });
  const actor = {
    actor: `local:${userInfo().username}`,
    actorName: `local:${userInfo().username}`,
    role: 'admin',
  };
  try {
    switch (verb) {
      case 'create': {
        if (!v.name || !v.role) throw new TokenError('create needs --name and --role');
        if (!(ROLES as readonly string[]).includes(v.role))
          throw new TokenError(`--role: unknown role "${v.role}" (one of ${ROLES.join(', ')})`);
        const vms = (v.vms ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const probe =
          v['probe-name'] !== undefined || v.site !== undefined
            ? { name: v['probe-name'] ?? '', site: v.site ?? '' }
            : undefined;
        if (probe && (!probe.name || !probe.site))
          throw new TokenError('--probe-name and --site go together (the agent and its site)');
        const { token, info } = await tokens
          .create({
            name: v.name,
            role: v.role as Role,
            vms,
            allowMigrate: v['allow-migrate'] ?? false,
            ...(probe ? { probe } : {}),
          })
          .catch(async (e: Error) => {
            await audit.record({
              ...actor,
              action: 'token.create',
              target: v.name!,
              params: { role: v.role, vms, ...(probe ? { probe } : {}) },
              outcome: 'rejected',
              message: e.message,
            });
            throw e;
          });
        await audit.record({
          ...actor,
          action: 'token.create',
          target: info.id,
          params: { name: info.name, role: info.role, vms, ...(info.probe ? { probe: info.probe } : {}) },
          outcome: 'succeeded',
        });
        if (v.json) process.stdout.write(`${JSON.stringify({ token, ...info })}\n`);
        else process.stdout.write(`${token}\n`);
        if (!v.json) process.stderr.write(`token ${info.id} (${info.role}) created; it is not shown again\n`);
        return 0;
      }
      case 'list': {
        const list = await tokens.list();
        if (v.json) process.stdout.write(`${JSON.stringify({ tokens: list })}\n`);
        else process.stdout.write(table(list));
        return 0;
      }
      case 'revoke': {
        const id = rest[0];
        if (!id) throw new TokenError('revoke needs the token id (see keizokud token list)');
        const info = await tokens.revoke(id).catch(async (e: Error) => {
          await audit.record({
            ...actor,
            action: 'token.revoke',
            target: id,
            params: {},
            outcome: 'rejected',
            message: e.message,
          });
          throw e;
        });
        await audit.record({
          ...actor,
          action: 'token.revoke',
          target: id,
          params: {},
          outcome: 'succeeded',
        });
        process.stdout.write(v.json ? `${JSON.stringify(info)}\n` : `token ${id} revoked\n`);
        return 0;
      }
      default:
        throw new TokenError(`unknown command "${verb}" (create, list or revoke)`);
    }
  } catch (e) {
    if (!(e instanceof TokenError)) throw e;
    process.stderr.write(`keizokud token: ${e.message}\n`);
    return 2;
  } finally {
    await audit.close();
    redis.disconnect();
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string' },
      vms: { type: 'string' },
      'allow-migrate': { type: 'boolean' },
      'probe-name': { type: 'string' },
      site: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function table(list: TokenInfo[]): string {
  const rows = [
    ['ID', 'NAME', 'ROLE', 'VMS', 'CREATED', 'REVOKED'],
    ...list.map((t) => [
      t.id,
      t.name,
      t.role + (t.allowMigrate ? '+migrate' : '') + (t.probe ? `(${t.probe.name}@${t.probe.site})` : ''),
      t.vms.join(',') || '-',
      new Date(t.createdAt).toISOString(),
      t.revokedAt ? new Date(t.revokedAt).toISOString() : '-',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return `${rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}
