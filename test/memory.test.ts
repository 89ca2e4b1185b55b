// The arena: no growth across repeated calls, clear errors for calls that cannot fit, usable afterwards.
import { describe, expect, test } from 'vitest';
import { createAttention } from '../src/index.js';
import { expectClose, random } from './helpers.js';
import { referenceAttention } from './runtimes/reference.mjs';

describe.each(['wasm-relaxed-simd', 'wasm-simd'] as const)('%s memory', (backend) => {
  test('10 000 calls of mixed shapes do not grow memory past the largest call', async () => {
    const engine = await createAttention({ backend });
    const shapes = [
      { batch: 1, heads: 2, seqQ: 17, seqK: 33, headDim: 16 },
      { batch: 2, heads: 1, seqQ: 1, seqK: 64, headDim: 8, causal: 'bottom-right' as const },
      { batch: 1, heads: 4, kvHeads: 2, seqQ: 9, seqK: 9, headDim: 5, headDimV: 3 },
    ];
    const inputs = shapes.map((o, i) => {
      const kv = o.kvHeads ?? o.heads;
      return {
        o,
        q: random(o.batch * o.heads * o.seqQ * o.headDim, 3 * i + 1),
        k: random(o.batch * kv * o.seqK * o.headDim, 3 * i + 2),
        v: random(o.batch * kv * o.seqK * (o.headDimV ?? o.headDim), 3 * i + 3),
      };
    });
    for (const { o, q, k, v } of inputs) engine.attention(q, k, v, o);
    const settled = engine.memoryBytes;
    expect(settled).toBeGreaterThan(0);
    for (let call = 0; call < 10_000; call++) {
      const { o, q, k, v } = inputs[call % inputs.length]!;
      engine.attention(q, k, v, o);
    }
    expect(engine.memoryBytes).toBe(settled);
    const { o, q, k, v } = inputs[0]!;
    expectClose(engine.attention(q, k, v, o), referenceAttention(q, k, v, o), 'after 10 000 calls');
    engine.dispose();
    expect(engine.memoryBytes).toBe(0);
  });

  test('a call over maxMemoryBytes throws OUT_OF_MEMORY before growing, then smaller calls work', async () => {
    const engine = await createAttention({ backend, maxMemoryBytes: 1 << 20 });
    const small = { batch: 1, heads: 1, seqQ: 8, seqK: 8, headDim: 8 };
    const q = random(64, 1), k = random(64, 2), v = random(64, 3);
    engine.attention(q, k, v, small);
    const before = engine.memoryBytes;
    const big = { batch: 1, heads: 1, seqQ: 8, seqK: 65536, headDim: 8 };
    const bigK = random(65536 * 8, 4), bigV = random(65536 * 8, 5);
    expect(() => engine.attention(q, bigK, bigV, big)).toThrow(expect.objectContaining({ code: 'OUT_OF_MEMORY' }));
    expect(engine.memoryBytes).toBe(before);
    expectClose(engine.attention(q, k, v, small), referenceAttention(q, k, v, small), 'after OUT_OF_MEMORY');
  });

  test('a call beyond wasm32 (4 GiB) throws OUT_OF_MEMORY without reading its inputs', async () => {
    const engine = await createAttention({ backend });
    // 2 GiB each, never written: the OS backs untouched pages lazily, so this costs no real memory.
    const seqK = 1 << 24;
    const k = new Float32Array(seqK * 32);
    const v = new Float32Array(seqK * 32);
    const q = random(32, 6);
    expect(() => engine.attention(q, k, v, { batch: 1, heads: 1, seqQ: 1, seqK, headDim: 32 }))
      .toThrow(expect.objectContaining({ code: 'OUT_OF_MEMORY', message: expect.stringContaining('4 GiB') }));
    const small = { batch: 1, heads: 1, seqQ: 1, seqK: 4, headDim: 32 };
    const k4 = random(128, 7), v4 = random(128, 8);
    expectClose(engine.attention(q, k4, v4, small), referenceAttention(q, k4, v4, small), 'after the 4 GiB refusal');
  });
});
