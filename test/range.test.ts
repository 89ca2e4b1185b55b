// Float32 intermediates out of range while the answer is not (assembly/range.ts): q·k terms beyond FLT_MAX whose
// dots are moderate, and Σ p·v over many keys of values near FLT_MAX whose weighted mean is finite. Every backend
// (one thread and two) must give the float64 reference's answer, over the tile edges of every backend's blocking.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BACKENDS } from '../src/index.js';
import type { Activation, AttentionEngine, AttentionOptions } from '../src/index.js';
// Threaded engines load dist/wasm/worker-node.js, which only exists after the build (npm test builds first).
import { createAttention as createBuilt } from '../dist/index.js';
import { splitPolicy } from '../dist/wasm/pool.js';
import { allEngines, expectClose, random } from './helpers.js';
import { expectStored } from './kvcache-helpers.js';
import { allTileEdges, referenceAttention } from './runtimes/cases.mjs';
import { storedAs } from './runtimes/quantize.mjs';

let engines: AttentionEngine[];
beforeAll(async () => {
  splitPolicy.minFlops = 0; // share even these small calls between the threads
  engines = [...(await allEngines()).values(), await createBuilt({ backend: 'wasm-relaxed-simd', threads: 2 })];
});
const defaultMinFlops = splitPolicy.minFlops;
afterAll(() => {
  engines.forEach((e) => e.dispose());
  splitPolicy.minFlops = defaultMinFlops;
});

const EDGES = allTileEdges(BACKENDS.map((b) => b.blocks));
const FLT_MAX = 3.4028234663852886e38;

/**
 * q and k whose products overflow float32 but whose dots do not: channels in pairs (2c, 2c + 1) with
 * q = (x, x), |x| ≈ 3e19, and k = (t, −t·(1 + ε)), |t| ≈ 3e19, ε a few float32 ulps: each term is ≈ 1e39, each
 * dot Σ x·t·(−ε) up to ≈ 1e35. An odd last channel is ordinary. `scale` makes the largest logit 4: softmax is
 * as well conditioned as for ordinary inputs (a logit of 1000 would amplify the float32 score rounding 1000×).
 */
function cancelling(rows: number, keys: number, D: number, seed: number): { q: Float32Array; k: Float32Array; scale: number } {
  const x = random(rows * D, seed), t = random(keys * D, seed + 1), e = random(keys * D, seed + 2);
  const q = new Float32Array(rows * D), k = new Float32Array(keys * D);
  for (let i = 0; i < rows; i++) {
    for (let d = 0; d < D; d++) q[i * D + d] = d + 1 < D || D % 2 === 0 ? 3e19 * (0.5 + Math.abs(x[i * D + (d & ~1)]!)) : x[i * D + d]!;
  }
  for (let j = 0; j < keys; j++) {
    for (let d = 0; d + 1 < D; d += 2) {
      const a = Math.fround(3e19 * (0.5 + Math.abs(t[j * D + d]!)) * (t[j * D + d + 1]! < 0 ? -1 : 1));
      k[j * D + d] = a;
      k[j * D + d + 1] = -a * (1 + 2 ** -20 * Math.round(8 * e[j * D + d]!));
    }
    if (D % 2 === 1) k[j * D + D - 1] = t[j * D + D - 1]!;
  }
  let top = 1e-30;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < keys; j++) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += q[i * D + d]! * k[j * D + d]!;
      top = Math.max(top, Math.abs(dot));
    }
  }
  return { q, k, scale: Math.fround(4 / top) };
}

/** Every engine against the float64 reference, and finite where the reference is. */
function expectAllAgree(q: Float32Array, k: Float32Array, v: Float32Array, o: AttentionOptions, label: string): void {
  const want = referenceAttention(q, k, v, o) as Float64Array;
  expect(want.every(Number.isFinite), `${label}: the reference is finite`).toBe(true);
  for (const e of engines) {
    const got = e.attention(q, k, v, o);
    expect(got.every(Number.isFinite), `${label} ${e.backend}${e.threads > 1 ? ' threads' : ''}: finite`).toBe(true);
    expectClose(got, want, `${label} ${e.backend}${e.threads > 1 ? ' threads' : ''}`);
  }
}

