// The float64 reference itself (test/runtimes/reference.mjs), on cases small enough to work out by hand: the
// options of issue 9 (window, ALiBi, sinks, RoPE, bshd layout, key lengths), the order in which a score is built,
// and the shared helpers (tile edges, error measures). Everything else in the suite trusts this file.
import { describe, expect, test } from 'vitest';
import { MICRO_TILE, allTileEdges, edgePairs, inputs, random, tileEdges } from './runtimes/cases.mjs';
import { closeTo, maxAbsError, referenceAttention, referenceWithWeights, tolerance } from './runtimes/reference.mjs';
import type { RefOptions } from './runtimes/reference.mjs';

const { PI, E } = Math;

/** Rows of a flat [rows, cols] array. */
const rows = (a: Float64Array, cols: number) => Array.from({ length: a.length / cols }, (_, r) => Array.from(a.subarray(r * cols, (r + 1) * cols)));

/**
 * The scores themselves: with activation 'polynomial', power 1, every admissible weight is s / √seqK, so the weights
 * times √seqK are the scores after RoPE, scale, softcap, ALiBi and the float mask (excluded keys read 0).
 */
function scores(q: Float32Array, k: Float32Array, o: RefOptions): number[][] {
  const v = new Float32Array(o.batch * (o.kvHeads ?? o.heads) * o.seqK * (o.headDimV ?? o.headDim));
  const { weights } = referenceWithWeights(q, k, v, { scale: 1, ...o, activation: 'polynomial', power: 1 });
  return rows(weights.map((w) => w * Math.sqrt(o.seqK)), o.seqK);
}

/** Expects two nested number arrays of the same shape to agree to `digits` decimals (default 12). */
function expectNear(got: number[][], want: number[][], digits = 12): void {
  expect(got.map((r) => r.length)).toEqual(want.map((r) => r.length));
  got.forEach((row, r) => row.forEach((x, c) => expect(x, `[${r}][${c}]`).toBeCloseTo(want[r]![c]!, digits)));
}

const one = { batch: 1, heads: 1 };

describe('window', () => {
  test('[0, 0] keeps exactly the aligned key: the diagonal, shifted by seqK − seqQ', () => {
    for (const [L, S] of [[5, 5], [3, 7]] as const) {
      const o = { ...one, seqQ: L, seqK: S, headDim: 4, window: [0, 0] as const };
      const { q, k, v } = inputs(o, 1);
      const { output, weights } = referenceWithWeights(q, k, v, o);
      expect(rows(weights, S)).toEqual(rows(new Float64Array(L * S).map((_, n) => (n % S === Math.floor(n / S) + S - L ? 1 : 0)), S));
      expect(Array.from(output)).toEqual(Array.from(v.subarray((S - L) * 4)));
    }
  });

  test('[1, 0] with equal scores: one key for the first row, two (½ each) for the others', () => {
    const o = { ...one, seqQ: 3, seqK: 3, headDim: 2, scale: 0, window: [1, 0] as const };
    const { q, k, v } = inputs(o, 2);
    expect(rows(referenceWithWeights(q, k, v, o).weights, 3)).toEqual([[1, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0.5]]);
  });

  test('[∞, ∞] is no window, [∞, 0] is causal bottom-right, [0, ∞] keeps j ≥ i + seqK − seqQ', () => {
    const o = { ...one, heads: 2, seqQ: 6, seqK: 9, headDim: 3 };
    const { q, k, v } = inputs(o, 3);
    const w = (x: Partial<RefOptions>) => referenceWithWeights(q, k, v, { ...o, ...x }).weights;
    expect(w({ window: [Infinity, Infinity] })).toEqual(w({}));
    expect(w({ window: [Infinity, 0] })).toEqual(w({ causal: 'bottom-right' }));
    const upper = w({ window: [0, Infinity] });
    upper.forEach((x, n) => expect(x === 0, `weight ${n}`).toBe(n % 9 < (Math.floor(n / 9) % 6) + 3));
  });
});

