// KV caches against the one-shot API on the same data: prefill, decode steps, GQA/MQA, both causal modes.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createAttention } from '../src/index.js';
import type { AttentionEngine, BackendName, KVAttendOptions } from '../src/index.js';
import { BACKEND_NAMES, allEngines, expectClose, maxAbsError, random } from './helpers.js';
import { referenceAttention } from './runtimes/reference.mjs';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

/** Tokens [from, to) of a [B, KVH, S, d] tensor, as a [B, KVH, to − from, d] tensor. */
function tokens(x: Float32Array, B: number, KVH: number, S: number, d: number, from: number, to: number): Float32Array {
  const out = new Float32Array(B * KVH * (to - from) * d);
  for (let h = 0; h < B * KVH; h++) out.set(x.subarray((h * S + from) * d, (h * S + to) * d), h * (to - from) * d);
  return out;
}

const SETUPS = [
  { name: 'MHA', batch: 2, heads: 2, kvHeads: 2, headDim: 16, headDimV: 16 },
  { name: 'GQA 4/2, headDimV 5', batch: 1, heads: 4, kvHeads: 2, headDim: 12, headDimV: 5 },
  { name: 'MQA 6/1, headDim 65', batch: 1, heads: 6, kvHeads: 1, headDim: 65, headDimV: 8 },
];

