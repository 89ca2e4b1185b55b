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
