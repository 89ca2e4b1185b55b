// 16-bit tensors (issue 11): q, k, v, out and appended tokens as Uint16Array of binary16 bits or Float16Array. The
// kernels decode while packing, exactly, so a call on 16-bit tensors is bit for bit the call on their float32
// values; a 16-bit `out` holds the float32 result rounded to nearest even. Conversions checked element by element
// against an independent implementation (quantize.mjs), in the wasm builds too.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BACKENDS, createAttention } from '../src/index.js';
import type { AttentionEngine, AttentionOptions, BackendName, HalfTensor } from '../src/index.js';
import { decodeHalves, halfToNumber, numberToHalf } from '../src/half.js';
import { allEngines, random } from './helpers.js';
import { halfBitsOf, toHalf } from './runtimes/quantize.mjs';
import { instantiateTesting } from './testing-wasm.js';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

/**
 * A Float16Array where the runtime has one; else a Uint16Array subclass tagged 'Float16Array'. The API reads the
 * internal slot, not the tag, so it takes the tagged array as a Uint16Array of binary16 bits: the same values.
 */
class Tagged extends Uint16Array {}
Object.defineProperty(Tagged.prototype, Symbol.toStringTag, { get: () => 'Float16Array' });
const F16 = (globalThis as { Float16Array?: new (n: number) => HalfTensor }).Float16Array;

/** Random binary16 bits of values in [−amp, amp), with NaN / ±∞ / subnormals sprinkled in when `special`. */
function halves(n: number, seed: number, amp = 1, special = false): Uint16Array {
  const bits = Uint16Array.from(random(n, seed, amp), (x) => numberToHalf(x));
  if (special) for (let i = 0; i < n; i += 37) bits[i] = [0x7e00, 0x7c00, 0xfc00, 0x0001, 0x8200][(i / 37) % 5]!;
  return bits;
}
function asTagged(bits: Uint16Array): HalfTensor {
  if (F16 !== undefined) {
    const f = new F16(bits.length);
    (f as unknown as Float32Array).set(decodeHalves(bits)); // a real Float16Array stores the same binary16 values
    return f;
  }
  const t = new Tagged(bits.length);
  t.set(bits);
  return t as unknown as HalfTensor;
}

