/** Syntax tree for the XDR language subset (RFC 4506 section 6 plus rpcgen extensions) used by libvirt. */

export interface SourcePos {
  /** Base name of the .x file, e.g. `remote_protocol.x`. */
  readonly file: string;
  readonly line: number;
}

/** A constant expression: a literal or the name of a `const` / enum member (possibly from another file). */
export type Value =
  | { readonly kind: 'num'; readonly value: number; readonly text: string }
  | { readonly kind: 'ident'; readonly name: string; readonly pos: SourcePos };

/** rpcgen's small integers (char, short) travel as a 4-byte int like `int`. */
export type PrimName =
  | 'int'
  | 'uint'
  | 'hyper'
  | 'uhyper'
  | 'float'
  | 'double'
  | 'bool'
  | 'char'
  | 'uchar'
  | 'short'
  | 'ushort';

export type TypeSpec =
  | { readonly kind: 'prim'; readonly name: PrimName }
  | { readonly kind: 'ref'; readonly name: string; readonly pos: SourcePos };

export type Decl =
  | { readonly kind: 'void' }
  | { readonly kind: 'scalar'; readonly name: string; readonly type: TypeSpec }
  | { readonly kind: 'fixedArray'; readonly name: string; readonly type: TypeSpec; readonly len: Value }
  | { readonly kind: 'varArray'; readonly name: string; readonly type: TypeSpec; readonly max: Value | null }
  | { readonly kind: 'opaqueFixed'; readonly name: string; readonly len: Value }
  | { readonly kind: 'opaqueVar'; readonly name: string; readonly max: Value | null }
  | { readonly kind: 'string'; readonly name: string; readonly max: Value | null }
  | { readonly kind: 'optional'; readonly name: string; readonly type: TypeSpec };

/** Any declaration but `void`. */
export type NamedDecl = Exclude<Decl, { kind: 'void' }>;

export interface EnumMember {
  readonly name: string;
  readonly value: Value;
  readonly pos: SourcePos;
}

export interface UnionArm {
  readonly cases: readonly Value[];
  readonly decl: Decl;
}

export type Definition = { readonly pos: SourcePos } & (
  | { readonly kind: 'const'; readonly name: string; readonly value: Value }
  | { readonly kind: 'enum'; readonly name: string; readonly members: readonly EnumMember[] }
  | { readonly kind: 'struct'; readonly name: string; readonly fields: readonly NamedDecl[] }
  | {
      readonly kind: 'union';
      readonly name: string;
      readonly discriminant: { readonly name: string; readonly type: TypeSpec };
      readonly arms: readonly UnionArm[];
      readonly defaultArm: Decl | null;
    }
  | { readonly kind: 'typedef'; readonly name: string; readonly decl: NamedDecl }
);

export type TypeDefinition = Exclude<Definition, { kind: 'const' }>;

export interface XFile {
  readonly file: string;
  readonly definitions: readonly Definition[];
}
