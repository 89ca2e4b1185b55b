// Every activation, soft-capping, returned weights and linear attention, on every backend, against float64.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ACTIVATIONS, BACKENDS } from '../src/index.js';
import type { Activation, AttentionEngine, AttentionOptions, BackendName, LinearAttentionOptions } from '../src/index.js';
import { BACKEND_NAMES, allEngines, expectClose, maxAbsError, random } from './helpers.js';
import { allTileEdges } from './runtimes/cases.mjs';
import { referenceLinear, referenceWithWeights } from './runtimes/reference.mjs';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

type Shape = Omit<AttentionOptions, 'activation'> & { name: string };

function inputs(o: AttentionOptions | LinearAttentionOptions, seed: number) {
  const kv = o.kvHeads ?? o.heads;
  return {
    q: random(o.batch * o.heads * o.seqQ * o.headDim, seed),
    k: random(o.batch * kv * o.seqK * o.headDim, seed + 1),
    v: random(o.batch * kv * o.seqK * (o.headDimV ?? o.headDim), seed + 2),
  };
}

const L = 11, S = 21;
const rowsOff = new Uint8Array(L * S).fill(1).fill(0, 4 * S, 5 * S);
const floatMask = Float32Array.from(random(L * S, 77), (x) => (x < -0.6 ? -Infinity : x));
const SHAPES: Shape[] = [
  // Key counts at every backend's tile edges (BACKENDS[i].blocks).
  ...allTileEdges(BACKENDS.map((b) => b.blocks)).all.map((n) => ({ name: `seqK ${n}`, batch: 1, heads: 2, seqQ: 17, seqK: n, headDim: 12 })),
  ...[1, 3, 5, 8, 63, 65, 128].map((d) => ({ name: `headDim ${d}`, batch: 1, heads: 1, seqQ: 9, seqK: 33, headDim: d })),
  { name: 'causal top-left', batch: 1, heads: 2, seqQ: 70, seqK: 70, headDim: 8, causal: true },
  { name: 'causal bottom-right 33x129', batch: 1, heads: 2, seqQ: 33, seqK: 129, headDim: 8, causal: 'bottom-right' },
  { name: 'causal bottom-right seqQ > seqK (empty rows)', batch: 1, heads: 1, seqQ: 40, seqK: 9, headDim: 6, causal: 'bottom-right' },
  { name: 'bool mask with a fully masked row', batch: 1, heads: 2, seqQ: L, seqK: S, headDim: 6, mask: rowsOff },
  { name: 'float mask with −∞, causal', batch: 1, heads: 2, seqQ: L, seqK: S, headDim: 6, mask: floatMask, causal: true },
  { name: 'bool padding mask [B,1,1,S] + bottom-right', batch: 2, heads: 2, seqQ: 5, seqK: S, headDim: 6, causal: 'bottom-right',
    mask: Uint8Array.from({ length: 2 * S }, (_, i) => (i % S < 17 ? 1 : 0)), maskShape: [2, 1, 1, S] },
  { name: 'GQA 6/2', batch: 2, heads: 6, kvHeads: 2, seqQ: 9, seqK: 40, headDim: 16 },
  // Ragged rows: seqK-derived constants (sigmoid's bias, relu's 1/n, polynomial's 1/√n) from each row's own keys.
  { name: 'keyLengths [5, 40, 0, 17] bottom-right', batch: 4, heads: 2, seqQ: 6, seqK: 40, headDim: 8, keyLengths: [5, 40, 0, 17], causal: 'bottom-right' },
  { name: 'MQA 4/1 causal', batch: 1, heads: 4, kvHeads: 1, seqQ: 17, seqK: 17, headDim: 8, causal: true },
  { name: 'decode 1x300', batch: 1, heads: 4, seqQ: 1, seqK: 300, headDim: 32 },
  { name: 'headDimV 5', batch: 1, heads: 1, seqQ: 6, seqK: 10, headDim: 16, headDimV: 5 },
  { name: 'softcap 2', batch: 1, heads: 2, seqQ: 13, seqK: 29, headDim: 16, softcap: 2, scale: 1 },
  { name: 'softcap 0.3 + mask + causal', batch: 1, heads: 2, seqQ: L, seqK: S, headDim: 6, softcap: 0.3, mask: floatMask, causal: true },
];
const PARAMS: Record<Activation, Partial<AttentionOptions>[]> = {
  softmax: [{}],
  softmax1: [{}],
  squared: [{}, { epsilon: 0.5 }],
  sigmoid: [{}, { bias: 0.7 }],
  relu: [{}],
  polynomial: [{}, { power: 1 }, { power: 2 }, { power: 5 }],
};