describe.each(BACKENDS.map((b) => b.name))('%s', (backend) => {
  const shapes: (AttentionOptions & { name: string })[] = [
    { name: 'GQA 4/2 causal 70x130 d24', batch: 1, heads: 4, kvHeads: 2, seqQ: 70, seqK: 130, headDim: 24, causal: true },
    { name: 'decode 8/2 heads d64', batch: 2, heads: 8, kvHeads: 2, seqQ: 1, seqK: 200, headDim: 64, causal: 'bottom-right' },
    { name: 'bshd, headDimV 5, window + ALiBi', batch: 1, heads: 2, seqQ: 9, seqK: 40, headDim: 13, headDimV: 5, layout: 'bshd', window: [7, 1], alibiSlopes: Float32Array.of(0.5, 0.25) },
    { name: 'RoPE (the copy it rotates is decoded)', batch: 1, heads: 2, seqQ: 5, seqK: 33, headDim: 16, rope: { dims: 8, positionQ: 28 } },
  ];

  test.each(shapes)('$name: 16-bit q, k, v (bits and Float16Array, mixed with float32) give the float32 call bit for bit', ({ name: _, ...o }) => {
    const e = engines.get(backend)!;
    const kvh = o.kvHeads ?? o.heads, dv = o.headDimV ?? o.headDim;
    const q = halves(o.batch * o.heads * o.seqQ * o.headDim, 1, 2, true);
    const k = halves(o.batch * kvh * o.seqK * o.headDim, 2, 2);
    const v = halves(o.batch * kvh * o.seqK * dv, 3, 1);
    const want = e.attention(decodeHalves(q), decodeHalves(k), decodeHalves(v), o);
    expect(e.attention(q, k, v, o)).toEqual(want);
    expect(e.attention(asTagged(q), decodeHalves(k), asTagged(v), o)).toEqual(want);
    // a 16-bit out: the float32 result rounded to nearest even (any NaN is a NaN: its sign bit is not compared)
    const out = new Uint16Array(want.length);
    expect(e.attention(q, k, v, { ...o, out })).toBe(out);
    const canonical = (h: number) => ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0 ? 0x7e00 : h);
    expect(Array.from(out, canonical)).toEqual(Array.from(want, (x) => numberToHalf(x)));
    expect(want.some(Number.isNaN) && want.some((x) => !Number.isNaN(x))).toBe(true); // NaN rows and the rest
  });

  test('KV caches take 16-bit tokens and queries, and write a 16-bit out', () => {
    const e = engines.get(backend)!;
    for (const dtype of ['float32', 'float16', 'int8'] as const) {
      const [H, KVH, D, S] = [4, 2, 32, 50];
      const k = halves(KVH * S * D, 4, 2), v = halves(KVH * S * D, 5);
      const a = e.createKVCache({ batch: 1, kvHeads: KVH, headDim: D, capacity: S, dtype });
      const b = e.createKVCache({ batch: 1, kvHeads: KVH, headDim: D, capacity: S, dtype });
      a.append(k, asTagged(v));
      b.append(decodeHalves(k), decodeHalves(v));
      const q = halves(H * D, 6, 2);
      const want = b.attend(decodeHalves(q), { heads: H, seqQ: 1 });
      expect(a.attend(q, { heads: H, seqQ: 1 })).toEqual(want);
      const out = new Uint16Array(H * D);
      a.attend(q, { heads: H, seqQ: 1, out });
      expect(Array.from(out)).toEqual(Array.from(want, (x) => numberToHalf(x)));
    }
  });

  test('errors: 16-bit tensors of the wrong length, other integer arrays, linear attention', () => {
    const e = engines.get(backend)!;
    const o = { batch: 1, heads: 1, seqQ: 2, seqK: 3, headDim: 4 };
    const [q, k, v] = [new Uint16Array(8), new Uint16Array(12), new Uint16Array(12)];
    expect(() => e.attention(new Uint16Array(7), k, v, o)).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH', argument: 'q' }));
    expect(() => e.attention(q, k, new Uint16Array(13), o)).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH', argument: 'v' }));
    expect(() => e.attention(q, k, v, { ...o, out: new Uint16Array(9) })).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH', argument: 'options.out' }));
    expect(() => e.attention(new Int16Array(8) as never, k, v, o)).toThrow(expect.objectContaining({ code: 'INVALID_TYPE', argument: 'q' }));
    expect(() => e.linearAttention(q as never, k as never, v as never, o)).toThrow(expect.objectContaining({ code: 'INVALID_TYPE', argument: 'q' }));
    expect(e.attention(q, k, v, o)).toHaveLength(8);
  });
});

/** A 16-bit view over `bytes` of engine memory: a Float16Array (or, without one, a Uint16Array tagged as one) or bits. */
function view16(kind: 'bits' | 'float16', buffer: ArrayBufferLike, byteOffset: number, length: number): HalfTensor {
  const b = buffer as ArrayBuffer;
  if (kind === 'bits') return new Uint16Array(b, byteOffset, length);
  const F16view = F16 as unknown as (new (b: ArrayBuffer, o: number, n: number) => HalfTensor) | undefined;
  return F16view !== undefined ? new F16view(b, byteOffset, length) : (new Tagged(b, byteOffset, length) as unknown as HalfTensor);
}
const bitsOf = (x: HalfTensor) => Array.from(new Uint16Array(x.buffer, x.byteOffset, (x as Uint16Array).length));