describe('q·k terms beyond FLT_MAX, dots in range', () => {
  const cases = [];
  for (const seqQ of [1, 3, 5, ...EDGES.queries.filter((n) => n > 60 && n < 70)]) {
    for (const seqK of [1, 9, ...EDGES.keys.filter((n) => n > 100 && n < 300)]) cases.push([seqQ, seqK]);
  }
  test.each(cases)('seqQ %i, seqK %i, headDim 2, 7, 64', (seqQ, seqK) => {
    for (const D of [2, 7, 64]) {
      const { q, k, scale } = cancelling(2 * seqQ, seqK, D, seqQ * 1000 + seqK + D);
      const v = random(seqK * D, 7 + D);
      const o: AttentionOptions = { batch: 1, heads: 2, kvHeads: 1, seqQ, seqK, headDim: D, scale, causal: seqQ > 1 ? 'bottom-right' : false };
      expectAllAgree(q, k, v, o, `D ${D}`);
    }
  });

  test('a key whose float32 partial sum would be −∞ is not dropped (fused multiply-add order)', () => {
    // Terms −3e38, −3e38, +4.5e38: summed in float32 the first two give −∞ and the key would get weight 0.
    const q = new Float32Array([3e38, 3e38, 3e38]), k = new Float32Array([-1, -1, 1.5, 0, 0, 0]);
    const v = new Float32Array([10, 20, 30, 40, 50, 60]);
    expectAllAgree(q, k, v, { batch: 1, heads: 1, seqQ: 1, seqK: 2, headDim: 3, scale: 1e-38 }, '−∞ partial sum');
  });

  test('bshd layout, GQA and a float32 KV cache (also after reset to ordinary keys)', () => {
    const D = 16, S = EDGES.keys.find((n) => n > 128)!, L = 5;
    const { q, k, scale } = cancelling(4 * L, S, D, 99);
    const v = random(S * D, 100);
    expectAllAgree(q, k, v, { batch: 1, heads: 4, kvHeads: 1, seqQ: L, seqK: S, headDim: D, scale }, 'bhsd GQA');
    // The same call in (B, L, H, D): q rows of 4 heads interleaved; one kv head, so k and v are unchanged.
    const qs = new Float32Array(q.length);
    for (let h = 0; h < 4; h++) for (let i = 0; i < L; i++) qs.set(q.subarray((h * L + i) * D, (h * L + i + 1) * D), (i * 4 + h) * D);
    expectAllAgree(qs, k, v, { batch: 1, heads: 4, kvHeads: 1, seqQ: L, seqK: S, headDim: D, scale, layout: 'bshd' }, 'bshd GQA');

    const want = referenceAttention(q, k, v, { batch: 1, heads: 4, kvHeads: 1, seqQ: L, seqK: S, headDim: D, scale, causal: 'bottom-right' }) as Float64Array;
    const ordinary = { q: random(4 * L * D, 5), k: random(S * D, 6) };
    const wantOrdinary = referenceAttention(ordinary.q, ordinary.k, v, { batch: 1, heads: 4, kvHeads: 1, seqQ: L, seqK: S, headDim: D, causal: 'bottom-right' }) as Float64Array;
    for (const e of engines) {
      const cache = e.createKVCache({ batch: 1, kvHeads: 1, headDim: D, capacity: S + 8 });
      cache.append(k.subarray(0, 40 * D), v.subarray(0, 40 * D));
      cache.append(k.subarray(40 * D), v.subarray(40 * D));
      expectClose(cache.attend(q, { heads: 4, seqQ: L, scale, causal: 'bottom-right' }) as Float32Array, want, `${e.backend} cache`);
      cache.reset();
      cache.append(ordinary.k, v);
      expectClose(cache.attend(ordinary.q, { heads: 4, seqQ: L, causal: 'bottom-right' }) as Float32Array, wantOrdinary, `${e.backend} cache after reset`);
      cache.dispose();
    }
  });
});