describe('ALiBi', () => {
  test('slope ln 2 over distances 2, 1, 0 gives weights 1/7, 2/7, 4/7; slope 0 leaves the row uniform', () => {
    // One query, three keys: query 0 sits at key 0 + (3 − 1) = 2. Scale 0, so the scores are ALiBi alone.
    const o = { batch: 1, heads: 2, seqQ: 1, seqK: 3, headDim: 2, scale: 0, alibiSlopes: [Math.LN2, 0] };
    const { q, k, v } = inputs(o, 4);
    expectNear(rows(referenceWithWeights(q, k, v, o).weights, 3), [[1 / 7, 2 / 7, 4 / 7], [1 / 3, 1 / 3, 1 / 3]]);
    // The same slopes as a Float32Array (ln 2 rounded to float32), as the API takes them.
    expectNear(rows(referenceWithWeights(q, k, v, { ...o, alibiSlopes: Float32Array.of(Math.LN2, 0) }).weights, 3),
      [[1 / 7, 2 / 7, 4 / 7], [1 / 3, 1 / 3, 1 / 3]], 7);
  });

  test('added after the softcap and before the float mask: s = c·tanh(q·k / c) − m·|i + off − j| + mask', () => {
    const [c, m] = [1.5, 0.25];
    const o = { ...one, seqQ: 1, seqK: 2, headDim: 1, softcap: c, alibiSlopes: [m], mask: Float32Array.of(0.5, -2) };
    // q·k = 2 and 3; query 0 sits at key 1, so key 0 is at distance 1.
    const got = scores(Float32Array.of(1), Float32Array.of(2, 3), o);
    expectNear(got, [[c * Math.tanh(2 / c) - m + 0.5, c * Math.tanh(3 / c) - 2]]);
  });
});

describe('sinks', () => {
  test('a sink of ln 2 with two equal scores: each weight 1/(2 + 2) = ¼, the row sums to ½', () => {
    const o = { ...one, heads: 2, seqQ: 1, seqK: 2, headDim: 3, scale: 0, sinks: [Math.LN2, -Infinity] };
    const { q, k, v } = inputs(o, 5);
    const { output, weights } = referenceWithWeights(q, k, v, o);
    expectNear(rows(weights, 2), [[0.25, 0.25], [0.5, 0.5]]); // a sink of −∞ is plain softmax
    expectNear([Array.from(output.subarray(0, 3))], [[0, 1, 2].map((c) => (v[c]! + v[3 + c]!) / 4)]);
  });

  test('row sum = Σe^s / (e^sink + Σe^s); a sink of 0 is softmax1; a row with no admissible key is zeros', () => {
    const o = { ...one, seqQ: 4, seqK: 6, headDim: 5, causal: true as const, sinks: [0.7] };
    const { q, k, v } = inputs(o, 6);
    const { weights } = referenceWithWeights(q, k, v, o);
    const s = scores(q, k, { ...o, sinks: undefined, scale: 1 / Math.sqrt(5) });
    rows(weights, 6).forEach((row, i) => {
      const sum = s[i]!.slice(0, i + 1).reduce((a, x) => a + Math.exp(x), 0);
      expect(row.reduce((a, x) => a + x, 0)).toBeCloseTo(sum / (Math.exp(0.7) + sum), 12);
    });
    const soft1 = referenceWithWeights(q, k, v, { ...o, sinks: undefined, activation: 'softmax1' });
    expect(maxAbsError(referenceWithWeights(q, k, v, { ...o, sinks: [0] }).weights, soft1.weights)).toBeLessThan(1e-15);
    const none = referenceWithWeights(q, k, v, { ...o, mask: new Uint8Array(4 * 6) });
    expect(none.output.every((x) => x === 0) && none.weights.every((x) => x === 0)).toBe(true);
  });

  test('sinks with another activation are refused', () => {
    const o = { ...one, seqQ: 1, seqK: 1, headDim: 1, sinks: [0], activation: 'sigmoid' as const };
    expect(() => referenceAttention(Float32Array.of(1), Float32Array.of(1), Float32Array.of(1), o)).toThrow(/softmax/);
  });
});

