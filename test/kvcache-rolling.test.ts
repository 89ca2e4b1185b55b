// Rolling caches for sliding-window layers (issue 11): createKVCache({ window: W }) keeps the latest `capacity`
// tokens of each row in a ring and attend applies the window [W − 1, ·]; positions keep counting (RoPE, ALiBi,
// bottom-right alignment). Over 10×W appended tokens — single tokens and chunks — every backend and dtype matches
// one-shot attention over the whole history with the same window, and memory stays O(W).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BACKENDS } from '../src/index.js';
import type { AttentionEngine, BackendName, KVAttendOptions } from '../src/index.js';
import { allEngines, random } from './helpers.js';
import { DTYPES, expectBound, expectStored, tokens } from './kvcache-helpers.js';
import { referenceAttention } from './runtimes/cases.mjs';
import type { RefOptions } from './runtimes/cases.mjs';
import { storedAs } from './runtimes/quantize.mjs';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

const [B, H, KVH, D] = [2, 4, 2, 16];
const W = 37; // not a multiple of the 8-key panel or the 32-key super-panel
const CHUNK = 12;

describe.each(BACKENDS.map((b) => b.name))('%s', (backend) => {
  test.each(DTYPES.flatMap((dtype) => [false, true].map((rope) => ({ dtype, rope }))))(
    '$dtype rope $rope: 10×W tokens in single steps and chunks match one-shot attention with window [W − 1, 0]',
    ({ dtype, rope }) => {
      const e = engines.get(backend)!;
      const total = 10 * W + 5;
      const K = random(B * KVH * total * D, 1, 1.5), V = random(B * KVH * total * D, 2);
      const ropeOptions = { dims: 16, positionK: 0, positionQ: 0 };
      const cache = e.createKVCache({ batch: B, kvHeads: KVH, headDim: D, window: W, capacity: W - 1 + CHUNK, dtype, ...(rope ? { rope: ropeOptions } : {}) });
      expect(cache.window).toBe(W);
      const bytes = cache.bytes;
      let len = 0, step = 0, memory = 0;
      while (len < total) {
        const n = Math.min(total - len, step % 5 === 4 ? CHUNK : 1); // mostly decode steps, a chunk every fifth
        cache.append(tokens(K, B, KVH, total, D, len, len + n), tokens(V, B, KVH, total, D, len, len + n));
        len += n;
        step++;
        expect(cache.length).toBe(len);
        if (step === 20) memory = e.memoryBytes;
        if (step % 3 !== 0 && n === 1) continue; // check every third decode step and every chunk
        const q = random(B * H * n * D, len, 1.5);
        const alibi = step % 2 === 0 ? { alibiSlopes: Float32Array.of(0.3, 0.2, 0.1, 0.05) } : {};
        const options = { heads: H, seqQ: n, causal: 'bottom-right', ...alibi } as KVAttendOptions;
        const got = cache.attend(q, options);
        const k = tokens(K, B, KVH, total, D, 0, len), v = tokens(V, B, KVH, total, D, 0, len);
        const o = { ...options, batch: B, kvHeads: KVH, seqK: len, headDim: D, window: [W - 1, 0],
          ...(rope ? { rope: { ...ropeOptions, positionQ: len - n } } : {}) } as RefOptions;
        const label = `step ${step}, length ${len}, ${n} queries`;
        expectBound(got, referenceAttention(q, k, v, o), dtype, label);
        if (!rope) expectStored(got, referenceAttention(q, Float32Array.from(storedAs(k, dtype, D)), Float32Array.from(storedAs(v, dtype, D)), o), dtype, label);
      }
      expect(cache.bytes).toBe(bytes);
      if (backend !== 'js') expect(e.memoryBytes).toBe(memory); // nothing grows with the generation
      cache.dispose();
    },
  );

  test('the caller\'s window joins the cache\'s; ragged rows roll independently; a mask spans every position', () => {
    const e = engines.get(backend)!;
    const total = 4 * W;
    const K = random(B * KVH * total * D, 3), V = random(B * KVH * total * D, 4);
    const cache = e.createKVCache({ batch: B, kvHeads: KVH, headDim: D, window: W, capacity: 48 });
    const row = (x: Float32Array, b: number, from: number, to: number) => tokens(x.subarray(b * KVH * total * D, (b + 1) * KVH * total * D), 1, KVH, total, D, from, to);
    const lengths = [0, 0];
    for (let t = 0; t < total; t++) {
      const b = t % 3 === 0 ? 1 : 0; // row 0 gets two tokens for every one of row 1
      cache.append(row(K, b, lengths[b]!, lengths[b]! + 1), row(V, b, lengths[b]!, lengths[b]! + 1), { rows: [b] });
      lengths[b]!++;
    }
    expect(Array.from(cache.lengths)).toEqual(lengths);
    for (const b of [0, 1]) {
      const len = lengths[b]!;
      const q = random(H * D, b + 10, 1.5);
      const mask = Uint8Array.from(random(len, b + 20), (x) => (x > -0.7 ? 1 : 0));
      for (const extra of [{}, { window: [10, 0] as [number, number] }, { mask, maskShape: [len] }]) {
        const options = { heads: H, seqQ: 1, rows: [b], ...extra } as KVAttendOptions;
        const o = { heads: H, seqQ: 1, ...extra, batch: 1, kvHeads: KVH, seqK: len, headDim: D, window: [Math.min(W - 1, extra.window?.[0] ?? Infinity), Infinity] } as RefOptions;
        expectBound(cache.attend(q, options), referenceAttention(q, row(K, b, 0, len), row(V, b, 0, len), o), 'float32', `row ${b} ${JSON.stringify({ ...extra, mask: undefined })}`);
      }
    }
  });

  test('errors: a chunk longer than the ring keeps, returned weights', () => {
    const e = engines.get(backend)!;
    const cache = e.createKVCache({ batch: 1, kvHeads: 1, headDim: 4, window: 16 });
    expect(cache.capacity).toBe(16);
    cache.append(random(10 * 4, 1), random(10 * 4, 2));
    cache.attend(random(10 * 4, 3), { heads: 1, seqQ: 10 }); // nothing evicted yet: any chunk works
    cache.append(random(20 * 4, 1), random(20 * 4, 2)); // 30 tokens through a 16-slot ring: fine
    expect(cache.length).toBe(30);
    expect(() => cache.attend(random(2 * 4, 3), { heads: 1, seqQ: 2 })).toThrow(expect.objectContaining({ code: 'CAPACITY_EXCEEDED', argument: 'q' }));
    expect(() => cache.attend(random(4, 3), { heads: 1, seqQ: 1, returnWeights: true })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', argument: 'options.returnWeights' }));
    expect(cache.attend(random(4, 3), { heads: 1, seqQ: 1 })).toHaveLength(4);
  });
});