describe.each(['wasm-relaxed-simd', 'wasm-simd'] as const)('%s: 16-bit views of engine memory', (backend) => {
  test.each(['bits', 'float16'] as const)('%s: a view of a freed tensor (outside every live tensor) is refused with INVALID_TYPE, never read or written', async (kind) => {
    const e = await createAttention({ backend });
    try {
      const t = e.alloc(1024);
      const buffer = t.array.buffer, at = t.array.byteOffset;
      t.free(); // the block now belongs to no tensor: the cache below reuses it
      const cache = e.createKVCache({ batch: 1, kvHeads: 1, headDim: 8, capacity: 64 });
      cache.append(random(64, 1), random(64, 2));
      const q1 = random(8, 3);
      const before = cache.attend(q1, { heads: 1, seqQ: 1 });
      const stale = view16(kind, buffer, at, 64);
      const o = { batch: 1, heads: 1, seqQ: 8, seqK: 8, headDim: 8 };
      const [q, k, v] = [halves(64, 4), halves(64, 5), halves(64, 6)];
      const refused = (fn: () => unknown, argument: string) => expect(fn).toThrow(expect.objectContaining({ code: 'INVALID_TYPE', argument }));
      refused(() => e.attention(stale, k, v, o), 'q');
      refused(() => e.attention(q, stale, v, o), 'k');
      refused(() => e.attention(q, k, stale, o), 'v');
      refused(() => e.attention(q, k, v, { ...o, out: stale }), 'options.out');
      refused(() => e.attention(q, k, v, { ...o, out: view16(kind, buffer, at + 2, 64) }), 'options.out'); // not 4-byte aligned
      refused(() => cache.attend(view16(kind, buffer, at, 8), { heads: 1, seqQ: 1 }), 'q');
      refused(() => cache.attend(q1, { heads: 1, seqQ: 1, out: view16(kind, buffer, at, 8) }), 'options.out');
      refused(() => cache.append(view16(kind, buffer, at, 8), halves(8, 7)), 'k');
      refused(() => cache.append(halves(8, 7), view16(kind, buffer, at, 8)), 'v');
      expect(cache.length).toBe(8);
      expect(cache.attend(q1, { heads: 1, seqQ: 1 })).toEqual(before); // the cache's memory is untouched
    } finally {
      e.dispose();
    }
  });

  test.each(['bits', 'float16'] as const)('%s: views inside a live tensor are used in place by offset, also when the call grows memory', async (kind) => {
    const ref = engines.get(backend)!;
    const [L, S, D] = [8, 40000, 8]; // seqK large enough that every call below grows memory
    const k = random(S * D, 8), v = random(S * D, 9);
    const qBits = halves(L * D, 10, 2);
    const o = { batch: 1, heads: 1, seqQ: L, seqK: S, headDim: D };
    const want = ref.attention(decodeHalves(qBits), k, v, o);
    const wantRope = ref.attention(decodeHalves(qBits), k, v, { ...o, rope: { dims: 8, positionQ: 3 } });
    const grows = async (run: (e: AttentionEngine, t: Float32Array) => void) => {
      const e = await createAttention({ backend });
      try {
        const t = e.alloc(4 * L * D);
        const before = e.memoryBytes;
        run(e, t.array);
        expect(e.memoryBytes, 'the call grew memory').toBeGreaterThan(before);
      } finally {
        e.dispose();
      }
    };
    // q: a 16-bit view at a 2-byte (not 4-byte) offset inside the tensor, with and without RoPE (its copy is decoded)
    for (const [options, expected] of [[o, want], [{ ...o, rope: { dims: 8, positionQ: 3 } }, wantRope]] as const) {
      await grows((e, t) => {
        const q = view16(kind, t.buffer, t.byteOffset + 6, L * D);
        new Uint16Array(t.buffer, t.byteOffset + 6, L * D).set(qBits);
        expect(e.attention(q, k, v, options)).toEqual(expected);
      });
    }
    // out: written into the tensor as binary16; the call returns a view of the same elements (the old one is detached)
    const rounded = Array.from(want, (x) => numberToHalf(x));
    await grows((e, t) => {
      const at = t.byteOffset + 2, out = view16(kind, t.buffer, at, L * D);
      const returned = e.attention(decodeHalves(qBits), k, v, { ...o, out }) as HalfTensor;
      expect(out.byteLength, 'the call detached the view passed').toBe(0);
      expect(bitsOf(returned)).toEqual(rounded);
      expect(returned.byteOffset).toBe(at);
      expect(Object.prototype.toString.call(returned)).toBe(Object.prototype.toString.call(kind === 'bits' || F16 === undefined ? new Uint16Array(0) : out));
      expect(Array.from(new Uint16Array(e.alloc(1).array.buffer, at, L * D)), 'written into the tensor').toEqual(rounded);
    });
  });

  test.each(['bits', 'float16'] as const)('%s: KV-cache appends from views inside a live tensor, also when the append grows memory (and with RoPE)', async (kind) => {
    const ref = engines.get(backend)!;
    const [n, D] = [4000, 8];
    const kBits = halves(n * D, 11, 2), vBits = halves(n * D, 12);
    const q = random(2 * D, 13);
    for (const extra of [{}, { rope: { dims: 8 } }, { dtype: 'float16' as const }]) {
      const want = ref.createKVCache({ batch: 1, kvHeads: 1, headDim: D, capacity: 3 * n, ...extra });
      want.append(kBits, vBits);
      const e = await createAttention({ backend });
      try {
        const cache = e.createKVCache({ batch: 1, kvHeads: 1, headDim: D, capacity: 3 * n, ...extra });
        const t = e.alloc(n * D + 4); // k at byte 2, v after it: both 16-bit views inside the tensor
        // A tensor up to the end of memory: whatever the append needs beyond its in-place tokens grows memory.
        const top = t.array.byteOffset + t.array.byteLength;
        if (e.memoryBytes > top) e.alloc((e.memoryBytes - top) / 4);
        const k16 = view16(kind, t.array.buffer, t.array.byteOffset + 2, n * D);
        const v16 = view16(kind, t.array.buffer, t.array.byteOffset + 2 + 2 * n * D, n * D);
        new Uint16Array(t.array.buffer, t.array.byteOffset + 2, n * D).set(kBits);
        new Uint16Array(t.array.buffer, t.array.byteOffset + 2 + 2 * n * D, n * D).set(vBits);
        const before = e.memoryBytes;
        cache.append(k16, v16);
        expect(e.memoryBytes, 'the append grew memory').toBeGreaterThan(before);
        expect(cache.attend(q, { heads: 2, seqQ: 1 }), JSON.stringify(extra)).toEqual(want.attend(q, { heads: 2, seqQ: 1 }));
      } finally {
        e.dispose();
        want.dispose();
      }
    }
  });
});

