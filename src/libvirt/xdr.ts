/**
 * XDR (External Data Representation, RFC 4506) codec on Node Buffers.
 *
 * - Every item occupies a multiple of 4 bytes, big-endian; opaque data and strings are
 *   zero-padded to the next 4-byte boundary (non-zero padding is accepted on read).
 * - `hyper` / `unsigned hyper` are `bigint`; `int` / `unsigned int` / `enum` are `number`.
 * - Strings are UTF-8; the `max` of a string bounds its encoded byte length. Invalid UTF-8 on
 *   read decodes to U+FFFD (as `Buffer#toString('utf8')` does) rather than failing the message.
 * - Every malformed input throws {@link XdrError} naming what was being read or written and the
 *   byte offset. A reader never allocates from an untrusted length before checking it against the
 *   bytes that remain: a variable-length array of n items needs at least 4n bytes (every XDR item
 *   in a non-degenerate schema is at least 4 bytes long), opaque data and strings need their
 *   padded length. Nesting of optional data and arrays (recursive types) is limited to
 *   MAX_DEPTH levels so hostile input cannot overflow the stack.
 */

const INT_MIN = -0x8000_0000;
const INT_MAX = 0x7fff_ffff;
const UINT_MAX = 0xffff_ffff;
const HYPER_MIN = -(1n << 63n);
const HYPER_MAX = (1n << 63n) - 1n;
const UHYPER_MAX = (1n << 64n) - 1n;
/** Smallest encoded size of any XDR item; used to bound array lengths against remaining bytes. */
const MIN_ITEM_SIZE = 4;
/**
 * Deepest nesting of optional data and arrays a reader follows. Only recursive types (a linked
 * list through `T *next`) nest deeper than a handful of levels; this turns hostile input into an
 * XdrError instead of a stack overflow.
 */
const MAX_DEPTH = 1000;

export class XdrError extends Error {
  /** Byte offset in the buffer being read or written where the problem was found. */
  readonly offset: number | undefined;

  constructor(message: string, offset?: number) {
    super(message);
    this.name = 'XdrError';
    this.offset = offset;
  }
}

function pad(len: number): number {
  return (4 - (len & 3)) & 3;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === null) return 'null';
  if (typeof v === 'object') return Array.isArray(v) ? 'array' : 'object';
  return String(v);
}

function checkMax(max: number | undefined, what: string): number {
  if (max === undefined) return UINT_MAX;
  if (!Number.isInteger(max) || max < 0 || max > UINT_MAX) {
    throw new XdrError(`${what}: invalid maximum length ${describe(max)}`);
  }
  return max;
}

