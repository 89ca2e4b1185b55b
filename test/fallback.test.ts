// A runtime without wasm SIMD, as the package sees it: WebAssembly.validate rejects both builds.
import { afterEach, expect, test, vi } from 'vitest';
import { expectClose, random } from './helpers.js';
import { referenceAttention } from './runtimes/reference.mjs';

afterEach(() => {
  vi.restoreAllMocks();
  vi.resetModules();
});

test('without SIMD, auto falls back to JS and wasm throws BACKEND_UNAVAILABLE', async () => {
  vi.resetModules();
  const validate = vi.spyOn(WebAssembly, 'validate').mockReturnValue(false);
  const pkg = await import('../src/index.js');
  expect(pkg.isBackendSupported('wasm-simd')).toBe(false);
  expect(pkg.isBackendSupported('wasm-relaxed-simd')).toBe(false);
  const engine = await pkg.createAttention();
  expect(engine.backend).toBe('js');
  await expect(pkg.createAttention({ backend: 'wasm' })).rejects.toMatchObject({
    name: 'AttentionError', code: 'BACKEND_UNAVAILABLE', argument: 'options.backend',
  });
  await expect(pkg.createAttention({ backend: 'wasm-simd' })).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
  expect(validate).toHaveBeenCalled();
  const o = { batch: 1, heads: 2, seqQ: 7, seqK: 9, headDim: 5, causal: true };
  const q = random(70, 1), k = random(90, 2), v = random(90, 3);
  expectClose(engine.attention(q, k, v, o), referenceAttention(q, k, v, o), 'js fallback');
});

// The JS kernels' tile edges (src/js/gemm.ts): decoding straight from float32 k and v (seqQ 1, both layouts, GQA,
// key lengths, windows), and the register-blocked two-row p·v over key chunks (seqK > 8192 / headDimV keys)
// with headDimV not a multiple of 4, odd seqQ and seqK, and windows that give the two rows of a pair other keys.
test('JS kernels: decode from float32, two-row p·v over several key chunks, ragged edges', async () => {
  const { createJsAttention } = await import('../src/js/index.js');
  const engine = createJsAttention();
  const cases = [
    { batch: 2, heads: 4, kvHeads: 2, seqQ: 1, seqK: 37, headDim: 7, headDimV: 5, keyLengths: new Int32Array([37, 20]) },
    { batch: 1, heads: 3, kvHeads: 1, seqQ: 1, seqK: 301, headDim: 64, layout: 'bshd' as const, window: [100, 0] as [number, number] },
    { batch: 1, heads: 2, seqQ: 1, seqK: 1, headDim: 3 },
    { batch: 1, heads: 2, seqQ: 5, seqK: 301, headDim: 16, headDimV: 64, causal: 'bottom-right' as const },
    { batch: 1, heads: 2, kvHeads: 1, seqQ: 9, seqK: 3000, headDim: 8, headDimV: 6, layout: 'bshd' as const, window: [2000, 3] as [number, number] },
    { batch: 2, heads: 1, seqQ: 2, seqK: 1, headDim: 4, headDimV: 1 },
  ];
  for (const o of cases) {
    const kvh = o.kvHeads ?? o.heads, dv = o.headDimV ?? o.headDim;
    const q = random(o.batch * o.heads * o.seqQ * o.headDim, 11);
    const k = random(o.batch * kvh * o.seqK * o.headDim, 12), v = random(o.batch * kvh * o.seqK * dv, 13);
    expectClose(engine.attention(q, k, v, o), referenceAttention(q, k, v, o), JSON.stringify({ ...o, keyLengths: undefined }));
  }
});