describe('binary16 conversions', () => {
  test('host: every bit pattern decodes to the value it encodes; rounding to nearest even agrees with quantize.mjs', () => {
    for (let h = 0; h < 65536; h++) {
      const x = halfToNumber(h);
      if (Number.isNaN(x)) expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true);
      else expect(halfBitsOf(x), `bits ${h}`).toBe(h);
    }
    const edge = [65504, 65519.99, 65520, 1e9, 2 ** -14, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0001, 3 * 2 ** -26, 2049, 2051, 1 / 3, -0.1, 0];
    for (const x of [...edge, ...random(20000, 9, 1).map((r, i) => r * 2 ** ((i % 50) - 30))]) expect(halfToNumber(numberToHalf(x)), `${x}`).toBe(toHalf(x));
  });

  test.each(['wasm-simd', 'wasm-relaxed-simd'] as const)('%s: the kernels decode every bit pattern and round like the host', async (variant) => {
    const t = await instantiateTesting(variant);
    for (let h = 0; h < 65536; h++) {
      const got = t.halfToF32(h), want = halfToNumber(h);
      if (Number.isNaN(want)) expect(Number.isNaN(got)).toBe(true);
      else expect(Object.is(got, want) || (got === want), `bits ${h}`).toBe(true);
    }
    const xs = [65504, 65519.99, 65520, 1e9, Infinity, -Infinity, NaN, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2049, 2051, 1 / 3, -0.1, -0, 0, ...random(20000, 10, 1).map((r, i) => r * 2 ** ((i % 50) - 30))];
    for (const x of xs) expect(t.f32ToHalf(x), `${x}`).toBe(numberToHalf(x));
  });
});