describe('RoPE', () => {
  const e = (n: number, D: number) => Float32Array.from({ length: D }, (_, d) => (d === n ? 1 : 0));
  /** The rotated query row 0, channel by channel: its score against each unit vector as a single key at position 0. */
  const turned = (q: Float32Array, o: RefOptions) =>
    [[...Array(o.headDim).keys()].map((d) => scores(q, e(d, o.headDim), { ...o, seqQ: 1, seqK: 1 })[0]![0]!)];

  test('a quarter turn of (1, 0) is (0, 1): half-split pairs (t, t + dims/2), interleaved pairs (2t, 2t + 1)', () => {
    // Query at position 1, f = [π/2, 0]: pair 0 turns by π/2, pair 1 not at all.
    const o = { ...one, seqQ: 1, seqK: 1, headDim: 4, rope: { frequencies: [PI / 2, 0], positionQ: 1 } };
    expectNear(turned(e(0, 4), o), [[0, 0, 1, 0]]);
    expectNear(turned(e(0, 4), { ...o, rope: { ...o.rope, interleaved: true } }), [[0, 1, 0, 0]]);
    expectNear(turned(e(2, 4), o), [[-1, 0, 0, 0]]); // (x, y) = (0, 1) -> (−sin, cos)
    expectNear(turned(e(1, 4), o), [[0, 1, 0, 0]]); // pair 1 (channels 1, 3) at angle 0
  });

  test('default frequencies base^(−2t/dims): pair 1 of 2 turns by p/100 at base 10000; base 100 turns it by p/10', () => {
    const o = { ...one, seqQ: 1, seqK: 1, headDim: 4, rope: { positionQ: 100 } };
    // half-split, D = 4: pair 1 is channels (1, 3), f_1 = 10000^(−1/2) = 1/100, angle 1.
    expectNear(turned(e(1, 4), o), [[0, Math.cos(1), 0, Math.sin(1)]]);
    expectNear(turned(e(1, 4), { ...o, rope: { positionQ: 10, base: 100 } }), [[0, Math.cos(1), 0, Math.sin(1)]]);
    // pair 0 turns by p·1 = 100 rad
    expectNear(turned(e(0, 4), o), [[Math.cos(100), 0, Math.sin(100), 0]]);
    // keys turn the same way at their own positions: q and k both at 100 score as unturned
    const k = random(4, 1);
    expectNear(scores(e(0, 4), k, { ...o, seqK: 1, rope: { positionQ: 100, positionK: 100 } }), [[k[0]!]]);
  });

  test('partial rotary: channels from dims on pass through', () => {
    const o = { ...one, seqQ: 1, seqK: 1, headDim: 4, rope: { dims: 2, frequencies: [PI / 2], positionQ: 1 } };
    expectNear(turned(Float32Array.of(1, 0, 5, 7), o), [[0, 1, 5, 7]]);
    for (const dims of [3, 6]) expect(() => turned(e(0, 4), { ...o, rope: { dims } })).toThrow(/even and at most/);
  });

  test('at position 0 RoPE is the identity', () => {
    const o = { ...one, heads: 2, seqQ: 3, seqK: 4, headDim: 8 };
    const { q, k } = inputs(o, 7);
    const plain = scores(q, k, o);
    const rotated = scores(q, k, { ...o, rope: {} }); // query row 0 and key row 0 are at position 0
    for (const h of [0, 3]) expect(rotated[h]![0]).toBe(plain[h]![0]); // rows 0 and 3: head 0 and head 1, query 0
    expect(Math.abs(rotated[1]![0]! - plain[1]![0]!)).toBeGreaterThan(1e-6); // query 1 (position 1) against key 0 is turned
  });

  test('rotation keeps norms, and q_i·k_j depends only on i − j (shifting both positions changes nothing)', () => {
    const o = { ...one, seqQ: 5, seqK: 7, headDim: 6 };
    const { q, k } = inputs(o, 8);
    // k = q at the same positions: the diagonal is |q̃_i|² = |q_i|².
    const self = scores(q, q, { ...o, seqK: 5, rope: { positionQ: 37, positionK: 37 } });
    self.forEach((row, i) => expect(row[i]).toBeCloseTo(q.subarray(i * 6, i * 6 + 6).reduce((a, x) => a + x * x, 0), 12));
    for (const interleaved of [false, true]) {
      const at = (positionQ: number, positionK: number) => scores(q, k, { ...o, rope: { interleaved, positionQ, positionK } });
      expectNear(at(1000, 1003), at(0, 3), 9); // angles of ~1e4 rad carry float64 rounding of ~1e-12
      expectNear(at(12345, 12345), at(0, 0), 9);
      expect(maxAbsError(at(0, 3).flat(), at(3, 0).flat())).toBeGreaterThan(1e-3); // but i − j itself matters
    }
  });
});

