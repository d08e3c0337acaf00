/**
 * Lexer and recursive-descent parser for the XDR language subset used by libvirt's .x files:
 * `const`, `typedef`, `enum`, `struct`, `union switch` with `case` / `default`, fixed `[N]` and
 * variable `<N>` / `<>` arrays, `opaque`, `string<N>`, optional `*`, `hyper` / `unsigned hyper`,
 * plus rpcgen's `char` / `short` and bare `unsigned`. C comments and `%` passthrough lines are
 * skipped. Names used as values are resolved later (they may live in another file).
 */
import type {
  Decl,
  Definition,
  EnumMember,
  NamedDecl,
  PrimName,
  SourcePos,
  TypeSpec,
  UnionArm,
  Value,
  XFile,
} from './ast.ts';

type TokenKind = 'ident' | 'num' | 'punct' | 'eof';

interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly line: number;
}

export class XdrSyntaxError extends Error {
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'XdrSyntaxError';
  }
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /-?(?:0[xX][0-9A-Fa-f]+|[0-9]+)/y;
const PUNCT = new Set(['{', '}', '(', ')', '[', ']', '<', '>', ';', ',', '=', '*', ':']);

export function tokenize(file: string, src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let atLineStart = true;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      line++;
      i++;
      atLineStart = true;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
      i++;
      continue;
    }
    if (atLineStart && (c === '%' || c === '#')) {
      // rpcgen passthrough (`%#include ...`) or preprocessor line: ignored.
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    atLineStart = false;
    if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) throw new XdrSyntaxError(file, line, 'unterminated comment');
      for (let j = i; j < end; j++) if (src[j] === '\n') line++;
      i = end + 2;
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    IDENT.lastIndex = i;
    const ident = IDENT.exec(src);
    if (ident) {
      out.push({ kind: 'ident', text: ident[0], line });
      i += ident[0].length;
      continue;
    }
    NUMBER.lastIndex = i;
    const num = NUMBER.exec(src);
    if (num) {
      out.push({ kind: 'num', text: num[0], line });
      i += num[0].length;
      continue;
    }
    if (PUNCT.has(c)) {
      out.push({ kind: 'punct', text: c, line });
      i++;
      continue;
    }
    throw new XdrSyntaxError(file, line, `unexpected character ${JSON.stringify(c)}`);
  }
  out.push({ kind: 'eof', text: '<end of file>', line });
  return out;
}

/** Parses an XDR integer literal: decimal, hex (`0x`) or octal (leading `0`), optionally negative. */
export function parseNumber(text: string): number {
  const neg = text.startsWith('-');
  const body = neg ? text.slice(1) : text;
  let v: number;
  if (/^0[xX]/.test(body)) v = Number.parseInt(body.slice(2), 16);
  else if (body.length > 1 && body.startsWith('0')) v = Number.parseInt(body, 8);
  else v = Number.parseInt(body, 10);
  if (!Number.isSafeInteger(v)) throw new Error(`number out of range: ${text}`);
  return neg ? -v : v;
}

const RESERVED = new Set([
  'bool',
  'case',
  'const',
  'default',
  'double',
  'quadruple',
  'enum',
  'float',
  'hyper',
  'int',
  'opaque',
  'string',
  'struct',
  'switch',
  'typedef',
  'union',
  'unsigned',
  'void',
  'char',
  'short',
  'long',
]);

class Parser {
  private i = 0;

  constructor(
    private readonly file: string,
    private readonly toks: readonly Token[],
  ) {}