describe.each(BACKEND_NAMES)('%s KV cache', (backend) => {
  test.each(SETUPS)('$name: prefill, chunked prefill and decode steps match one-shot attention', (s) => {
    const e = engines.get(backend)!;
    const S = 140;
    const K = random(s.batch * s.kvHeads * S * s.headDim, 1);
    const V = random(s.batch * s.kvHeads * S * s.headDimV, 2);
    const cache = e.createKVCache({ batch: s.batch, kvHeads: s.kvHeads, headDim: s.headDim, headDimV: s.headDimV, capacity: S });
    const steps = [70, 1, 64, 1, 1, 3]; // prefill 70, decode 1, a 64-token chunk, …
    let len = 0;
    let seed = 10;
    for (const n of steps) {
      cache.append(tokens(K, s.batch, s.kvHeads, S, s.headDim, len, len + n), tokens(V, s.batch, s.kvHeads, S, s.headDimV, len, len + n));
      len += n;
      expect(cache.length).toBe(len);
      const k = tokens(K, s.batch, s.kvHeads, S, s.headDim, 0, len);
      const v = tokens(V, s.batch, s.kvHeads, S, s.headDimV, 0, len);
      for (const options of [
        { heads: s.heads, seqQ: n, causal: 'bottom-right' },
        { heads: s.heads, seqQ: 1 },
        { heads: s.heads, seqQ: 3, activation: 'sigmoid', softcap: 4 },
      ] as KVAttendOptions[]) {
        const q = random(s.batch * s.heads * options.seqQ * s.headDim, seed++);
        const full = { ...options, batch: s.batch, kvHeads: s.kvHeads, seqK: len, headDim: s.headDim, headDimV: s.headDimV };
        const oneShot = e.attention(q, k, v, full);
        const cached = cache.attend(q, options);
        expect(maxAbsError(cached, oneShot)).toBeLessThanOrEqual(1e-6);
        expectClose(cached, referenceAttention(q, k, v, full), `${s.name} len ${len}`);
      }
    }
  });

  test('masks and returned weights work through the cache', () => {
    const e = engines.get(backend)!;
    const cache = e.createKVCache({ batch: 1, kvHeads: 1, headDim: 8, capacity: 32 });
    const k = random(20 * 8, 3), v = random(20 * 8, 4);
    cache.append(k, v);
    const q = random(2 * 8, 5);
    const mask = Uint8Array.from({ length: 20 }, (_, j) => (j % 3 ? 1 : 0));
    const options = { heads: 1, seqQ: 2, mask, maskShape: [20], returnWeights: true as const };
    const got = cache.attend(q, options);
    const want = e.attention(q, k, v, { ...options, batch: 1, seqK: 20, headDim: 8 });
    expect(maxAbsError(got.output, want.output)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsError(got.weights, want.weights)).toBeLessThanOrEqual(1e-6);
  });

  test('errors: capacity, shapes, empty cache, fixed options, disposal — and the cache keeps working', () => {
    const e = engines.get(backend)!;
    const cache = e.createKVCache({ batch: 1, kvHeads: 2, headDim: 4, capacity: 5 });
    const q = random(2 * 4, 9);
    expect(Array.from(cache.attend(q, { heads: 2, seqQ: 1 }))).toEqual(new Array(2 * 4).fill(0)); // no token: zeros
    expect(() => cache.append(random(2 * 6 * 4, 1), random(2 * 6 * 4, 2))).toThrow(expect.objectContaining({ code: 'CAPACITY_EXCEEDED' }));
    expect(() => cache.append(random(7, 1), random(7, 2))).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH', argument: 'k' }));
    expect(() => cache.append(random(8, 1), random(9, 2))).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH', argument: 'v' }));
    expect(() => cache.append(new Float64Array(8) as never, random(8, 2))).toThrow(expect.objectContaining({ code: 'INVALID_TYPE', argument: 'k' }));
    const k = random(2 * 4, 3), v = random(2 * 4, 4);
    cache.append(k, v);
    expect(cache.length).toBe(1);
    expect(() => cache.attend(q, { heads: 2, seqQ: 1, seqK: 1 } as never)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', argument: 'options.seqK' }));
    expect(() => cache.attend(q, { heads: 3, seqQ: 1 })).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
    expectClose(cache.attend(q, { heads: 2, seqQ: 1 }), referenceAttention(q, k, v, { batch: 1, heads: 2, seqQ: 1, seqK: 1, headDim: 4 }), 'after errors');
    cache.reset();
    expect(cache.length).toBe(0);
    cache.dispose();
    cache.dispose();
    expect(() => cache.append(k, v)).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
    expect(() => cache.attend(q, { heads: 2, seqQ: 1 })).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
    expect(() => e.createKVCache({ batch: 1, kvHeads: 0, headDim: 4, capacity: 5 })).toThrow(expect.objectContaining({ code: 'INVALID_DIMENSION' }));
  });
});

describe.each(['wasm-relaxed-simd', 'wasm-simd'] as const)('%s KV cache memory', (backend) => {
  test('decode steps copy only the new token: memory does not grow per step, dispose gives the space back', async () => {
    const e = await createAttention({ backend });
    const cache = e.createKVCache({ batch: 1, kvHeads: 4, headDim: 64, capacity: 512 });
    cache.append(random(4 * 256 * 64, 1), random(4 * 256 * 64, 2));
    const q = random(8 * 64, 3);
    cache.attend(q, { heads: 8, seqQ: 1, causal: 'bottom-right' });
    const settled = e.memoryBytes;
    for (let t = 0; t < 200; t++) {
      cache.append(random(4 * 64, 10 + t), random(4 * 64, 20 + t));
      cache.attend(q, { heads: 8, seqQ: 1, causal: 'bottom-right' });
    }
    expect(cache.length).toBe(456);
    expect(e.memoryBytes).toBe(settled);
    cache.dispose();
    const again = e.createKVCache({ batch: 1, kvHeads: 4, headDim: 64, capacity: 512 });
    again.append(random(4 * 64, 1), random(4 * 64, 2));
    again.attend(q, { heads: 8, seqQ: 1 });
    expect(e.memoryBytes).toBe(settled);
    e.dispose();
    expect(() => again.attend(q, { heads: 8, seqQ: 1 })).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
  });

  test('a cache beyond maxMemoryBytes is refused with OUT_OF_MEMORY, the engine keeps working', async () => {
    const e = await createAttention({ backend, maxMemoryBytes: 8 << 20 });
    expect(() => e.createKVCache({ batch: 1, kvHeads: 32, headDim: 128, capacity: 4096 })).toThrow(expect.objectContaining({ code: 'OUT_OF_MEMORY' }));
    const cache = e.createKVCache({ batch: 1, kvHeads: 1, headDim: 8, capacity: 16 });
    const k = random(8, 1), v = random(8, 2), q = random(8, 3);
    cache.append(k, v);
    expectClose(cache.attend(q, { heads: 1, seqQ: 1 }), referenceAttention(q, k, v, { batch: 1, heads: 1, seqQ: 1, seqK: 1, headDim: 8 }), 'small cache');
  });
});
