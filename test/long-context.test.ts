// Long context: L = 16384 runs in O(L·D) extra memory (no L×L score matrix), checked row by row in float64.
import { describe, expect, test } from 'vitest';
import { createAttention } from '../src/index.js';
import { random } from './helpers.js';
import { referenceAttention } from './runtimes/reference.mjs';

const L = 16384, D = 64;
const MiB = 2 ** 20;

/** Output row i of single-head attention in float64: the reference on that one query (no causal: rows are independent). */
function referenceRow(q: Float32Array, k: Float32Array, v: Float32Array, i: number): Float64Array {
  return referenceAttention(q.subarray(i * D, (i + 1) * D), k, v, { batch: 1, heads: 1, seqQ: 1, seqK: L, headDim: D });
}

describe.each(['wasm-relaxed-simd', 'wasm-simd'] as const)('%s long context', (backend) => {
  test(`L = ${L}: memory growth beyond inputs and output stays under 64 MiB, sampled rows match float64`, async () => {
    const engine = await createAttention({ backend });
    const q = random(L * D, 1), k = random(L * D, 2), v = random(L * D, 3);
    const before = engine.memoryBytes;
    const out = engine.attention(q, k, v, { batch: 1, heads: 1, seqQ: L, seqK: L, headDim: D });
    const tensors = 4 * L * D * 4; // q, k, v and out, all copied into wasm memory
    const extra = engine.memoryBytes - before - tensors;
    console.log(`${backend}: wasm memory ${(engine.memoryBytes / MiB).toFixed(1)} MiB, ${(extra / MiB).toFixed(1)} MiB beyond the tensors`);
    expect(extra).toBeLessThan(64 * MiB);
    // The score matrix alone would be L² floats = 1 GiB.
    expect(engine.memoryBytes).toBeLessThan(L * L * 4);
    for (const i of [0, 1, 4095, 8191, 12345, L - 1]) {
      const want = referenceRow(q, k, v, i);
      let err = 0;
      for (let c = 0; c < D; c++) err = Math.max(err, Math.abs(out[i * D + c]! - want[c]!));
      expect(err, `row ${i}`).toBeLessThanOrEqual(1e-5);
    }
    engine.dispose();
  });
});