  private peek(ahead = 0): Token {
    return this.toks[Math.min(this.i + ahead, this.toks.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.i++;
    return t;
  }

  private pos(t: Token = this.peek()): SourcePos {
    return { file: this.file, line: t.line };
  }

  private fail(message: string, t: Token = this.peek()): never {
    throw new XdrSyntaxError(this.file, t.line, message);
  }

  private is(text: string): boolean {
    const t = this.peek();
    return t.kind !== 'num' && t.kind !== 'eof' && t.text === text;
  }

  private accept(text: string): boolean {
    if (!this.is(text)) return false;
    this.i++;
    return true;
  }

  private expect(text: string): Token {
    if (!this.is(text)) this.fail(`expected '${text}', found '${this.peek().text}'`);
    return this.next();
  }

  private identifier(what: string): Token {
    const t = this.peek();
    if (t.kind !== 'ident' || RESERVED.has(t.text)) this.fail(`expected ${what}, found '${t.text}'`);
    return this.next();
  }

  private value(): Value {
    const t = this.peek();
    if (t.kind === 'num') {
      this.next();
      try {
        return { kind: 'num', value: parseNumber(t.text), text: t.text };
      } catch (e) {
        this.fail((e as Error).message, t);
      }
    }
    const id = this.identifier('a number or constant name');
    return { kind: 'ident', name: id.text, pos: this.pos(id) };
  }

  parseFile(): XFile {
    const definitions: Definition[] = [];
    while (this.peek().kind !== 'eof') definitions.push(this.definition());
    return { file: this.file, definitions };
  }

  private definition(): Definition {
    const start = this.peek();
    const pos = this.pos(start);
    let def: Definition;
    if (this.accept('const')) {
      const name = this.identifier('constant name').text;
      this.expect('=');
      def = { kind: 'const', name, value: this.value(), pos };
    } else if (this.accept('typedef')) {
      const decl = this.declaration();
      if (decl.kind === 'void') this.fail('typedef of void', start);
      def = { kind: 'typedef', name: decl.name, decl, pos };
    } else if (this.accept('enum')) {
      const name = this.identifier('enum name').text;
      def = { kind: 'enum', name, members: this.enumBody(), pos };
    } else if (this.accept('struct')) {
      const name = this.identifier('struct name').text;
      def = { kind: 'struct', name, fields: this.structBody(), pos };
    } else if (this.accept('union')) {
      const name = this.identifier('union name').text;
      def = { kind: 'union', name, ...this.unionBody(), pos };
    } else if (this.is('program')) {
      this.fail('rpcgen program definitions are not supported');
    } else {
      this.fail(`expected a definition, found '${start.text}'`);
    }
    this.expect(';');
    return def;
  }

  private enumBody(): EnumMember[] {
    this.expect('{');
    const members: EnumMember[] = [];
    let prev: Value | null = null;
    do {
      if (this.is('}')) break; // tolerate a trailing comma
      const id = this.identifier('enum member name');
      let value: Value;
      if (this.accept('=')) {
        value = this.value();
      } else if (prev === null) {
        value = { kind: 'num', value: 0, text: '0' };
      } else if (prev.kind === 'num') {
        // rpcgen extension: an omitted value is the previous one plus one.
        value = { kind: 'num', value: prev.value + 1, text: String(prev.value + 1) };
      } else {
        this.fail(`enum member ${id.text} needs an explicit value`, id);
      }
      members.push({ name: id.text, value, pos: this.pos(id) });
      prev = value;
    } while (this.accept(','));
    this.expect('}');
    if (members.length === 0) this.fail('empty enum');
    return members;
  }

  private structBody(): NamedDecl[] {
    this.expect('{');
    const fields: NamedDecl[] = [];
    while (!this.is('}')) {
      const at = this.peek();
      const d = this.declaration();
      if (d.kind === 'void') this.fail('void struct member', at);
      fields.push(d);
      this.expect(';');
    }
    this.expect('}');
    if (fields.length === 0) this.fail('empty struct');
    return fields;
  }

  private unionBody(): {
    discriminant: { name: string; type: TypeSpec };
    arms: UnionArm[];
    defaultArm: Decl | null;
  } {
    this.expect('switch');
    this.expect('(');
    const at = this.peek();
    const d = this.declaration();
    if (d.kind !== 'scalar') this.fail('union discriminant must be a plain int, unsigned int or enum', at);
    this.expect(')');
    this.expect('{');
    const arms: UnionArm[] = [];
    let defaultArm: Decl | null = null;
    while (this.is('case')) {
      const cases: Value[] = [];
      while (this.accept('case')) {
        cases.push(this.value());
        this.expect(':');
      }
      arms.push({ cases, decl: this.declaration() });
      this.expect(';');
    }
    if (this.accept('default')) {
      this.expect(':');
      defaultArm = this.declaration();
      this.expect(';');
    }
    this.expect('}');
    if (arms.length === 0) this.fail('union without case arms');
    return { discriminant: { name: d.name, type: d.type }, arms, defaultArm };
  }

  private typeSpec(): TypeSpec {
    const t = this.peek();
    if (this.accept('unsigned')) {
      let name: PrimName = 'uint';
      if (this.accept('int')) name = 'uint';
      else if (this.accept('hyper')) name = 'uhyper';
      else if (this.accept('char')) name = 'uchar';
      else if (this.accept('short')) name = 'ushort';
      else if (this.accept('long')) name = 'uint';
      return { kind: 'prim', name };
    }
    const simple: Record<string, PrimName> = {
      int: 'int',
      long: 'int',
      hyper: 'hyper',
      float: 'float',
      double: 'double',
      bool: 'bool',
      char: 'char',
      short: 'short',
    };
    const prim = t.kind === 'ident' ? simple[t.text] : undefined;
    if (prim !== undefined) {
      this.next();
      return { kind: 'prim', name: prim };
    }
    if (this.is('enum') || this.is('struct') || this.is('union')) {
      this.fail(`inline ${t.text} type specifiers are not supported; declare a named type`);
    }
    if (this.is('quadruple')) this.fail('quadruple is not supported');
    const id = this.identifier('a type');
    return { kind: 'ref', name: id.text, pos: this.pos(id) };
  }

  private maxBound(): Value | null {
    this.expect('<');
    const max = this.is('>') ? null : this.value();
    this.expect('>');
    return max;
  }

  private declaration(): Decl {
    if (this.accept('void')) return { kind: 'void' };
    if (this.accept('opaque')) {
      const name = this.identifier('opaque member name').text;
      if (this.accept('[')) {
        const len = this.value();
        this.expect(']');
        return { kind: 'opaqueFixed', name, len };
      }
      return { kind: 'opaqueVar', name, max: this.maxBound() };
    }
    if (this.accept('string')) {
      const name = this.identifier('string member name').text;
      return { kind: 'string', name, max: this.maxBound() };
    }
    const type = this.typeSpec();
    if (this.accept('*')) {
      return { kind: 'optional', name: this.identifier('optional member name').text, type };
    }
    const name = this.identifier('member name').text;
    if (this.accept('[')) {
      const len = this.value();
      this.expect(']');
      return { kind: 'fixedArray', name, type, len };
    }
    if (this.is('<')) return { kind: 'varArray', name, type, max: this.maxBound() };
    return { kind: 'scalar', name, type };
  }
}

export function parseX(file: string, src: string): XFile {
  return new Parser(file, tokenize(file, src)).parseFile();
}
