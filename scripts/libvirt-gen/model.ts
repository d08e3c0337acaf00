/**
 * Cross-file symbol table: resolves constant names (including those taken from libvirt's C
 * headers, see externs.ts), checks that every referenced type exists, maps XDR names to
 * TypeScript names and finds the RPC programs and their procedures.
 */
import type { Definition, NamedDecl, SourcePos, TypeDefinition, TypeSpec, Value, XFile } from './ast.ts';
import { EXTERN_CONSTANTS } from './externs.ts';

/** Name of the generated module holding the extern constants and shared helpers. */
export const COMMON_MODULE = 'common';

export interface ModuleInput {
  /** Generated module name, e.g. `remote` for `remote.ts`. */
  readonly module: string;
  readonly x: XFile;
}

export interface ConstSymbol {
  readonly name: string;
  readonly value: number;
  readonly module: string;
}

export interface TypeSymbol {
  readonly def: TypeDefinition;
  readonly module: string;
}

export interface Procedure {
  /** e.g. `REMOTE_PROC_DOMAIN_GET_INFO` */
  readonly name: string;
  readonly number: number;
  /** XDR type names of the payloads (null: no such type, i.e. void). */
  readonly args: string | null;
  readonly ret: string | null;
  readonly msg: string | null;
}

export interface Program {
  /** e.g. `remote` (from the `remote_procedure` enum) */
  readonly prefix: string;
  readonly programConst: string;
  readonly versionConst: string;
  readonly procedureEnum: string;
  readonly procedures: readonly Procedure[];
}

export class ModelError extends Error {
  constructor(pos: SourcePos | null, message: string) {
    super(pos ? `${pos.file}:${pos.line}: ${message}` : message);
    this.name = 'ModelError';
  }
}

// ---- naming -------------------------------------------------------------------------------------

/** XDR type name -> TS type name: split on `_`, upper-case each part's first letter, join. */
export function tsTypeName(xdrName: string): string {
  return xdrName
    .split('_')
    .filter((p) => p !== '')
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join('');
}

/** XDR member name -> TS property name: drop each `_` and upper-case the letter after it. */
export function tsFieldName(xdrName: string): string {
  return xdrName.replace(/_+([A-Za-z0-9])/g, (_m, c: string, offset: number) =>
    offset === 0 ? c : c.toUpperCase(),
  );
}

export function lowerFirst(s: string): string {
  return s[0]!.toLowerCase() + s.slice(1);
}

// ---- model --------------------------------------------------------------------------------------

export class Model {
  readonly consts = new Map<string, ConstSymbol>();
  readonly types = new Map<string, TypeSymbol>();
  readonly modules: readonly ModuleInput[];

  constructor(modules: readonly ModuleInput[]) {
    this.modules = modules;
    for (const [name, value] of Object.entries(EXTERN_CONSTANTS)) {
      this.consts.set(name, { name, value, module: COMMON_MODULE });
    }
    this.collect();
    for (const m of modules) for (const d of m.x.definitions) this.check(d);
    this.checkTsNames();
  }

  private collect(): void {
    const pendingConsts: { def: Extract<Definition, { kind: 'const' }>; module: string }[] = [];
    const seen = new Map<string, SourcePos>();
    const claim = (name: string, pos: SourcePos): void => {
      const prev = seen.get(name);
      if (prev || this.consts.has(name)) {
        throw new ModelError(pos, `${name} is already defined${prev ? ` at ${prev.file}:${prev.line}` : ''}`);
      }
      seen.set(name, pos);
    };
    for (const { module, x } of this.modules) {
      for (const d of x.definitions) {
        if (d.kind === 'const') {
          claim(d.name, d.pos);
          pendingConsts.push({ def: d, module });
        } else {
          claim(d.name, d.pos);
          this.types.set(d.name, { def: d, module });
          if (d.kind === 'enum') {
            for (const m of d.members) {
              claim(m.name, m.pos);
              pendingConsts.push({
                def: { kind: 'const', name: m.name, value: m.value, pos: m.pos },
                module,
              });
            }
          }
        }
      }
    }
    // Constants may refer to constants defined later or in another file: resolve to a fixpoint.
    let todo = pendingConsts;
    while (todo.length > 0) {
      const later: typeof todo = [];
      for (const p of todo) {
        const v = p.def.value;
        const value = v.kind === 'num' ? v.value : this.consts.get(v.name)?.value;
        if (value === undefined) later.push(p);
        else this.consts.set(p.def.name, { name: p.def.name, value, module: p.module });
      }
      if (later.length === todo.length) {
        const first = later[0]!;
        const v = first.def.value;
        throw new ModelError(
          first.def.pos,
          `${first.def.name}: cannot resolve ${v.kind === 'ident' ? v.name : v.text} (undefined or circular constant)`,
        );
      }
      todo = later;
    }
  }