describe('Σ p·v beyond FLT_MAX, weighted means in range', () => {
  const activations: Activation[] = ['softmax', 'softmax1', 'squared'];
  test.each(EDGES.keys.filter((n) => n >= 8))('seqK %i: values ±(1e37 … FLT_MAX), softmax, softmax1, squared, sinks', (seqK) => {
    const D = 8, L = 6;
    const q = random(L * D, seqK, 0.1), k = random(seqK * D, seqK + 1, 0.1);
    const v = Float32Array.from(random(seqK * D, seqK + 2), (x) => Math.fround(Math.sign(x) * Math.min(FLT_MAX, 1e37 + Math.abs(x) * FLT_MAX)));
    for (const activation of activations) {
      expectAllAgree(q, k, v, { batch: 1, heads: 1, seqQ: L, seqK, headDim: D, activation }, activation);
    }
    expectAllAgree(q, k, v, { batch: 1, heads: 1, seqQ: L, seqK, headDim: D, sinks: new Float32Array([1]) }, 'sinks');
    expectAllAgree(q.subarray(0, D), k, v, { batch: 1, heads: 1, seqQ: 1, seqK, headDim: D }, 'one query row');
  });

  test('returnWeights: the weights are unchanged, the output finite', () => {
    const seqK = 300, D = 8, L = 5;
    const q = random(L * D, 1, 0.1), k = random(seqK * D, 2, 0.1), v = new Float32Array(seqK * D).fill(3e38);
    for (const e of engines) {
      const plain = e.attention(q, k, new Float32Array(seqK * D).fill(1), { batch: 1, heads: 1, seqQ: L, seqK, headDim: D, returnWeights: true });
      const huge = e.attention(q, k, v, { batch: 1, heads: 1, seqQ: L, seqK, headDim: D, returnWeights: true });
      expect(huge.weights).toEqual(plain.weights);
      for (const x of huge.output) expect(Math.abs(x - 3e38) / 3e38).toBeLessThan(1e-5);
    }
  });

  test('NaN and ±∞ in the inputs still give NaN and ±∞ where the reference does', () => {
    const seqK = 140, D = 8;
    const q = random(4 * D, 3, 0.1), k = random(seqK * D, 4, 0.1), v = random(seqK * D, 5);
    v[7 * D + 2] = Infinity;
    k[9 * D + 1] = NaN;
    const want = referenceAttention(q, k, v, { batch: 1, heads: 1, seqQ: 4, seqK, headDim: D }) as Float64Array;
    for (const e of engines) {
      const got = e.attention(q, k, v, { batch: 1, heads: 1, seqQ: 4, seqK, headDim: D });
      for (let i = 0; i < got.length; i++) expect(Number.isNaN(got[i]), `${e.backend} element ${i}`).toBe(Number.isNaN(want[i]));
    }
  });
});

describe('the second pass leaves finite rows alone', () => {
  test('a NaN query row does not change another row of its block (weights that the shift would make subnormal)', () => {
    // Row 0: logit 0 on v = 1 and −85 on v = 3e38 (weight e^−85 ≈ 1.2e-37, a term of 36.5): 37.483; row 1: key 0.
    const S = 65536;
    const k = new Float32Array(S), v = new Float32Array(S);
    v[0] = 1;
    v[1] = 3e38;
    const mask = new Float32Array(2 * S).fill(-Infinity);
    mask[0] = 0;
    mask[1] = -85;
    mask[S] = 0;
    const o: AttentionOptions = { batch: 1, heads: 1, seqQ: 2, seqK: S, headDim: 1, mask };
    const want = referenceAttention(new Float32Array(2), k, v, o) as Float64Array;
    for (const e of engines) {
      const plain = e.attention(new Float32Array(2), k, v, o);
      const poisoned = e.attention(Float32Array.of(0, NaN), k, v, o);
      expect(poisoned[0], `${e.backend}: row 0 with a NaN row beside it`).toBe(plain[0]);
      expect(poisoned[1]).toBeNaN();
      expect(Math.abs(plain[0]! - want[0]!) / want[0]!).toBeLessThan(1e-5);
    }
  });
});

