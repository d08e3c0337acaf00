import {
  VIR_TYPED_PARAM_BOOLEAN,
  VIR_TYPED_PARAM_DOUBLE,
  VIR_TYPED_PARAM_INT,
  VIR_TYPED_PARAM_LLONG,
  VIR_TYPED_PARAM_STRING,
  VIR_TYPED_PARAM_UINT,
  VIR_TYPED_PARAM_ULLONG,
} from './protocol/generated/common.ts';
import type { RemoteTypedParam } from './protocol/generated/remote.ts';

export type TypedValue = number | string | boolean;
/** Typed parameters as a plain record; 64-bit values become numbers (exact below 2^53). */
export type TypedParams = Record<string, TypedValue>;

export function typedValue(p: RemoteTypedParam): TypedValue {
  const v = p.value;
  switch (v.type) {
    case VIR_TYPED_PARAM_INT:
      return v.i;
    case VIR_TYPED_PARAM_UINT:
      return v.ui;
    case VIR_TYPED_PARAM_LLONG:
      return Number(v.l);
    case VIR_TYPED_PARAM_ULLONG:
      return Number(v.ul);
    case VIR_TYPED_PARAM_DOUBLE:
      return v.d;
    case VIR_TYPED_PARAM_BOOLEAN:
      return v.b !== 0;
    case VIR_TYPED_PARAM_STRING:
      return v.s;
  }
}

/** Record form; a field given twice (e.g. several 'compression' methods) keeps the last. */
export function fromTypedParams(params: readonly RemoteTypedParam[]): TypedParams {
  const out: TypedParams = {};
  for (const p of params) out[p.field] = typedValue(p);
  return out;
}

export type ParamKind = 'int' | 'uint' | 'llong' | 'ullong' | 'double' | 'boolean' | 'string';

/** One typed parameter of the kind libvirt expects for that field (it checks kinds strictly). */
export function typedParam(field: string, kind: ParamKind, value: TypedValue): RemoteTypedParam {
  const n = (x: TypedValue) => {
    if (typeof x !== 'number' || !Number.isFinite(x))
      throw new TypeError(`${field}: expected a number, got ${String(x)}`);
    return x;
  };
  switch (kind) {
    case 'int':
      return { field, value: { type: VIR_TYPED_PARAM_INT, i: n(value) } };
    case 'uint':
      return { field, value: { type: VIR_TYPED_PARAM_UINT, ui: n(value) } };
    case 'llong':
      return { field, value: { type: VIR_TYPED_PARAM_LLONG, l: BigInt(Math.trunc(n(value))) } };
    case 'ullong':
      return { field, value: { type: VIR_TYPED_PARAM_ULLONG, ul: BigInt(Math.trunc(n(value))) } };
    case 'double':
      return { field, value: { type: VIR_TYPED_PARAM_DOUBLE, d: n(value) } };
    case 'boolean':
      return { field, value: { type: VIR_TYPED_PARAM_BOOLEAN, b: value ? 1 : 0 } };
    case 'string':
      return { field, value: { type: VIR_TYPED_PARAM_STRING, s: String(value) } };
  }
}

/** Builds typed parameters from a record using a schema of field kinds; unknown fields are refused. */
export function toTypedParams(
  values: Record<string, TypedValue | undefined>,
  kinds: Record<string, ParamKind>,
): RemoteTypedParam[] {
  const out: RemoteTypedParam[] = [];
  for (const [field, value] of Object.entries(values)) {
    if (value === undefined) continue;
    const kind = kinds[field];
    if (!kind) throw new TypeError(`unknown parameter '${field}' (known: ${Object.keys(kinds).join(', ')})`);
    out.push(typedParam(field, kind, value));
  }
  return out;
}
