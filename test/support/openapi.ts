import { Ajv, type ValidateFunction } from 'ajv';

/**
 * The published OpenAPI document as a contract: a lint of what a client relies on (the
 * parts of Redocly's recommended rules that matter to one), and a check of real responses
 * against it. The check is strict where the document is open: an object schema that lists
 * its properties accepts no others here, so a field the code sends and the document does
 * not describe fails the test instead of going unnoticed.
 */

// biome-ignore lint/suspicious/noExplicitAny: the document is JSON of a known shape, walked loosely
type Json = any;

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

export interface Operation {
  method: string;
  path: string;
  op: Json;
}

export function operationsOf(doc: Json): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries<Json>(doc.paths ?? {}))
    for (const m of METHODS) if (item[m]) out.push({ method: m.toUpperCase(), path, op: item[m] });
  return out;
}

/** What a client relies on; each string names the operation and what it lacks. */
export function lintDocument(doc: Json): string[] {
  const problems: string[] = [];
  if (!Array.isArray(doc.servers) || doc.servers.length === 0) problems.push('document: no servers');
  for (const s of doc.servers ?? [])
    if (typeof s.url !== 'string' || (s.url.endsWith('/') && s.url !== '/'))
      problems.push(`servers: "${s.url}" ends with a slash`);
  if (!doc.info?.license?.name) problems.push('info: no license');
  const tags = new Map<string, Json>((doc.tags ?? []).map((t: Json) => [t.name, t]));
  for (const [name, t] of tags) if (!t.description) problems.push(`tag ${name}: no description`);
  const ids = new Map<string, string>();
  for (const { method, path, op } of operationsOf(doc)) {
    const where = `${method} ${path}`;
    const id = op.operationId;
    if (!id) problems.push(`${where}: no operationId`);
    else if (!/^[A-Za-z0-9_.~-]+$/.test(id)) problems.push(`${where}: operationId "${id}" is not URL-safe`);
    else if (ids.has(id)) problems.push(`${where}: operationId "${id}" also names ${ids.get(id)}`);
    else ids.set(id, where);
    if (!op.summary) problems.push(`${where}: no summary`);
    for (const t of op.tags ?? []) if (!tags.has(t)) problems.push(`${where}: tag "${t}" is not declared`);
    const codes = Object.keys(op.responses ?? {});
    const success = codes.filter((c) => /^2/.test(c));
    if (success.length === 0) problems.push(`${where}: no success response`);
    for (const c of success) {
      const r = op.responses[c];
      if (r.description === 'Default Response') problems.push(`${where}: ${c} has no description`);
      const content = Object.values<Json>(r.content ?? {});
      if (c !== '204' && (content.length === 0 || content.some((m) => !m.schema)))
        problems.push(`${where}: ${c} has no schema`);
    }
    if (!codes.some((c) => /^4/.test(c))) problems.push(`${where}: no 4xx response`);
    if (!codes.some((c) => /^5/.test(c))) problems.push(`${where}: no 5xx response`);
    const declared = new Set(
      (op.parameters ?? []).filter((p: Json) => p.in === 'path').map((p: Json) => p.name),
    );
    for (const m of path.matchAll(/\{([^}]+)\}/g))
      if (!declared.has(m[1])) problems.push(`${where}: path parameter ${m[1]} is not declared`);
  }
  for (const ref of refsIn(doc))
    if (resolvePointer(doc, ref) === undefined) problems.push(`$ref ${ref} does not resolve`);
  return problems;
}

function refsIn(node: Json, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const v of node) refsIn(v, out);
  else if (node && typeof node === 'object')
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refsIn(v, out);
    }
  return out;
}

function resolvePointer(doc: Json, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let at: Json = doc;
  for (const part of ref.slice(2).split('/')) {
    at = at?.[part.replaceAll('~1', '/').replaceAll('~0', '~')];
    if (at === undefined) return undefined;
  }
  return at;
}

/** A copy in which every object schema that lists properties accepts no others. */
export function strict(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(strict);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Json = {};
  for (const [k, v] of Object.entries<Json>(schema)) {
    if (k === 'properties')
      out[k] = Object.fromEntries(Object.entries<Json>(v).map(([p, s]) => [p, strict(s)]));
    else if (['items', 'anyOf', 'oneOf', 'additionalProperties', 'not'].includes(k)) out[k] = strict(v);
    else out[k] = v;
  }
  if (out.properties && out.additionalProperties === undefined && !out.allOf)
    out.additionalProperties = false;
  return out;
}

export interface Exchange {
  method: string;
  /** As requested, with its query string. */
  url: string;
  status: number;
  contentType: string | null;
  body: unknown;
}

/** Routes the document leaves out on purpose (docs/api.md lists them). */
const UNDOCUMENTED = new Set(['/healthz', '/readyz', '/metrics', '/v1/openapi.json']);

export class Contract {
  private readonly ops: { method: string; path: string; re: RegExp; op: Json }[];
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly ajv = new Ajv({ strict: false, allErrors: true });

  constructor(readonly doc: Json) {
    this.ops = operationsOf(doc).map((o) => ({
      ...o,
      re: new RegExp(`^${o.path.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`),
    }));
  }

  /** The documented operation a request goes to (null: none). */
  operationFor(method: string, path: string): Json | null {
    return this.ops.find((o) => o.method === method && o.re.test(path))?.op ?? null;
  }

  /** Why the exchange does not fit the document (empty: it does). */
  check(x: Exchange): string[] {
    const path = x.url.split('?')[0]!;
    const where = `${x.method} ${x.url.slice(0, 120)} → ${x.status}`;
    if (UNDOCUMENTED.has(path) || x.method === 'HEAD') return [];
    const op = this.operationFor(x.method, path);
    if (!op) {
      // No such route: the API's not-found answer, the same for every path.
      if (x.status === 404 && isError(x.body)) return [];
      return [`${where}: no operation in the document`];
    }
    const responses = op.responses ?? {};
    const code = String(x.status);
    const key = [code, `${code[0]}XX`, 'default'].find((k) => responses[k]);
    if (!key)
      return [
        `${where}: status not in the document (${op.operationId} has ${Object.keys(responses).join(', ')})`,
      ];
    const content = responses[key].content;
    if (!content)
      return x.body === '' || x.body === undefined ? [] : [`${where}: the document gives no body`];
    const type = (x.contentType ?? '').split(';')[0]!.trim();
    const media = content[type];
    if (!media)
      return [`${where}: content type "${type}" not in the document (${Object.keys(content).join(', ')})`];
    if (!media.schema) return [];
    const id = `${op.operationId}:${key}:${type}`;
    let validate = this.compiled.get(id);
    if (!validate) {
      validate = this.ajv.compile(strict(media.schema));
      this.compiled.set(id, validate);
    }
    if (validate(x.body)) return [];
    return (validate.errors ?? []).slice(0, 5).map((e) => {
      const extra = e.params && 'additionalProperty' in e.params ? ` ("${e.params.additionalProperty}")` : '';
      return `${where}: body${e.instancePath} ${e.message}${extra}`;
    });
  }
}

function isError(body: unknown): boolean {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return typeof e?.code === 'string' && typeof e.message === 'string';
}