export class XdrWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialSize = 256) {
    this.buf = Buffer.alloc(Math.max(16, initialSize));
  }

  /** Number of bytes written so far. */
  get length(): number {
    return this.pos;
  }

  /** A copy of the bytes written so far. The writer can keep being used afterwards. */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  private reserve(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private fail(what: string, problem: string): never {
    throw new XdrError(`XDR write ${what} at offset ${this.pos}: ${problem}`, this.pos);
  }

  int(v: number): this {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < INT_MIN || v > INT_MAX) {
      this.fail('int', `${describe(v)} is not an integer in [${INT_MIN}, ${INT_MAX}]`);
    }
    this.reserve(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  uint(v: number): this {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > UINT_MAX) {
      this.fail('unsigned int', `${describe(v)} is not an integer in [0, ${UINT_MAX}]`);
    }
    this.reserve(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  hyper(v: bigint): this {
    if (typeof v !== 'bigint' || v < HYPER_MIN || v > HYPER_MAX) {
      this.fail('hyper', `${describe(v)} is not a bigint in [${HYPER_MIN}, ${HYPER_MAX}]`);
    }
    this.reserve(8);
    this.buf.writeBigInt64BE(v, this.pos);
    this.pos += 8;
    return this;
  }

  uhyper(v: bigint): this {
    if (typeof v !== 'bigint' || v < 0n || v > UHYPER_MAX) {
      this.fail('unsigned hyper', `${describe(v)} is not a bigint in [0, ${UHYPER_MAX}]`);
    }
    this.reserve(8);
    this.buf.writeBigUInt64BE(v, this.pos);
    this.pos += 8;
    return this;
  }

  bool(v: boolean): this {
    if (typeof v !== 'boolean') this.fail('bool', `${describe(v)} is not a boolean`);
    this.reserve(4);
    this.buf.writeUInt32BE(v ? 1 : 0, this.pos);
    this.pos += 4;
    return this;
  }

  float(v: number): this {
    if (typeof v !== 'number') this.fail('float', `${describe(v)} is not a number`);
    this.reserve(4);
    this.buf.writeFloatBE(v, this.pos);
    this.pos += 4;
    return this;
  }

  double(v: number): this {
    if (typeof v !== 'number') this.fail('double', `${describe(v)} is not a number`);
    this.reserve(8);
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
    return this;
  }

  /** Writes an enum discriminant (a signed int); membership is checked by generated code. */
  enumValue(v: number): this {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < INT_MIN || v > INT_MAX) {
      this.fail('enum', `${describe(v)} is not an integer in [${INT_MIN}, ${INT_MAX}]`);
    }
    return this.int(v);
  }

  private bytes(b: Uint8Array): void {
    const n = b.length;
    const p = pad(n);
    this.reserve(n + p);
    this.buf.set(b, this.pos);
    this.buf.fill(0, this.pos + n, this.pos + n + p);
    this.pos += n + p;
  }

  opaqueFixed(b: Uint8Array, len: number): this {
    if (!(b instanceof Uint8Array)) this.fail(`opaque[${len}]`, `${describe(b)} is not a Uint8Array`);
    if (b.length !== len) this.fail(`opaque[${len}]`, `got ${b.length} bytes, need exactly ${len}`);
    this.bytes(b);
    return this;
  }

  opaqueVar(b: Uint8Array, max?: number): this {
    const limit = checkMax(max, 'opaque<>');
    if (!(b instanceof Uint8Array)) this.fail('opaque<>', `${describe(b)} is not a Uint8Array`);
    if (b.length > limit) this.fail(`opaque<${limit}>`, `length ${b.length} exceeds maximum ${limit}`);
    this.uint(b.length);
    this.bytes(b);
    return this;
  }

  string(s: string, max?: number): this {
    const limit = checkMax(max, 'string<>');
    if (typeof s !== 'string') this.fail('string', `${describe(s)} is not a string`);
    const n = Buffer.byteLength(s, 'utf8');
    if (n > limit) this.fail(`string<${limit}>`, `UTF-8 length ${n} exceeds maximum ${limit}`);
    this.uint(n);
    const p = pad(n);
    this.reserve(n + p);
    this.buf.write(s, this.pos, n, 'utf8');
    this.buf.fill(0, this.pos + n, this.pos + n + p);
    this.pos += n + p;
    return this;
  }

  /** Optional data (`type *name`): a bool, then the value when present. */
  optional<T>(v: T | null | undefined, fn: (w: XdrWriter, v: T) => void): this {
    if (v === null || v === undefined) {
      this.uint(0);
    } else {
      this.uint(1);
      fn(this, v);
    }
    return this;
  }

  arrayFixed<T>(items: readonly T[], len: number, fn: (w: XdrWriter, v: T) => void): this {
    if (!Array.isArray(items)) this.fail(`array[${len}]`, `${describe(items)} is not an array`);
    if (items.length !== len) this.fail(`array[${len}]`, `got ${items.length} items, need exactly ${len}`);
    for (const item of items) fn(this, item);
    return this;
  }

  arrayVar<T>(items: readonly T[], max: number | undefined, fn: (w: XdrWriter, v: T) => void): this {
    const limit = checkMax(max, 'array<>');
    if (!Array.isArray(items)) this.fail('array<>', `${describe(items)} is not an array`);
    if (items.length > limit) this.fail(`array<${limit}>`, `${items.length} items exceed maximum ${limit}`);
    this.uint(items.length);
    for (const item of items) fn(this, item);
    return this;
  }
}

export class XdrReader {
  private readonly buf: Buffer;
  private pos: number;
  private depth = 0;

  constructor(buf: Uint8Array, offset = 0) {
    if (!(buf instanceof Uint8Array)) throw new XdrError('XdrReader: input is not a Uint8Array');
    this.buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    if (!Number.isInteger(offset) || offset < 0 || offset > this.buf.length) {
      throw new XdrError(`XdrReader: start offset ${offset} outside buffer of ${this.buf.length} bytes`, 0);
    }
    this.pos = offset;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  /** Throws unless every byte has been consumed. */
  assertEnd(): void {
    if (this.pos !== this.buf.length) {
      throw new XdrError(
        `XDR read: ${this.buf.length - this.pos} unexpected trailing bytes at offset ${this.pos}`,
        this.pos,
      );
    }
  }

  private fail(what: string, problem: string, at = this.pos): never {
    throw new XdrError(`XDR read ${what} at offset ${at}: ${problem}`, at);
  }

  private nested<T>(what: string, fn: () => T): T {
    if (this.depth >= MAX_DEPTH) this.fail(what, `nesting deeper than ${MAX_DEPTH} levels`);
    this.depth++;
    try {
      return fn();
    } finally {
      this.depth--;
    }
  }

  private need(n: number, what: string): void {
    if (n > this.buf.length - this.pos) {
      this.fail(what, `truncated, need ${n} bytes but only ${this.buf.length - this.pos} remain`);
    }
  }

  int(): number {
    this.need(4, 'int');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint(): number {
    this.need(4, 'unsigned int');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  hyper(): bigint {
    this.need(8, 'hyper');
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  uhyper(): bigint {
    this.need(8, 'unsigned hyper');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  bool(): boolean {
    this.need(4, 'bool');
    const v = this.buf.readUInt32BE(this.pos);
    if (v > 1) this.fail('bool', `value ${v} is neither 0 nor 1`);
    this.pos += 4;
    return v === 1;
  }

  float(): number {
    this.need(4, 'float');
    const v = this.buf.readFloatBE(this.pos);
    this.pos += 4;
    return v;
  }

  double(): number {
    this.need(8, 'double');
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Reads an enum discriminant; with `allowed`, any other value is an error. */
  enumValue(allowed?: ReadonlySet<number>): number {
    this.need(4, 'enum');
    const v = this.buf.readInt32BE(this.pos);
    if (allowed !== undefined && !allowed.has(v)) this.fail('enum', `value ${v} is not a member`);
    this.pos += 4;
    return v;
  }

  /** Reads `len` bytes plus padding; returns a copy (never aliases the input buffer). */
  private bytes(len: number, what: string): Buffer {
    this.need(len + pad(len), what);
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len + pad(len);
    return out;
  }

  opaqueFixed(len: number): Buffer {
    if (!Number.isInteger(len) || len < 0 || len > UINT_MAX) {
      this.fail('opaque[]', `invalid fixed length ${describe(len)}`);
    }
    return this.bytes(len, `opaque[${len}]`);
  }

  /** Reads a length word, checks it against `max` and the remaining bytes. */
  private lengthWord(max: number | undefined, what: string, unit: number): number {
    const limit = checkMax(max, what);
    const at = this.pos;
    const len = this.uint();
    if (len > limit) this.fail(what, `length ${len} exceeds maximum ${limit}`, at);
    if (len * unit > this.buf.length - this.pos) {
      this.fail(
        what,
        `length ${len} needs more than the ${this.buf.length - this.pos} bytes that remain`,
        at,
      );
    }
    return len;
  }

  opaqueVar(max?: number): Buffer {
    const len = this.lengthWord(max, 'opaque<>', 1);
    return this.bytes(len, 'opaque<>');
  }

  string(max?: number): string {
    const len = this.lengthWord(max, 'string<>', 1);
    const at = this.pos;
    this.need(len + pad(len), 'string<>');
    this.pos += len + pad(len);
    return this.buf.toString('utf8', at, at + len);
  }

  optional<T>(fn: (r: XdrReader) => T): T | null {
    this.need(4, 'optional');
    const flag = this.buf.readUInt32BE(this.pos);
    if (flag > 1) this.fail('optional', `presence flag ${flag} is neither 0 nor 1`);
    this.pos += 4;
    return flag === 1 ? this.nested('optional', () => fn(this)) : null;
  }

  arrayFixed<T>(len: number, fn: (r: XdrReader) => T): T[] {
    if (!Number.isInteger(len) || len < 0 || len > UINT_MAX) {
      this.fail('array[]', `invalid fixed length ${describe(len)}`);
    }
    if (len * MIN_ITEM_SIZE > this.buf.length - this.pos) {
      this.fail(
        `array[${len}]`,
        `${len} items need more than the ${this.buf.length - this.pos} bytes that remain`,
      );
    }
    return this.nested(`array[${len}]`, () => {
      const out: T[] = [];
      for (let i = 0; i < len; i++) out.push(fn(this));
      return out;
    });
  }

  arrayVar<T>(max: number | undefined, fn: (r: XdrReader) => T): T[] {
    const len = this.lengthWord(max, 'array<>', MIN_ITEM_SIZE);
    return this.nested('array<>', () => {
      const out: T[] = [];
      for (let i = 0; i < len; i++) out.push(fn(this));
      return out;
    });
  }
}
