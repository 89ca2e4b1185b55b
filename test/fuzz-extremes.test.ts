// Differential fuzzing over extreme magnitudes (issue 10): wasm relaxed SIMD, wasm SIMD and JS against each other
// and against the float64 reference, with values near ±FLT_MAX, subnormals, huge float masks (PyTorch's finfo.min
// padding, +3e38 selections), huge and tiny scales, soft-capping and every activation.
//
// Why the shapes are what they are: every backend rounds each score to float32, and with headDim 1 a score is one
// product, rounded identically everywhere, so scores near ±FLT_MAX are compared exactly. With headDim > 1 the
// backends sum in different orders (float32 tiles, float64 in JS), so a score of 1e30 differs between them by
// ~1e23 and softmax legitimately picks different keys; there the extremes come from masks and scales applied to
// moderate products. The unnormalised activations (relu, polynomial) multiply float32 weights by values with no
// denominator to keep them in range: a weight of 1e36 times a value of 1e30 is beyond float32 even when such terms
// would cancel in float64 (documented in the README), so they get values ≤ 1, and polynomial, whose weights are
// powers of scores, moderate scores too.
import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ACTIVATIONS } from '../src/index.js';
import type { Activation, AttentionEngine, AttentionOptions, BackendName } from '../src/index.js';
import { allEngines } from './helpers.js';
import { referenceAttention } from './runtimes/reference.mjs';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

const FLT_MAX = 3.4028234663852886e38;
const SUBNORMAL = 1.4e-44;

/** Float32 values from a list of magnitudes, each with a random sign. */
const valuesOf = (n: number, magnitudes: readonly number[]) =>
  fc.array(fc.tuple(fc.constantFrom(...magnitudes), fc.boolean(), fc.double({ min: 0.5, max: 1, noNaN: true })), { minLength: n, maxLength: n })
    .map((xs) => Float32Array.from(xs, ([m, neg, f]) => (neg ? -1 : 1) * m * f));

const MASK_VALUES = [0, 0, 0, -FLT_MAX, -3e38, 3e38, -1e30, 1e30, -Infinity, 2.5, -2.5, SUBNORMAL];

const extremeCall = fc
  .record({
    huge: fc.boolean(), // headDim 1 with products near FLT_MAX, else moderate products
    batch: fc.integer({ min: 1, max: 2 }),
    heads: fc.integer({ min: 1, max: 2 }),
    seqQ: fc.integer({ min: 1, max: 6 }),
    seqK: fc.constantFrom(1, 2, 5, 8, 9, 127, 128, 129, 140),
    headDim: fc.integer({ min: 2, max: 9 }),
    activation: fc.constantFrom<Activation>(...ACTIVATIONS),
    scale: fc.constantFrom<number | undefined>(undefined, 1, 1e-30, SUBNORMAL, 0, -1, 1e-45),
    hugeScale: fc.constantFrom<number | undefined>(undefined, 3e38, 1e20, 1e10),
    softcap: fc.constantFrom<number | undefined>(undefined, undefined, 1e-30, 3e38, 50),
    causal: fc.constantFrom<AttentionOptions['causal']>(false, true, 'bottom-right'),
    maskKind: fc.constantFrom('none', 'row', 'full'),
  })
  .chain((c) => {
    const polynomial = c.activation === 'polynomial';
    const normalised = c.activation !== 'relu' && !polynomial;
    const huge = c.huge && !polynomial;
    const D = huge ? 1 : c.headDim;
    const n = c.batch * c.heads;
    const qk = huge ? [1.8e19, 1e19, 1, 1e-20, SUBNORMAL, 0] : [1, 0.25, 1e-20, SUBNORMAL, 0];
    const maskLength = c.maskKind === 'row' ? c.seqK : c.seqQ * c.seqK;
    const maskValues = polynomial ? MASK_VALUES.filter((x) => Math.abs(x) <= 1e10 || x === -Infinity) : MASK_VALUES;
    return fc.record({
      q: valuesOf(n * c.seqQ * D, qk),
      k: valuesOf(n * c.seqK * D, qk),
      v: valuesOf(n * c.seqK * D, normalised ? [1, 1e-3, 1e30, SUBNORMAL, 0] : [1, 1e-3, SUBNORMAL, 0]),
      mask: c.maskKind === 'none' ? fc.constant(undefined) : fc.array(fc.constantFrom(...maskValues), { minLength: maskLength, maxLength: maskLength }),
    }).map(({ q, k, v, mask }) => {
      // A huge scale only on unit-size products (the scores stay moderate × scale, rounded identically).
      const scale = huge ? c.scale : (c.hugeScale !== undefined && !polynomial ? c.hugeScale / 1e10 : c.scale);
      const options: AttentionOptions = {
        batch: c.batch, heads: c.heads, seqQ: c.seqQ, seqK: c.seqK, headDim: D, activation: c.activation, causal: c.causal,
        ...(scale === undefined ? {} : { scale }),
        ...(c.softcap === undefined || (polynomial && c.softcap === 3e38) ? {} : { softcap: c.softcap }),
        ...(mask === undefined ? {} : { mask: Float32Array.from(mask), maskShape: c.maskKind === 'row' ? [c.seqK] : [c.seqQ, c.seqK] }),
      };
      return { q, k, v, options };
    });
  });

/**
 * Finite where the other is finite, and then within 1e-5·max(1, peak). Where a result overflows float32 (relu or
 * polynomial weights of 1e36 times values of 1e30) both must be non-finite, but ∞ or NaN depends on the order of
 * the overflowing terms and on fused multiply-add (∞ + (−1e66 exactly) is ∞; rounded first, ∞ − ∞ is NaN).
 */
function agree(a: Float32Array, b: ArrayLike<number>): string | null {
  let peak = 1;
  for (let i = 0; i < b.length; i++) if (Number.isFinite(b[i]!)) peak = Math.max(peak, Math.abs(b[i]!));
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    if (Number.isFinite(x) !== Number.isFinite(y)) return `element ${i}: ${x} vs ${y}`;
    if (Number.isFinite(x) && Math.abs(x - y) > 1e-5 * peak) return `element ${i}: ${x} vs ${y} (peak ${peak})`;
  }
  return null;
}

test('every backend gives the same answer on extreme magnitudes, and the float64 one where it is finite', () => {
  const [first, ...rest] = [...engines.values()];
  fc.assert(
    fc.property(extremeCall, ({ q, k, v, options }) => {
      const base = first!.attention(q, k, v, options);
      for (const e of rest) {
        const got = e.attention(q, k, v, options);
        const why = agree(got, base);
        expect(why, `${e.backend} vs ${first!.backend}: ${why}`).toBeNull();
      }
      // The float64 reference does not round scores to float32; compare where that cannot matter: no NaN or
      // ±∞ anywhere, and scores that float32 represents with room to spare (no huge products, scales or caps).
      const moderate = options.headDim > 1 && Math.abs(options.scale ?? 1) <= 1 && options.softcap !== 3e38;
      if (moderate && base.every(Number.isFinite)) {
        const want = referenceAttention(q, k, v, options);
        const why = want.every(Number.isFinite) ? agree(base, want) : null;
        expect(why, `${first!.backend} vs float64: ${why}`).toBeNull();
      }
    }),
    { numRuns: 400, seed: 20261128 },
  );
});
