// Long context: L = 16384 runs in O(L·D) extra memory (no L×L score matrix), checked row by row in float64.
import { describe, expect, test } from 'vitest';
import { createAttention } from '../src/index.js';
import { random } from './helpers.js';

const L = 16384, D = 64;
const MiB = 2 ** 20;

/** Output row i of single-head attention in float64, straight from the definition. */
function referenceRow(q: Float32Array, k: Float32Array, v: Float32Array, i: number): Float64Array {
  const scale = 1 / Math.sqrt(D);
  const s = new Float64Array(L);
  let max = -Infinity;
  for (let j = 0; j < L; j++) {
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[i * D + d]! * k[j * D + d]!;
    s[j] = dot * scale;
    max = Math.max(max, s[j]!);
  }
  const out = new Float64Array(D);
  let sum = 0;
  for (let j = 0; j < L; j++) {
    const p = Math.exp(s[j]! - max);
    sum += p;
    for (let c = 0; c < D; c++) out[c]! += p * v[j * D + c]!;
  }
  return out.map((x) => x / sum);
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
