// What float16 and int8 caches hold (issue 11): bytes, saturation beyond ±65504, float16 subnormals, int8 blocks
// and their shorter last block; bad input refused before anything is written (the cache unchanged).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BACKENDS } from '../src/index.js';
import type { AttentionEngine, BackendName, KVCacheDtype } from '../src/index.js';
import { allEngines, random } from './helpers.js';
import { DTYPES } from './kvcache-helpers.js';
import { halfBitsOf, toCacheHalf, toInt8Rows } from './runtimes/quantize.mjs';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

/** One key, so the output is the stored value row itself (weight exactly 1). */
function storedRow(e: AttentionEngine, dtype: KVCacheDtype, row: Float32Array): Float32Array {
  const D = row.length;
  const cache = e.createKVCache({ batch: 1, kvHeads: 1, headDim: D, capacity: 1, dtype });
  cache.append(new Float32Array(D), row);
  const out = cache.attend(random(D, 1), { heads: 1, seqQ: 1 });
  cache.dispose();
  return out;
}

describe.each(BACKENDS.map((b) => b.name))('%s', (backend) => {
  test('bytes: float16 ≤ 0.52×, int8 ≤ 0.3× of float32 at headDim 128 (scales included); dtype and window reported', () => {
    const e = engines.get(backend)!;
    const size = (dtype: KVCacheDtype) => {
      const c = e.createKVCache({ batch: 1, kvHeads: 8, headDim: 128, capacity: 4096, dtype });
      expect(c.dtype).toBe(dtype);
      expect(c.window).toBe(null);
      const bytes = c.bytes;
      c.dispose();
      return bytes;
    };
    const f32 = size('float32');
    expect(f32).toBeGreaterThanOrEqual(8 * 4096 * 128 * 8);
    expect(size('float16') / f32).toBeLessThanOrEqual(0.52);
    expect(size('int8') / f32).toBeLessThanOrEqual(0.3);
  });

  test('float16 rounds to nearest even, saturates beyond ±65504 and keeps subnormals; int8 blocks of 32 with a shorter last', () => {
    const e = engines.get(backend)!;
    const row = Float32Array.of(1e5, -1e5, 65519, 65520, 2 ** -20, -3e-8, 1 / 3, 2049, 2051, 0.1, -2.5, 6e-5, 5.96e-8, 1234.5678, 7, 3e-5);
    const got = storedRow(e, 'float16', row);
    expect(Array.from(got, (x) => halfBitsOf(x))).toEqual(Array.from(row, (x) => halfBitsOf(toCacheHalf(x))));
    expect(got[0]).toBe(65504);
    expect(got[1]).toBe(-65504);
    for (const D of [32, 33, 70]) { // one block, a 1-channel last block, a 6-channel last block
      const x = Float32Array.from(random(D, D, 3), (v, i) => (i === D - 1 ? v * 100 : v));
      const stored = toInt8Rows(x, D);
      const out = storedRow(e, 'int8', x);
      for (let i = 0; i < D; i++) expect(Math.abs(out[i]! - stored[i]!)).toBeLessThanOrEqual(1e-6 * Math.abs(stored[i]!) + 1e-30);
    }
  });

  test('NaN or ±Infinity appended to a float16 or int8 cache is refused before anything is written', () => {
    const e = engines.get(backend)!;
    for (const dtype of ['float16', 'int8'] as const) {
      const cache = e.createKVCache({ batch: 2, kvHeads: 1, headDim: 4, capacity: 8, dtype });
      const k = random(2 * 3 * 4, 1), v = random(2 * 3 * 4, 2);
      cache.append(k, v);
      const q = random(2 * 4, 3);
      const before = cache.attend(q, { heads: 1, seqQ: 1 });
      for (const [bad, arg] of [[NaN, 'k'], [Infinity, 'v'], [-Infinity, 'k']] as const) {
        const k2 = random(2 * 4, 4), v2 = random(2 * 4, 5);
        (arg === 'k' ? k2 : v2)[5] = bad;
        expect(() => cache.append(k2, v2)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', argument: arg }));
        expect(Array.from(cache.lengths)).toEqual([3, 3]);
        expect(cache.attend(q, { heads: 1, seqQ: 1 })).toEqual(before);
      }
      // binary16 inputs: the ∞ bit pattern too
      const bits = new Uint16Array(2 * 4).fill(0x3c00);
      bits[2] = 0x7c00;
      expect(() => cache.append(bits, new Uint16Array(2 * 4))).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', argument: 'k' }));
      expect(cache.attend(q, { heads: 1, seqQ: 1 })).toEqual(before);
    }
    // float32 caches keep NaN as before (IEEE semantics, README "NaN and Infinity")
    const f32 = e.createKVCache({ batch: 1, kvHeads: 1, headDim: 2, capacity: 2 });
    f32.append(Float32Array.of(NaN, 1), Float32Array.of(1, 1));
    expect(Number.isNaN(f32.attend(Float32Array.of(1, 1), { heads: 1, seqQ: 1 })[0])).toBe(true);
  });

  test('bad options: unknown dtype, windows and capacities, wrong 16-bit lengths, rows', () => {
    const e = engines.get(backend)!;
    const base = { batch: 1, kvHeads: 1, headDim: 4, capacity: 8 };
    expect(() => e.createKVCache({ ...base, dtype: 'int4' as never })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', argument: 'options.dtype' }));
    expect(() => e.createKVCache({ ...base, dtype: 'bfloat16' as never })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', argument: 'options.dtype' }));
    expect(() => e.createKVCache({ ...base, window: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_DIMENSION', argument: 'options.window' }));
    expect(() => e.createKVCache({ ...base, window: 16 })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', argument: 'options.capacity' }));
    expect(() => e.createKVCache({ batch: 1, kvHeads: 1, headDim: 4 } as never)).toThrow(expect.objectContaining({ code: 'INVALID_DIMENSION', argument: 'options.capacity' }));
    const cache = e.createKVCache({ ...base, dtype: 'float16' });
    expect(() => cache.append(new Uint16Array(7), new Uint16Array(8))).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH', argument: 'k' }));
    expect(() => cache.append(new Uint16Array(8), new Uint16Array(9))).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH', argument: 'v' }));
    expect(() => cache.append(new Int16Array(8) as never, new Uint16Array(8))).toThrow(expect.objectContaining({ code: 'INVALID_TYPE', argument: 'k' }));
    expect(() => cache.append(random(4, 1), random(4, 2), { rows: [1] })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', argument: 'options.rows' }));
    expect(() => cache.append(random(4, 1), random(4, 2), { bogus: 1 } as never)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', argument: 'options.bogus' }));
    cache.append(new Uint16Array(4).fill(0x3c00), new Uint16Array(4).fill(0x4000)); // 1.0 and 2.0
    expect(() => cache.attend(new Uint16Array(3), { heads: 1, seqQ: 1 })).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH', argument: 'q' }));
    expect(() => cache.reset(1)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', argument: 'row' }));
    expect(Array.from(cache.attend(random(4, 3), { heads: 1, seqQ: 1 }))).toEqual([2, 2, 2, 2]);
  });

  test('every dtype: memory of a disposed cache is reused; lengths, length and reset', () => {
    const e = engines.get(backend)!;
    for (const dtype of DTYPES) {
      const c = e.createKVCache({ batch: 3, kvHeads: 2, headDim: 8, capacity: 40, dtype });
      c.append(random(3 * 2 * 5 * 8, 1), random(3 * 2 * 5 * 8, 2));
      expect(Array.from(c.lengths)).toEqual([5, 5, 5]);
      expect(c.length).toBe(5);
      c.reset(1);
      expect(Array.from(c.lengths)).toEqual([5, 0, 5]);
      c.reset();
      expect(c.length).toBe(0);
      c.dispose();
      expect(() => c.attend(random(8, 1), { heads: 2, seqQ: 1 })).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
    }
  });
});