describe('float16 and int8 KV caches: q·k terms beyond FLT_MAX', () => {
  // Keys in pairs (t, −(t + δ)), small integers (exact in binary16), and q equal in each pair, ≈ 2^118: terms up
  // to 5e38, each dot Σ x·δ ≤ 6e36. Every backend's cache must give what float64 gives on the keys and values it
  // stores (within kvcache-dtypes.test.ts's tolerance for them).
  test.each(['float16', 'int8'] as const)('%s, over the key-count edges', (dtype) => {
    const D = 8, L = 3, H = 2;
    for (const seqK of [1, 9, 31, 32, 33, ...EDGES.keys.filter((n) => n > 100 && n < 300)]) {
      const t = random(seqK * D, seqK), u = random(H * L * D, seqK + 1), w = random(seqK * D, seqK + 2);
      const k = new Float32Array(seqK * D);
      for (let j = 0; j < seqK; j++) {
        for (let d = 0; d < D; d += 2) {
          const a = Math.round(512 + 500 * t[j * D + d]!);
          k[j * D + d] = a;
          k[j * D + d + 1] = -(a + Math.round(3 * w[j * D + d]!));
        }
      }
      const q = Float32Array.from(u, (_, i) => Math.fround(2 ** 118 * (0.5 + Math.abs(u[i & ~1]!)))); // equal in a pair
      let top = 1e-30;
      for (let i = 0; i < H * L; i++) {
        for (let j = 0; j < seqK; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[i * D + d]! * k[j * D + d]!;
          top = Math.max(top, Math.abs(dot));
        }
      }
      const scale = Math.fround(4 / top);
      const v = random(seqK * D, seqK + 3);
      const answers = engines.map((e) => {
        const cache = e.createKVCache({ batch: 1, kvHeads: 1, headDim: D, capacity: seqK, dtype });
        cache.append(k, v);
        const out = cache.attend(q, { heads: H, seqQ: L, scale }) as Float32Array;
        cache.dispose();
        return out;
      });
      // float64 on what the cache stores (its binary16 or int8 keys and values), as kvcache-dtypes.test.ts.
      const want = referenceAttention(q, Float32Array.from(storedAs(k, dtype, D)), Float32Array.from(storedAs(v, dtype, D)),
        { batch: 1, heads: H, kvHeads: 1, seqQ: L, seqK, headDim: D, scale }) as Float64Array;
      answers.forEach((out, i) => {
        const label = `${dtype} seqK ${seqK} ${engines[i]!.backend}${engines[i]!.threads > 1 ? ' threads' : ''}`;
        expect(out.every(Number.isFinite), `${label}: finite`).toBe(true);
        expectStored(out, want, dtype, label);
      });
    }
  });
});

describe('q·k beyond FLT_MAX whose scaled score is not', () => {
  // |q·k| = 5.8e38 and 5.6e38, scale 1/8: scores 7.2e37 and 7e37, so key 0 takes every weight. Rounding q·k to
  // float32 before scaling would make both scores ∞ and the row NaN.
  const D = 64, S = 2;
  const q = new Float32Array(D).fill(3e18), k = new Float32Array(S * D).fill(3e18), v = new Float32Array(S * D);
  for (let d = 0; d < D; d++) {
    k[D + d] = 2.9e18;
    v[d] = 1;
    v[D + d] = 2;
  }
  test('whole calls', () => {
    expectAllAgree(q, k, v, { batch: 1, heads: 1, seqQ: 1, seqK: S, headDim: D }, 'scaled score in range');
    const q4 = new Float32Array(4).fill(2e19), k4 = new Float32Array(8).fill(2e19), v4 = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    expectAllAgree(q4, k4, v4, { batch: 1, heads: 1, seqQ: 1, seqK: 2, headDim: 4, scale: 1e-3 }, 'scale 1e-3');
  });
  test.each(['float32', 'float16', 'int8'] as const)('%s KV cache', (dtype) => {
    // float16 stores at most 65504: keys and queries scaled so the cache keeps them (q·k the same).
    const kc = dtype === 'float16' ? Float32Array.from(k, (x) => (x === 3e18 ? 60000 : 58000)) : k;
    const qc = dtype === 'float16' ? Float32Array.from(q, () => Math.fround(3e18 * 3e18 / 60000)) : q;
    const want = referenceAttention(qc, Float32Array.from(storedAs(kc, dtype, D)), v, { batch: 1, heads: 1, seqQ: 1, seqK: S, headDim: D }) as Float64Array;
    for (const e of engines) {
      const cache = e.createKVCache({ batch: 1, kvHeads: 1, headDim: D, capacity: 8, dtype });
      cache.append(kc, v);
      const got = cache.attend(qc, { heads: 1, seqQ: 1 }) as Float32Array;
      cache.dispose();
      expect(got.every(Number.isFinite), `${dtype} ${e.backend}: finite`).toBe(true);
      expectStored(got, want, dtype, `${dtype} ${e.backend}`);
    }
  });
});
