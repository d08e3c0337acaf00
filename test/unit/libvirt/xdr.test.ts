import { describe, expect, it } from 'vitest';
import { XdrError, XdrReader, XdrWriter } from '../../../src/libvirt/xdr.ts';

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function write(fn: (w: XdrWriter) => void): Buffer {
  const w = new XdrWriter();
  fn(w);
  return w.finish();
}

/** Asserts that fn throws an XdrError whose message matches and names an offset. */
function expectXdrError(fn: () => unknown, message: RegExp): XdrError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(XdrError);
  const err = caught as XdrError;
  expect(err.name).toBe('XdrError');
  expect(err.message).toMatch(message);
  expect(err.message).toMatch(/offset \d+/);
  return err;
}

/** Deterministic PRNG (mulberry32) so fuzz failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('XdrWriter / XdrReader round trips', () => {
  it('int', () => {
    for (const v of [0, 1, -1, 42, -0x8000_0000, 0x7fff_ffff]) {
      const b = write((w) => w.int(v));
      expect(b.length).toBe(4);
      const r = new XdrReader(b);
      expect(r.int()).toBe(v);
      r.assertEnd();
    }
    expect(hex(write((w) => w.int(-2)))).toBe('fffffffe');
  });

  it('unsigned int', () => {
    for (const v of [0, 1, 0x8000_0000, 0xffff_ffff]) {
      expect(new XdrReader(write((w) => w.uint(v))).uint()).toBe(v);
    }
    expect(hex(write((w) => w.uint(0x20008086)))).toBe('20008086');
  });

  it('hyper and unsigned hyper', () => {
    for (const v of [0n, -1n, 1n << 40n, -(1n << 63n), (1n << 63n) - 1n]) {
      const b = write((w) => w.hyper(v));
      expect(b.length).toBe(8);
      expect(new XdrReader(b).hyper()).toBe(v);
    }
    for (const v of [0n, (1n << 64n) - 1n, 1234567890123n]) {
      expect(new XdrReader(write((w) => w.uhyper(v))).uhyper()).toBe(v);
    }
    expect(hex(write((w) => w.hyper(-2n)))).toBe('fffffffffffffffe');
  });

  it('bool', () => {
    expect(hex(write((w) => w.bool(true).bool(false)))).toBe('0000000100000000');
    const r = new XdrReader(write((w) => w.bool(true).bool(false)));
    expect(r.bool()).toBe(true);
    expect(r.bool()).toBe(false);
  });

  it('float and double', () => {
    expect(new XdrReader(write((w) => w.float(1.5))).float()).toBe(1.5);
    expect(hex(write((w) => w.float(1)))).toBe('3f800000');
    for (const v of [0, -0.25, Math.PI, Number.MAX_VALUE, Number.POSITIVE_INFINITY]) {
      expect(new XdrReader(write((w) => w.double(v))).double()).toBe(v);
    }
    expect(Number.isNaN(new XdrReader(write((w) => w.double(Number.NaN))).double())).toBe(true);
    expect(hex(write((w) => w.double(1)))).toBe('3ff0000000000000');
  });

  it('enum', () => {
    const allowed = new Set([0, 1, 2]);
    expect(new XdrReader(write((w) => w.enumValue(2))).enumValue(allowed)).toBe(2);
    expect(new XdrReader(write((w) => w.enumValue(-7))).enumValue()).toBe(-7);
  });

  it('fixed-length opaque is padded to a multiple of 4', () => {
    expect(hex(write((w) => w.opaqueFixed(Buffer.from([1, 2, 3]), 3)))).toBe('01020300');
    expect(hex(write((w) => w.opaqueFixed(Buffer.from([1, 2, 3, 4]), 4)))).toBe('01020304');
    expect(hex(write((w) => w.opaqueFixed(Buffer.alloc(0), 0)))).toBe('');
    const r = new XdrReader(Buffer.from('0a0b0c0d0e000000', 'hex'));
    expect(hex(r.opaqueFixed(5))).toBe('0a0b0c0d0e');
    r.assertEnd();
  });

  it('variable-length opaque', () => {
    expect(hex(write((w) => w.opaqueVar(Buffer.from([0xaa]))))).toBe('00000001aa000000');
    expect(hex(write((w) => w.opaqueVar(Buffer.alloc(0))))).toBe('00000000');
    const data = Buffer.from('0123456789', 'utf8');
    const r = new XdrReader(write((w) => w.opaqueVar(data, 10)));
    expect(r.opaqueVar(10).equals(data)).toBe(true);
    r.assertEnd();
  });

  it('decoded opaque data does not alias the input buffer', () => {
    const input = Buffer.from('00000002abcd0000', 'hex');
    const out = new XdrReader(input).opaqueVar();
    input[4] = 0;
    expect(hex(out)).toBe('abcd');
  });

  it('string, UTF-8 and padded', () => {
    expect(hex(write((w) => w.string('abc')))).toBe('0000000361626300');
    expect(hex(write((w) => w.string('')))).toBe('00000000');
    const s = 'Kéizoku 継続 ✓';
    const b = write((w) => w.string(s, 64));
    expect(b.readUInt32BE(0)).toBe(Buffer.byteLength(s));
    expect(b.length % 4).toBe(0);
    const r = new XdrReader(b);
    expect(r.string(64)).toBe(s);
    r.assertEnd();
  });

  it('optional', () => {
    const enc = (v: number | null) => write((w) => w.optional(v, (w2, x) => w2.int(x)));
    expect(hex(enc(null))).toBe('00000000');
    expect(hex(enc(5))).toBe('0000000100000005');
    expect(new XdrReader(enc(null)).optional((r) => r.int())).toBeNull();
    expect(new XdrReader(enc(5)).optional((r) => r.int())).toBe(5);
    expect(hex(write((w) => w.optional(undefined, (w2, x: number) => w2.int(x))))).toBe('00000000');
  });

  it('fixed and variable arrays', () => {
    const fixed = write((w) => w.arrayFixed([1, 2, 3], 3, (w2, v) => w2.int(v)));
    expect(hex(fixed)).toBe('000000010000000200000003');
    expect(new XdrReader(fixed).arrayFixed(3, (r) => r.int())).toEqual([1, 2, 3]);

    const items = ['a', 'bc', 'def'];
    const vb = write((w) => w.arrayVar(items, 8, (w2, v) => w2.string(v)));
    expect(vb.readUInt32BE(0)).toBe(3);
    const r = new XdrReader(vb);
    expect(r.arrayVar(8, (r2) => r2.string())).toEqual(items);
    r.assertEnd();
    expect(
      new XdrReader(write((w) => w.arrayVar([], undefined, (w2, v: number) => w2.int(v)))).arrayVar(
        undefined,
        (r2) => r2.int(),
      ),
    ).toEqual([]);
  });

  it('writer grows and tracks length; finish returns a copy', () => {
    const w = new XdrWriter(16);
    for (let i = 0; i < 1000; i++) w.uint(i);
    expect(w.length).toBe(4000);
    const a = w.finish();
    w.uint(7);
    expect(a.length).toBe(4000);
    expect(w.finish().length).toBe(4004);
    expect(a.readUInt32BE(3996)).toBe(999);
  });

  it('reader offset and remaining; start offset; Uint8Array input', () => {
    const bytes = new Uint8Array([0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]);
    const r = new XdrReader(bytes.subarray(8), 4);
    expect(r.offset).toBe(4);
    expect(r.remaining).toBe(0);
    expect(new XdrReader(bytes.subarray(8)).int()).toBe(3);
    const r2 = new XdrReader(bytes, 4);
    expect(r2.int()).toBe(2);
    expect(r2.offset).toBe(8);
    expect(r2.remaining).toBe(4);
  });

  it('RFC 4506 section 7 example: file "sillyprog"', () => {
    // struct file { string filename<255>; filetype type (EXEC = 2: string interpretor<255>);
    //               string owner<32>; opaque data<65535>; }
    const b = write((w) => {
      w.string('sillyprog', 255);
      w.enumValue(2);
      w.string('lisp', 255);
      w.string('john', 32);
      w.opaqueVar(Buffer.from('(quit)', 'latin1'), 65535);
    });
    expect(hex(b)).toBe(
      [
        '00000009',
        '73696c6c',
        '7970726f',
        '67000000',
        '00000002',
        '00000004',
        '6c697370',
        '00000004',
        '6a6f686e',
        '00000006',
        '28717569',
        '74290000',
      ].join(''),
    );
    const r = new XdrReader(b);
    expect(r.string(255)).toBe('sillyprog');
    expect(r.enumValue(new Set([0, 1, 2]))).toBe(2);
    expect(r.string(255)).toBe('lisp');
    expect(r.string(32)).toBe('john');
    expect(r.opaqueVar(65535).toString('latin1')).toBe('(quit)');
    r.assertEnd();
  });
});

describe('malformed input throws XdrError with what and where', () => {
  it('truncated items', () => {
    expectXdrError(() => new XdrReader(Buffer.alloc(3)).int(), /int at offset 0: truncated/);
    expectXdrError(() => new XdrReader(Buffer.alloc(3)).uint(), /unsigned int at offset 0: truncated/);
    expectXdrError(() => new XdrReader(Buffer.alloc(7)).hyper(), /hyper at offset 0: truncated/);
    expectXdrError(() => new XdrReader(Buffer.alloc(7)).uhyper(), /unsigned hyper at offset 0/);
    expectXdrError(() => new XdrReader(Buffer.alloc(2)).bool(), /bool/);
    expectXdrError(() => new XdrReader(Buffer.alloc(2)).float(), /float/);
    expectXdrError(() => new XdrReader(Buffer.alloc(4)).double(), /double/);
    expectXdrError(() => new XdrReader(Buffer.alloc(0)).enumValue(), /enum/);
    expectXdrError(() => new XdrReader(Buffer.alloc(0)).optional((r) => r.int()), /optional/);
    const r = new XdrReader(Buffer.alloc(6));
    r.int();
    const err = expectXdrError(() => r.int(), /int at offset 4: truncated, need 4 bytes but only 2 remain/);
    expect(err.offset).toBe(4);
  });

  it('truncated padding of opaque and string', () => {
    expectXdrError(
      () => new XdrReader(Buffer.from('010203', 'hex')).opaqueFixed(3),
      /opaque\[3\] at offset 0: truncated/,
    );
    expectXdrError(() => new XdrReader(Buffer.from('0000000361626', 'hex')).string(), /string/);
    expectXdrError(
      () => new XdrReader(Buffer.from('00000003616263', 'hex')).string(),
      /string<> at offset 4: truncated/,
    );
  });

  it('non-zero padding is accepted', () => {
    expect(new XdrReader(Buffer.from('0000000141ffffff', 'hex')).string()).toBe('A');
    expect(hex(new XdrReader(Buffer.from('0102ffff', 'hex')).opaqueFixed(2))).toBe('0102');
  });

  it('length over the maximum', () => {
    expectXdrError(
      () => new XdrReader(Buffer.from('0000000561626364650000', 'hex')).string(4),
      /length 5 exceeds maximum 4/,
    );
    expectXdrError(
      () => new XdrReader(Buffer.from('0000000300000000', 'hex')).opaqueVar(2),
      /opaque<> at offset 0: length 3 exceeds maximum 2/,
    );
    expectXdrError(
      () => new XdrReader(Buffer.from('000000030000000100000002', 'hex')).arrayVar(2, (r) => r.int()),
      /array<> at offset 0: length 3 exceeds maximum 2/,
    );
  });

  it('length bigger than the remaining bytes, without allocating or decoding items', () => {
    let calls = 0;
    const huge = Buffer.from('ffffffff00000000', 'hex');
    expectXdrError(
      () =>
        new XdrReader(huge).arrayVar(undefined, (r) => {
          calls++;
          return r.int();
        }),
      /array<> at offset 0: length 4294967295 needs more than the 4 bytes that remain/,
    );
    expect(calls).toBe(0);
    expectXdrError(() => new XdrReader(huge).opaqueVar(), /opaque<> at offset 0: length 4294967295/);
    expectXdrError(() => new XdrReader(huge).string(), /string<> at offset 0: length 4294967295/);
    expectXdrError(
      () => new XdrReader(Buffer.alloc(8)).arrayFixed(1_000_000, (r) => r.int()),
      /array\[1000000\]/,
    );
  });

  it('bool and optional flags other than 0 / 1', () => {
    expectXdrError(
      () => new XdrReader(Buffer.from('00000002', 'hex')).bool(),
      /bool at offset 0: value 2 is neither 0 nor 1/,
    );
    expectXdrError(
      () => new XdrReader(Buffer.from('ffffffff', 'hex')).optional((r) => r.int()),
      /optional at offset 0/,
    );
  });

  it('enum value not allowed', () => {
    const r = new XdrReader(Buffer.from('0000000000000009', 'hex'));
    expect(r.enumValue(new Set([0]))).toBe(0);
    expectXdrError(() => r.enumValue(new Set([0, 1])), /enum at offset 4: value 9 is not a member/);
  });

  it('recursive data nested too deeply', () => {
    interface Node {
      v: number;
      next: Node | null;
    }
    const list = (r: XdrReader): Node | null => r.optional((r2) => ({ v: r2.int(), next: list(r2) }));
    const chain = (n: number): Buffer => {
      const w = new XdrWriter();
      for (let i = 0; i < n; i++) w.uint(1).int(i);
      return w.uint(0).finish();
    };
    let node = list(new XdrReader(chain(100)));
    let count = 0;
    while (node) {
      count++;
      node = node.next;
    }
    expect(count).toBe(100);
    expectXdrError(
      () => list(new XdrReader(chain(5000))),
      /optional at offset \d+: nesting deeper than 1000 levels/,
    );
  });

  it('trailing bytes', () => {
    const r = new XdrReader(Buffer.alloc(12));
    r.int();
    expectXdrError(() => r.assertEnd(), /8 unexpected trailing bytes at offset 4/);
  });

  it('bad reader start offset', () => {
    expect(() => new XdrReader(Buffer.alloc(4), 5)).toThrow(XdrError);
    expect(() => new XdrReader(Buffer.alloc(4), -1)).toThrow(XdrError);
  });

  it('integers out of range on write', () => {
    const w = new XdrWriter();
    w.int(1);
    expectXdrError(() => w.int(0x8000_0000), /write int at offset 4: 2147483648 is not an integer/);
    expectXdrError(() => w.int(-0x8000_0001), /write int/);
    expectXdrError(() => w.int(1.5), /write int/);
    expectXdrError(() => w.int(Number.NaN), /write int/);
    expectXdrError(() => w.int('1' as unknown as number), /write int/);
    expectXdrError(() => w.uint(-1), /write unsigned int/);
    expectXdrError(() => w.uint(2 ** 32), /write unsigned int/);
    expectXdrError(() => w.hyper(1n << 63n), /write hyper/);
    expectXdrError(() => w.hyper(1 as unknown as bigint), /write hyper/);
    expectXdrError(() => w.uhyper(-1n), /write unsigned hyper/);
    expectXdrError(() => w.uhyper(1n << 64n), /write unsigned hyper/);
    expectXdrError(() => w.enumValue(2 ** 31), /write enum/);
    expectXdrError(() => w.bool(1 as unknown as boolean), /write bool/);
    expectXdrError(() => w.double('x' as unknown as number), /write double/);
    expect(w.length).toBe(4);
  });

  it('lengths over the maximum or wrong on write', () => {
    const w = new XdrWriter();
    expectXdrError(() => w.string('abcde', 4), /string<4> at offset 0: UTF-8 length 5 exceeds maximum 4/);
    expectXdrError(() => w.string('éé', 3), /UTF-8 length 4/);
    expectXdrError(() => w.opaqueVar(Buffer.alloc(3), 2), /opaque<2>/);
    expectXdrError(
      () => w.opaqueFixed(Buffer.alloc(3), 4),
      /opaque\[4\] at offset 0: got 3 bytes, need exactly 4/,
    );
    expectXdrError(() => w.arrayFixed([1], 2, (w2, v) => w2.int(v)), /array\[2\]/);
    expectXdrError(() => w.arrayVar([1, 2, 3], 2, (w2, v) => w2.int(v)), /array<2>/);
    expectXdrError(() => w.string(5 as unknown as string), /not a string/);
    expectXdrError(() => w.opaqueVar('ab' as unknown as Buffer), /not a Uint8Array/);
    expect(w.length).toBe(0);
  });
});

describe('fuzz: readers only ever throw XdrError', () => {
  type Op = (r: XdrReader) => unknown;
  const ops: Op[] = [
    (r) => r.int(),
    (r) => r.uint(),
    (r) => r.hyper(),
    (r) => r.uhyper(),
    (r) => r.bool(),
    (r) => r.float(),
    (r) => r.double(),
    (r) => r.enumValue(new Set([0, 1, 2, 3])),
    (r) => r.opaqueFixed(5),
    (r) => r.opaqueVar(64),
    (r) => r.opaqueVar(),
    (r) => r.string(32),
    (r) => r.string(),
    (r) => r.optional((x) => x.string(16)),
    (r) => r.arrayFixed(3, (x) => x.hyper()),
    (r) => r.arrayVar(10, (x) => x.optional((y) => y.uint())),
    (r) => r.arrayVar(undefined, (x) => x.arrayVar(4, (y) => y.string())),
    (r) => r.assertEnd(),
  ];

  function run(buf: Uint8Array, schema: readonly Op[]): 'ok' | 'xdr' {
    const r = new XdrReader(buf);
    try {
      for (const op of schema) op(r);
      return 'ok';
    } catch (e) {
      if (e instanceof XdrError) return 'xdr';
      throw e;
    }
  }

  it('random buffers and random schemas', () => {
    const rand = rng(0x5eed);
    let errors = 0;
    for (let i = 0; i < 3000; i++) {
      const len = Math.floor(rand() * 64);
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) {
        // Favour small numbers and 0xff so lengths are sometimes plausible.
        const p = rand();
        buf[j] = p < 0.5 ? 0 : p < 0.7 ? 0xff : Math.floor(rand() * 256);
      }
      const schema = Array.from(
        { length: 1 + Math.floor(rand() * 6) },
        () => ops[Math.floor(rand() * ops.length)]!,
      );
      if (run(buf, schema) === 'xdr') errors++;
    }
    expect(errors).toBeGreaterThan(100);
  });

  it('truncated and corrupted valid encodings', () => {
    const rand = rng(42);
    const w = new XdrWriter();
    w.int(-5)
      .uhyper(99n)
      .string('hello, world', 32)
      .optional('x', (w2, v) => w2.string(v, 16));
    w.arrayVar([1, 2, 3], 10, (w2, v) => w2.optional(v, (w3, x) => w3.uint(x)));
    w.opaqueVar(Buffer.from('payload'), 64)
      .bool(true)
      .arrayFixed([1n, 2n, 3n], 3, (w2, v) => w2.hyper(v));
    const valid = w.finish();
    const schema: Op[] = [
      (r) => r.int(),
      (r) => r.uhyper(),
      (r) => r.string(32),
      (r) => r.optional((x) => x.string(16)),
      (r) => r.arrayVar(10, (x) => x.optional((y) => y.uint())),
      (r) => r.opaqueVar(64),
      (r) => r.bool(),
      (r) => r.arrayFixed(3, (x) => x.hyper()),
      (r) => r.assertEnd(),
    ];
    expect(run(valid, schema)).toBe('ok');
    for (let cut = 0; cut < valid.length; cut++) expect(run(valid.subarray(0, cut), schema)).toBe('xdr');
    for (let i = 0; i < 3000; i++) {
      const buf = Buffer.from(valid);
      const flips = 1 + Math.floor(rand() * 4);
      for (let k = 0; k < flips; k++) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
      run(buf.subarray(0, Math.floor(rand() * (buf.length + 1))), schema);
    }
  });
});
