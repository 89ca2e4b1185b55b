import { expect } from 'vitest';
import { BACKENDS, createAttention, isBackendSupported } from '../src/index.js';
import type { AttentionEngine, BackendName } from '../src/index.js';

/** Deterministic uniform [−1, 1) floats (mulberry32), so failures reproduce. */
export function random(n: number, seed: number, amplitude = 1): Float32Array {
  let t = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    a[i] = ((((r ^ (r >>> 14)) >>> 0) / 4294967296) * 2 - 1) * amplitude;
  }
  return a;
}

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

/** Max |got − want|, NaN when the two disagree on NaN-ness or lengths. */
export function maxAbsError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return NaN;
  let err = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (Number.isNaN(d)) return NaN;
    if (d > err) err = d;
  }
  return err;
}

/** The suite's tolerance: max abs error ≤ 1e-5 · max(1, max |ref|). */
export function expectClose(got: Float32Array, want: Float64Array, label: string): void {
  let peak = 1;
  for (let i = 0; i < want.length; i++) peak = Math.max(peak, Math.abs(want[i]!));
  const err = maxAbsError(got, want);
  expect(err, `${label}: max abs error ${err} (peak ${peak})`).toBeLessThanOrEqual(1e-5 * peak);
}