let seed = 1000;
describe.each(BACKEND_NAMES)('%s', (backend) => {
  for (const activation of ACTIVATIONS) {
    for (const params of PARAMS[activation]) {
      const label = `${activation}${Object.keys(params).length ? ' ' + JSON.stringify(params) : ''}`;
      test.each(SHAPES.map((s) => [s.name, s] as const))(`${label}: %s`, (_, shape) => {
        const { name: _n, ...rest } = shape;
        const o: AttentionOptions = { ...rest, activation, ...params };
        const { q, k, v } = inputs(o, seed += 3);
        const want = referenceWithWeights(q, k, v, o);
        const e = engines.get(backend)!;
        expectClose(e.attention(q, k, v, o), want.output, 'output');
        const both = e.attention(q, k, v, { ...o, returnWeights: true });
        expectClose(both.output, want.output, 'output with weights');
        expect(both.weights.length).toBe(want.weights.length);
        expect(maxAbsError(both.weights, want.weights)).toBeLessThanOrEqual(1e-5);
        // Masked and causally excluded positions are exactly 0 for every activation.
        for (let i = 0; i < want.weights.length; i++) if (want.weights[i] === 0) expect(both.weights[i]).toBe(0);
      });
    }
  }

  test('weights rows: softmax sums to 1 (0 when fully masked), squared to Σp²/(Σp²+ε), softmax1 to < 1', () => {
    const e = engines.get(backend)!;
    const o = { batch: 1, heads: 1, seqQ: L, seqK: S, headDim: 6, mask: rowsOff };
    const { q, k, v } = inputs(o, 5);
    const rowSums = (w: Float32Array) => Array.from({ length: L }, (_, i) => w.subarray(i * S, (i + 1) * S).reduce((a, c) => a + c, 0));
    const soft = rowSums(e.attention(q, k, v, { ...o, returnWeights: true }).weights);
    soft.forEach((sum, i) => expect(sum).toBeCloseTo(i === 4 ? 0 : 1, 5));
    const squared = rowSums(e.attention(q, k, v, { ...o, activation: 'squared', returnWeights: true }).weights);
    squared.forEach((sum, i) => (i === 4 ? expect(sum).toBe(0) : expect(sum).toBeCloseTo(1, 4)));
    const quiet = rowSums(e.attention(q, k, v, { ...o, activation: 'softmax1', returnWeights: true }).weights);
    quiet.forEach((sum) => expect(sum).toBeLessThan(1));
  });

  test('squared: rows of all-≈0 scores stay finite and near 0 thanks to ε; without it they attend to noise', () => {
    const e = engines.get(backend)!;
    const o = { batch: 1, heads: 1, seqQ: 2, seqK: 9, headDim: 4, activation: 'squared' as const };
    const q = new Float32Array(8);
    q.set([1e-4, 0, 0, 0], 4); // row 0: scores exactly 0; row 1: scores ~1e-4, so Σp² ~1e-8 ≪ ε
    const { k, v } = inputs(o, 9);
    const got = e.attention(q, k, v, { ...o, returnWeights: true });
    expect(got.output.every(Number.isFinite)).toBe(true);
    expect(Array.from(got.output.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    expectClose(got.output, referenceWithWeights(q, k, v, o).output, 'near-zero squared');
    const rowSum = (w: Float32Array, i: number) => w.subarray(i * 9, i * 9 + 9).reduce((a, c) => a + c, 0);
    expect(rowSum(got.weights, 1)).toBeLessThan(0.05);
    // ε = 0: the exactly-zero row is treated as having nothing to attend to (zeros, never 0/0 = NaN), while the
    // ~1e-4 row is renormalised to sum 1: full attention on scores that are rounding noise.
    const bare = e.attention(q, k, v, { ...o, epsilon: 0, returnWeights: true });
    expect(Array.from(bare.output.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    expect(rowSum(bare.weights, 1)).toBeCloseTo(1, 5);
  });

  test('softcap bounds the scores: weights equal softmax of cap·tanh(s/cap)', () => {
    const e = engines.get(backend)!;
    const o = { batch: 1, heads: 1, seqQ: 3, seqK: 7, headDim: 4, scale: 1, softcap: 5 };
    const { q, k, v } = inputs(o, 40);
    q.forEach((_, i) => (q[i] = q[i]! * 100)); // raw scores ~±100, capped to ±5
    const want = referenceWithWeights(q, k, v, o);
    const got = e.attention(q, k, v, { ...o, returnWeights: true });
    expect(maxAbsError(got.weights, want.weights)).toBeLessThan(1e-5);
    for (let i = 0; i < 3; i++) {
      const row = got.weights.subarray(i * 7, i * 7 + 7);
      expect(Math.max(...row) / Math.min(...row)).toBeLessThan(Math.exp(10) * 1.001); // scores differ by ≤ 2·cap
    }
  });

  const LINEAR: LinearAttentionOptions[] = [
    { batch: 1, heads: 2, seqQ: 17, seqK: 17, headDim: 8 },
    { batch: 2, heads: 2, seqQ: 9, seqK: 65, headDim: 5, headDimV: 3 },
    { batch: 1, heads: 4, kvHeads: 2, seqQ: 33, seqK: 33, headDim: 16, causal: true },
    { batch: 1, heads: 2, seqQ: 10, seqK: 40, headDim: 7, causal: 'bottom-right' },
    { batch: 1, heads: 1, seqQ: 40, seqK: 10, headDim: 7, causal: 'bottom-right' },
    { batch: 1, heads: 3, kvHeads: 1, seqQ: 1, seqK: 129, headDim: 64, headDimV: 64, causal: 'bottom-right' },
    { batch: 1, heads: 1, seqQ: 5, seqK: 5, headDim: 1, headDimV: 1, epsilon: 0.1 },
    { batch: 1, heads: 1, seqQ: 8, seqK: 8, headDim: 3, headDimV: 8, causal: true },
  ];
  test.each(LINEAR.map((o) => [JSON.stringify(o), o] as const))('linearAttention %s', (_, o) => {
    const { q, k, v } = inputs(o, seed += 3);
    expectClose(engines.get(backend)!.linearAttention(q, k, v, o), referenceLinear(q, k, v, o), 'linear');
  });
});
