// The vector exp inside every wasm kernel, against float64 Math.exp: the accuracy its comment states. Through the
// test-only build's mathInPlace (test/testing-wasm.ts), which the shipped binary does not export.
import { describe, expect, test } from 'vitest';
import type { WasmVariant } from '../src/wasm/loader.js';
import { ensureBytes, instantiateTesting } from './testing-wasm.js';
import { expNonPositive } from '../src/js/exp.js';

const N = 1 << 20;

async function mathOf(fn: 0 | 1 | 2, variant: WasmVariant, xs: Float32Array): Promise<Float32Array> {
  const kernels = await instantiateTesting(variant);
  const base = kernels.heapBase();
  ensureBytes(kernels.memory, base + xs.byteLength);
  new Float32Array(kernels.memory.buffer, base, xs.length).set(xs);
  kernels.mathInPlace(fn, base, xs.length);
  return new Float32Array(kernels.memory.buffer, base, xs.length).slice();
}

describe.each([
  ['wasm-simd', 1.8e-7],
  ['wasm-relaxed-simd', 1.7e-7],
] as const)('%s vexp', (variant, bound) => {
  test(`max relative error ≤ ${bound} on [−87.3, 0]`, async () => {
    const xs = Float32Array.from({ length: N }, (_, i) => -87.3 * (i / (N - 1)));
    const got = await mathOf(0, variant, xs);
    let worst = 0;
    for (let i = 0; i < N; i++) {
      const want = Math.exp(xs[i]!);
      worst = Math.max(worst, Math.abs(got[i]! - want) / want);
    }
    console.log(`${variant}: max rel err ${worst.toExponential(2)} over ${N} points`);
    expect(worst).toBeLessThanOrEqual(bound);
  });

  test('special values: exp(0) = 1, exp(−∞) = 0, flush below −87.34, NaN propagates', async () => {
    const got = await mathOf(0, variant, Float32Array.from([0, -Infinity, -87.5, -1000, NaN, -0, -1e-30, -87.3]));
    expect(got[0]).toBe(1);
    expect(got[1]).toBe(0);
    expect(got[2]).toBe(0);
    expect(got[3]).toBe(0);
    expect(got[4]).toBeNaN();
    expect(got[5]).toBe(1);
    expect(got[6]).toBe(1);
    expect(Math.abs(got[7]! - Math.exp(Math.fround(-87.3))) / Math.exp(Math.fround(-87.3))).toBeLessThan(1e-6);
  });
});

describe.each(['wasm-simd', 'wasm-relaxed-simd'] as const)('%s vtanh (soft-capping)', (variant) => {
  test('max relative error ≤ 4e-7 on [−20, 20], odd, saturating, NaN-propagating', async () => {
    const xs = Float32Array.from({ length: N }, (_, i) => -20 + 40 * (i / (N - 1)));
    const got = await mathOf(1, variant, xs);
    let worst = 0;
    for (let i = 0; i < N; i++) {
      const want = Math.tanh(xs[i]!);
      if (want !== 0) worst = Math.max(worst, Math.abs(got[i]! - want) / Math.abs(want));
    }
    console.log(`${variant}: tanh max rel err ${worst.toExponential(2)} over ${N} points`);
    expect(worst).toBeLessThanOrEqual(4e-7);
    const special = await mathOf(1, variant, Float32Array.from([0, -0, Infinity, -Infinity, NaN, 1e-30, -1e-30, 0.3125]));
    expect(Array.from(special.subarray(0, 4))).toEqual([0, -0, 1, -1]);
    expect(special[4]).toBeNaN();
    expect(special[5]).toBe(Math.fround(1e-30));
    expect(special[6]).toBe(Math.fround(-1e-30));
    expect(Math.abs(special[7]! - Math.tanh(0.3125)) / Math.tanh(0.3125)).toBeLessThan(4e-7);
  });
});

describe.each(['wasm-simd', 'wasm-relaxed-simd'] as const)('%s vexp2 (the softmax kernels work in base 2)', (variant) => {
  test('max relative error ≤ 1.9e-7 on [−126, 0]; 2^0 = 1, 2^−∞ = 0, flush below −126, NaN propagates', async () => {
    const xs = Float32Array.from({ length: N }, (_, i) => -126 * (i / (N - 1)));
    const got = await mathOf(2, variant, xs);
    let worst = 0;
    for (let i = 0; i < N; i++) {
      const want = 2 ** xs[i]!;
      worst = Math.max(worst, Math.abs(got[i]! - want) / want);
    }
    console.log(`${variant}: exp2 max rel err ${worst.toExponential(2)} over ${N} points`);
    expect(worst).toBeLessThanOrEqual(1.9e-7);
    const special = await mathOf(2, variant, Float32Array.from([0, -0, -Infinity, -126.5, -1000, NaN, -1, -0.5]));
    expect(Array.from(special.subarray(0, 5))).toEqual([1, 1, 0, 0, 0]);
    expect(special[5]).toBeNaN();
    expect(special[6]).toBe(0.5);
    expect(Math.abs(special[7]! - Math.SQRT1_2) / Math.SQRT1_2).toBeLessThan(1.8e-7);
  });
});

describe('JS backend expNonPositive (src/js/exp.ts, float64)', () => {
  test('relative error ≤ 3e-10 where e^x is normal; subnormal results within that plus half the smallest subnormal', () => {
    let worst = 0;
    for (let i = 0; i < N; i++) {
      const x = -708 * (i / (N - 1)) - (i % 7) * 1e-3 * Math.random(); // a dense grid, jittered off its points
      const want = Math.exp(x);
      worst = Math.max(worst, Math.abs(expNonPositive(x) - want) / want);
    }
    console.log(`JS expNonPositive: max rel err ${worst.toExponential(2)} over ${N} points`);
    expect(worst).toBeLessThanOrEqual(3e-10);
    for (let x = -708; x >= -746; x -= 0.01) {
      const want = Math.exp(x);
      expect(Math.abs(expNonPositive(x) - want)).toBeLessThanOrEqual(3e-10 * want + 2 ** -1074);
    }
  });

  test('special values: e^0 = e^−0 = 1, e^−∞ = 0, 0 below −745.2, NaN propagates, x > 0 is still e^x', () => {
    expect(expNonPositive(0)).toBe(1);
    expect(expNonPositive(-0)).toBe(1);
    expect(expNonPositive(-Infinity)).toBe(0);
    expect(expNonPositive(-746)).toBe(0);
    expect(expNonPositive(-1e300)).toBe(0);
    expect(expNonPositive(NaN)).toBeNaN();
    expect(expNonPositive(-Number.MIN_VALUE)).toBe(1);
    for (const x of [1e-300, 0.5, 1, 88.7, 709, 710, Infinity]) expect(expNonPositive(x)).toBe(Math.exp(x));
    expect(Math.abs(expNonPositive(-Math.LN2) - 0.5)).toBeLessThanOrEqual(1e-16);
  });
});