describe('layout', () => {
  test("'bshd' equals 'bhsd' on transposed inputs; weights stay [B, H, L, S]", () => {
    const o = { batch: 2, heads: 4, kvHeads: 2, seqQ: 5, seqK: 7, headDim: 4, headDimV: 2, causal: 'bottom-right' as const,
      mask: random(4 * 5 * 7, 9), maskShape: [4, 5, 7], alibiSlopes: [0.1, 0.2, 0.3, 0.4], rope: { positionQ: 2 } };
    const { q, k, v } = inputs(o, 10);
    /** [B, X, Y, C] -> [B, Y, X, C] */
    const swap = <T extends Float32Array | Float64Array>(a: T, X: number, Y: number, C: number): T => {
      const out = a.slice() as T;
      for (let b = 0; b < a.length / (X * Y * C); b++) {
        for (let x = 0; x < X; x++) {
          for (let y = 0; y < Y; y++) {
            for (let c = 0; c < C; c++) out[((b * Y + y) * X + x) * C + c] = a[((b * X + x) * Y + y) * C + c]!;
          }
        }
      }
      return out;
    };
    const bhsd = referenceWithWeights(q, k, v, o);
    const bshd = referenceWithWeights(swap(q, 4, 5, 4), swap(k, 2, 7, 4), swap(v, 2, 7, 2), { ...o, layout: 'bshd' });
    expect(bshd.weights).toEqual(bhsd.weights);
    expect(bshd.output).toEqual(swap(bhsd.output, 4, 5, 2));
    expect(bshd.output).not.toEqual(bhsd.output);
    expect(bhsd.output.every(Number.isFinite)).toBe(true);
  });
});

describe('keyLengths', () => {
  const o = { batch: 2, heads: 2, kvHeads: 1, seqQ: 3, seqK: 8, headDim: 4, causal: 'bottom-right' as const,
    window: [2, 1] as const, alibiSlopes: [0.5, 0.125] };
  const { q, k, v } = inputs(o, 11);

  test('seqK for every batch row is the same as no key lengths', () => {
    expect(referenceWithWeights(q, k, v, { ...o, keyLengths: [8, 8] })).toEqual(referenceWithWeights(q, k, v, o));
  });

  test('batch row b is that sequence alone, cut to its first keyLengths[b] keys (bottom-right alignments included)', () => {
    const got = referenceWithWeights(q, k, v, { ...o, keyLengths: Int32Array.of(5, 0) });
    const keys = k.subarray(0, 5 * 4), values = v.subarray(0, 5 * 4); // batch 0, kv head 0, keys 0..4
    const alone = referenceWithWeights(q.subarray(0, 2 * 3 * 4), keys, values, { ...o, batch: 1, seqK: 5 });
    expect(got.output.subarray(0, 2 * 3 * 4)).toEqual(alone.output);
    rows(got.weights.subarray(0, 2 * 3 * 8), 8).forEach((row, r) => expect(row).toEqual([...rows(alone.weights, 5)[r]!, 0, 0, 0]));
    // keyLengths 0: nothing admissible, zero rows.
    expect(got.output.subarray(2 * 3 * 4).every((x) => x === 0) && got.weights.subarray(2 * 3 * 8).every((x) => x === 0)).toBe(true);
  });
});

describe('shared helpers', () => {
  test('tileEdges: 1 and n − 1, n, n + 1 around the micro-tile, the blocks and twice the blocks; decode blocks', () => {
    const blocks = { queries: 64, keys: 128 };
    const edges = tileEdges(blocks);
    for (const n of [MICRO_TILE.rows, blocks.queries, 2 * blocks.queries]) for (const x of [1, n - 1, n, n + 1]) expect(edges.queries).toContain(x);
    for (const n of [MICRO_TILE.keys, blocks.keys, 2 * blocks.keys]) for (const x of [1, n - 1, n, n + 1]) expect(edges.keys).toContain(x);
    expect(edges.all).toEqual([...new Set([...edges.queries, ...edges.keys])].sort((a, b) => a - b));
    // 64·128 = 8192 keys for one row, 4096 for two, ⌊8192 / 3⌋ = 2730 → 2688 (a multiple of 64) for three.
    expect(edges.decode).toEqual([
      { rows: 1, block: 8192, keys: [8191, 8192, 8193] },
      { rows: 2, block: 4096, keys: [4095, 4096, 4097] },
      { rows: 3, block: 2688, keys: [2687, 2688, 2689] },
    ]);
    // The JS backend's 1 × 4 blocking has no decode blocks, and nothing below 1.
    const js = tileEdges({ queries: 1, keys: 4 });
    expect(js.decode).toEqual([]);
    expect(Math.min(...js.all)).toBe(1);
    const both = allTileEdges([blocks, { queries: 1, keys: 4 }]);
    expect(both.all).toEqual([...new Set([...edges.all, ...js.all])].sort((a, b) => a - b));
    for (const n of both.all) expect(edgePairs(both)).toContainEqual([n, n]);
  });

  test('random: deterministic, in [−amplitude, amplitude), seeds differ', () => {
    const a = random(1000, 42, 3);
    expect(a).toEqual(random(1000, 42, 3));
    expect(a.every((x) => x >= -3 && x < 3)).toBe(true);
    expect(Math.max(...a) - Math.min(...a)).toBeGreaterThan(5.9);
    expect(random(1000, 43)).not.toEqual(random(1000, 42));
  });

  test('maxAbsError and the tolerance 1e-5 · max(1, max |ref|)', () => {
    expect(maxAbsError([1, 2, 3], [1, 2.5, 2])).toBe(1);
    expect(maxAbsError([1, NaN], [1, 2])).toBeNaN();
    expect(maxAbsError([1], [1, 2])).toBeNaN();
    expect(tolerance([0.5, -0.25])).toBe(1e-5);
    expect(tolerance([3, -E * 100])).toBeCloseTo(1e-5 * E * 100, 15);
    expect(closeTo([1 + 2e-5], [1])).toMatchObject({ ok: false });
    expect(closeTo([1000.005], [1000])).toMatchObject({ ok: true });
    expect(closeTo([NaN], [NaN]).ok).toBe(false);
    // with a bound, element i may be off by bound[i] more
    expect(closeTo([1.5, 2], [1, 2], [0.5, 0]).ok).toBe(true);
    expect(closeTo([1.5, 2], [1, 2], [0.4, 0]).ok).toBe(false);
    expect(closeTo([1, 2 + 2e-5], [1, 2], [1, 0]).ok).toBe(false);
    expect(closeTo([1], [1], [0, 0]).ok).toBe(false);
  });
});