  /** Resolves a constant expression to its number. */
  value(v: Value): number {
    if (v.kind === 'num') return v.value;
    const c = this.consts.get(v.name);
    if (!c) throw new ModelError(v.pos, `undefined constant ${v.name}`);
    return c.value;
  }

  type(name: string, pos: SourcePos | null = null): TypeSymbol {
    const t = this.types.get(name);
    if (!t) throw new ModelError(pos, `undefined type ${name}`);
    return t;
  }

  /** Follows typedefs of plain scalars to the underlying type spec. */
  resolveAlias(spec: TypeSpec): TypeSpec {
    let cur = spec;
    for (let depth = 0; cur.kind === 'ref'; depth++) {
      const t = this.type(cur.name, cur.pos).def;
      if (t.kind !== 'typedef' || t.decl.kind !== 'scalar' || depth > 50) return cur;
      cur = t.decl.type;
    }
    return cur;
  }

  private checkSpec(spec: TypeSpec): void {
    if (spec.kind === 'ref') this.type(spec.name, spec.pos);
  }

  private checkBound(v: Value | null, what: string, pos: SourcePos): void {
    if (v === null) return;
    const n = this.value(v);
    if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff)
      throw new ModelError(pos, `${what}: bad length ${n}`);
  }

  private checkDecl(d: NamedDecl, pos: SourcePos): void {
    switch (d.kind) {
      case 'scalar':
      case 'optional':
        this.checkSpec(d.type);
        break;
      case 'fixedArray':
        this.checkSpec(d.type);
        this.checkBound(d.len, d.name, pos);
        break;
      case 'varArray':
        this.checkSpec(d.type);
        this.checkBound(d.max, d.name, pos);
        break;
      case 'opaqueFixed':
        this.checkBound(d.len, d.name, pos);
        break;
      case 'opaqueVar':
      case 'string':
        this.checkBound(d.max, d.name, pos);
        break;
    }
  }

  private check(d: Definition): void {
    switch (d.kind) {
      case 'const':
        break;
      case 'enum':
        for (const m of d.members) {
          const v = this.value(m.value);
          if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0x7fff_ffff) {
            throw new ModelError(m.pos, `${m.name} = ${v} does not fit an XDR enum (int)`);
          }
        }
        break;
      case 'typedef':
        this.checkDecl(d.decl, d.pos);
        break;
      case 'struct':
        for (const f of d.fields) this.checkDecl(f, d.pos);
        uniqueTsNames(
          d.fields.map((f) => f.name),
          d.name,
          d.pos,
        );
        break;
      case 'union': {
        const disc = this.resolveAlias(d.discriminant.type);
        const ok =
          (disc.kind === 'prim' && (disc.name === 'int' || disc.name === 'uint')) ||
          (disc.kind === 'ref' && this.type(disc.name, disc.pos).def.kind === 'enum');
        if (!ok) throw new ModelError(d.pos, `${d.name}: discriminant must be int, unsigned int or an enum`);
        const seen = new Set<number>();
        for (const arm of d.arms) {
          for (const c of arm.cases) {
            const v = this.value(c);
            if (seen.has(v)) throw new ModelError(d.pos, `${d.name}: duplicate case ${v}`);
            seen.add(v);
          }
          if (arm.decl.kind !== 'void') this.checkDecl(arm.decl, d.pos);
        }
        if (d.defaultArm && d.defaultArm.kind !== 'void') this.checkDecl(d.defaultArm, d.pos);
        const names = [d.discriminant.name];
        for (const arm of [...d.arms.map((a) => a.decl), d.defaultArm]) {
          if (arm && arm.kind !== 'void') names.push(arm.name);
        }
        uniqueTsNames([...new Set(names)], d.name, d.pos);
        break;
      }
    }
  }

  /** Every exported TS name must be unique across all generated modules. */
  private checkTsNames(): void {
    const owner = new Map<string, string>();
    const add = (tsName: string, what: string): void => {
      const prev = owner.get(tsName);
      if (prev !== undefined)
        throw new ModelError(null, `TS name ${tsName} used by both ${prev} and ${what}`);
      owner.set(tsName, what);
    };
    for (const c of this.consts.values()) add(c.name, `constant ${c.name}`);
    for (const [name, t] of this.types) {
      const ts = tsTypeName(name);
      add(ts, `type ${name}`);
      add(`encode${ts}`, `type ${name}`);
      add(`decode${ts}`, `type ${name}`);
      if (t.def.kind === 'enum') add(`${lowerFirst(ts)}Names`, `enum ${name}`);
    }
    for (const m of this.modules) {
      for (const p of this.programs(m.module)) {
        const base = lowerFirst(tsTypeName(p.prefix));
        for (const n of ['Procedures', 'ProceduresByNumber', 'Program'])
          add(`${base}${n}`, `program ${p.prefix}`);
        add(`${tsTypeName(p.prefix)}ProcedureName`, `program ${p.prefix}`);
      }
    }
  }

  definitionsOf(module: string): readonly Definition[] {
    const m = this.modules.find((x) => x.module === module);
    if (!m) throw new ModelError(null, `no module ${module}`);
    return m.x.definitions;
  }

  /**
   * Programs defined in a module: an enum `<prefix>_procedure` whose members are
   * `<PREFIX>_PROC_<NAME>`, with constants `<PREFIX>_PROGRAM` and `<PREFIX>_PROTOCOL_VERSION`.
   * Procedure payload types follow libvirt's convention: `<prefix>_<name>_args` / `_ret` / `_msg`
   * (lower case); a missing type means void.
   */
  programs(module: string): Program[] {
    const out: Program[] = [];
    for (const d of this.definitionsOf(module)) {
      if (d.kind !== 'enum' || !d.name.endsWith('_procedure')) continue;
      const prefix = d.name.slice(0, -'_procedure'.length);
      const upper = prefix.toUpperCase();
      const programConst = `${upper}_PROGRAM`;
      const versionConst = `${upper}_PROTOCOL_VERSION`;
      for (const c of [programConst, versionConst]) {
        if (!this.consts.has(c)) throw new ModelError(d.pos, `${d.name}: constant ${c} is missing`);
      }
      const payload = (base: string, suffix: string): string | null => {
        const name = `${base}_${suffix}`;
        const t = this.types.get(name);
        if (!t) return null;
        if (t.def.kind !== 'struct' && t.def.kind !== 'union' && t.def.kind !== 'typedef') {
          throw new ModelError(t.def.pos, `${name} should be a struct, union or typedef`);
        }
        return name;
      };
      const procedures = d.members.map((m): Procedure => {
        const procPrefix = `${upper}_PROC_`;
        if (!m.name.startsWith(procPrefix))
          throw new ModelError(m.pos, `${m.name} should start with ${procPrefix}`);
        const base = `${prefix}_${m.name.slice(procPrefix.length).toLowerCase()}`;
        return {
          name: m.name,
          number: this.value(m.value),
          args: payload(base, 'args'),
          ret: payload(base, 'ret'),
          msg: payload(base, 'msg'),
        };
      });
      out.push({ prefix, programConst, versionConst, procedureEnum: d.name, procedures });
    }
    return out;
  }
}

function uniqueTsNames(names: readonly string[], owner: string, pos: SourcePos): void {
  const seen = new Map<string, string>();
  for (const n of names) {
    const ts = tsFieldName(n);
    const prev = seen.get(ts);
    if (prev !== undefined) throw new ModelError(pos, `${owner}: members ${prev} and ${n} both map to ${ts}`);
    seen.set(ts, n);
  }
}
