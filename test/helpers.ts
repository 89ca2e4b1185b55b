import { expect } from 'vitest';
import { BACKENDS, createAttention, isBackendSupported } from '../src/index.js';
import type { AttentionEngine, BackendName } from '../src/index.js';
import { closeTo } from './runtimes/cases.mjs';

// Deterministic inputs and the error measure come from the case list the smoke suite and benchmarks share.
export { maxAbsError, random } from './runtimes/cases.mjs';

/** Every backend in the one list, each on its own engine. The wasm ones must load: this suite runs with the relaxed-SIMD flag. */
export async function allEngines(): Promise<Map<BackendName, AttentionEngine>> {
  const engines = new Map<BackendName, AttentionEngine>();
  for (const { name } of BACKENDS) {
    expect(isBackendSupported(name), `${name} must be supported in the test runtime`).toBe(true);
    const engine = await createAttention({ backend: name });
    expect(engine.backend).toBe(name);
    engines.set(name, engine);
  }
  return engines;
}

export const BACKEND_NAMES = BACKENDS.map((b) => b.name);

/**
 * The suite's tolerance (shared with the smoke suite): max abs error ≤ 1e-5 · max(1, max |ref|), plus, when given,
 * the reference's per-element bound for float32 score rounding (referenceWithWeights(…, { bound: true })).
 */
export function expectClose(got: Float32Array, want: Float64Array, label: string, bound?: Float64Array): void {
  const { err, tol } = closeTo(got, want, bound);
  const what = bound ? 'max abs error beyond the rounding bound' : 'max abs error';
  expect(err, `${label}: ${what} ${err} (tolerance ${tol})`).toBeLessThanOrEqual(tol);
}

/** What `fn` throws (or null). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return null;
}