describe('score-rounding bound', () => {
  /** The same call in float32 arithmetic, keys' products summed in `order`, then the float64 activation and P·V. */
  function float32Scores(q: Float32Array, k: Float32Array, v: Float32Array, o: RefOptions, order: 'forward' | 'backward') {
    const f = Math.fround, D = o.headDim, scale = f(1 / Math.sqrt(D));
    const mask = o.mask as Float32Array;
    const s: number[][] = [];
    for (let i = 0; i < o.seqQ; i++) {
      const row: number[] = [];
      for (let j = 0; j < o.seqK; j++) {
        let x = 0;
        for (let n = 0; n < D; n++) {
          const d = order === 'forward' ? n : D - 1 - n;
          x = f(x + f(q[i * D + d]! * k[j * D + d]!));
        }
        row.push(f(f(x * scale) + mask[i * o.seqK + j]!));
      }
      s.push(row);
    }
    // on q = 0 each score is exactly its float mask entry: feed the float32 scores back as the mask
    const zero = new Float32Array(q.length);
    return referenceAttention(zero, k, v, { ...o, mask: Float32Array.from(s.flat()) });
  }

  test("'squared' with a score near √ε: the bound is large where the maths is ill-conditioned and covers float32", () => {
    const o = { ...one, seqQ: 2, seqK: 1, headDim: 20, headDimV: 1, activation: 'squared' as const };
    const { q, k, v } = inputs(o, 5);
    // row 0's mask cancels its scaled dot product down to ≈ 4e-4 (s² ≈ 0.16·ε); row 1 keeps a moderate score
    let dot = 0;
    for (let d = 0; d < 20; d++) dot += q[d]! * k[d]!;
    const mask = Float32Array.from([-dot / Math.sqrt(20) + 4e-4, 0.5]);
    const call = { ...o, mask, maskShape: [2, 1] };
    const { output, outputBound } = referenceWithWeights(q, k, v, call, { bound: true });
    expect(outputBound[0]).toBeGreaterThan(1e-5); // beyond the plain tolerance: float32 cannot do better
    expect(outputBound[1]).toBeLessThan(1e-9);
    for (const order of ['forward', 'backward'] as const) {
      const got = float32Scores(q, k, v, call, order);
      for (let i = 0; i < 2; i++) expect(Math.abs(got[i]! - output[i]!)).toBeLessThanOrEqual(outputBound[i]!);
    }
  });

  test('softmax, well conditioned: the bound stays far below the suite tolerance', () => {
    const o = { ...one, heads: 2, seqQ: 9, seqK: 70, headDim: 24, softcap: 5, mask: random(9 * 70, 3), maskShape: [9, 70] };
    const { q, k, v } = inputs(o, 2);
    const { outputBound, weightsBound } = referenceWithWeights(q, k, v, o, { bound: true });
    expect(Math.max(...outputBound)).toBeLessThan(2e-6);
    expect(Math.max(...weightsBound)).toBeLessThan(2e-6);
    expect(Math.min(...outputBound)).toBeGreaterThan(0);
  });
});
