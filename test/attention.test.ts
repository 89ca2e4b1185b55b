// Every backend against the float64 reference over tile edges, causal modes, masks, GQA and odd shapes.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BACKENDS } from '../src/index.js';
import type { AttentionEngine, AttentionOptions, BackendName } from '../src/index.js';
import { BACKEND_NAMES, allEngines, expectClose, random } from './helpers.js';
import { allTileEdges, edgePairs } from './runtimes/cases.mjs';
import { referenceAttention } from './runtimes/reference.mjs';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

interface Case extends AttentionOptions {
  name: string;
  amplitude?: number;
  /** Seed of q (k: seed + 1, v: seed + 2); by default from the case's place in the list, the same for every backend. */
  seed?: number;
}

function run(backend: BackendName, c: Case): void {
  const { name, amplitude = 1, seed = 1, ...options } = c;
  const kvHeads = options.kvHeads ?? options.heads;
  const Dv = options.headDimV ?? options.headDim;
  const q = random(options.batch * options.heads * options.seqQ * options.headDim, seed, amplitude);
  const k = random(options.batch * kvHeads * options.seqK * options.headDim, seed + 1, amplitude);
  const v = random(options.batch * kvHeads * options.seqK * Dv, seed + 2);
  const got = engines.get(backend)!.attention(q, k, v, options);
  const want = referenceAttention(q, k, v, options);
  expectClose(got, want, `${backend} ${name}`);
}

// Sizes at the edges of every backend's blocking (BACKENDS[i].blocks): n − 1, n, n + 1 around the 4×8 register
// tile, the query block, the key block and twice each; decode blocks (1–3 query rows) and their key counts.
const EDGES = allTileEdges(BACKENDS.map((b) => b.blocks));
const SEQ = EDGES.all;
const QUERY_BLOCK = Math.max(...BACKENDS.map((b) => b.blocks.queries));
const KEY_BLOCK = Math.max(...BACKENDS.map((b) => b.blocks.keys));
const HEAD_DIMS = [1, 3, 5, 7, 8, 9, 63, 64, 65, 128, 256];

const cases: Case[] = [];
for (const headDim of HEAD_DIMS) {
  cases.push({ name: `headDim ${headDim}`, batch: 1, heads: 2, seqQ: 19, seqK: 37, headDim });
}
for (const n of SEQ) {
  cases.push({ name: `seq ${n}`, batch: 1, heads: 1, seqQ: n, seqK: n, headDim: 16 });
  cases.push({ name: `seqQ ${n} seqK 70`, batch: 1, heads: 1, seqQ: n, seqK: 70, headDim: 12 });
  cases.push({ name: `seqQ 21 seqK ${n}`, batch: 1, heads: 1, seqQ: 21, seqK: n, headDim: 12 });
}
for (const causal of [true, 'top-left', 'bottom-right'] as const) {
  for (const [seqQ, seqK] of [...edgePairs(EDGES), [5, 70], [70, 5]]) {
    cases.push({ name: `causal ${causal} ${seqQ}x${seqK}`, batch: 2, heads: 2, seqQ: seqQ!, seqK: seqK!, headDim: 9, causal });
  }
}
// GQA, MQA, headDimV ≠ headDim, custom scale, decode.
cases.push(
  { name: 'GQA 8/2', batch: 2, heads: 8, kvHeads: 2, seqQ: 13, seqK: 29, headDim: 16 },
  { name: 'GQA 6/3 causal bottom-right', batch: 1, heads: 6, kvHeads: 3, seqQ: 9, seqK: 40, headDim: 8, causal: 'bottom-right' },
  { name: 'MQA 4/1', batch: 2, heads: 4, kvHeads: 1, seqQ: 17, seqK: 17, headDim: 32, causal: true },
  { name: 'headDimV 3', batch: 1, heads: 2, seqQ: 10, seqK: 23, headDim: 16, headDimV: 3 },
  { name: 'headDimV 17 > headDim 5', batch: 1, heads: 2, seqQ: 10, seqK: 23, headDim: 5, headDimV: 17 },
  { name: 'headDimV 64 headDim 32', batch: 1, heads: 1, seqQ: 33, seqK: 65, headDim: 32, headDimV: 64 },
  { name: 'scale 0.5', batch: 1, heads: 2, seqQ: 12, seqK: 12, headDim: 16, scale: 0.5 },
  { name: 'scale -1.3', batch: 1, heads: 2, seqQ: 12, seqK: 12, headDim: 16, scale: -1.3 },
  { name: 'scale 0 (uniform weights)', batch: 1, heads: 1, seqQ: 5, seqK: 9, headDim: 4, scale: 0 },
  { name: `decode 1x${KEY_BLOCK + 1}`, batch: 1, heads: 4, seqQ: 1, seqK: KEY_BLOCK + 1, headDim: 64 },
  { name: 'decode 1x4096 GQA bottom-right', batch: 1, heads: 4, kvHeads: 2, seqQ: 1, seqK: 4096, headDim: 128, causal: 'bottom-right' },
  // At |score| ≈ 1e3 the float32 scores of every backend (js included) carry rounding errors near this suite's
  // tolerance: about 1 seed in 6 exceeds it. Seed 343 is what this case got on the first backend while seeds
  // still ran on from case to case and backend to backend (it passes on every backend).
  { name: 'large logits, amplitude 30 (|score| up to ~1e3)', batch: 1, heads: 2, seqQ: 20, seqK: 40, headDim: 8, amplitude: 30, seed: 343 },
);
// Blocks of 1–3 query rows sweep longer key blocks: key counts around one such block for each row count, causal;
// past the 3-row block with masks and another activation, and a query count whose last block has 3 rows.
for (const { rows, keys } of EDGES.decode) {
  for (const seqK of keys) {
    cases.push({ name: `decode ${rows}x${seqK} bottom-right`, batch: 1, heads: 2, seqQ: rows, seqK, headDim: 16, causal: 'bottom-right' });
  }
}
{
  const past = EDGES.decode.find((d) => d.rows === 3)!.block + 1;
  cases.push(
    { name: `decode 3x${past} bottom-right, float mask [S]`, batch: 1, heads: 2, seqQ: 3, seqK: past, headDim: 16, causal: 'bottom-right',
      mask: Float32Array.from(random(past, 31), (x) => (x < -0.7 ? -Infinity : x)), maskShape: [past] },
    { name: `decode 3x${past} softmax1, bool mask [S]`, batch: 1, heads: 1, seqQ: 3, seqK: past, headDim: 8, activation: 'softmax1',
      mask: Uint8Array.from(random(past, 32), (x) => (x > -0.5 ? 1 : 0)), maskShape: [past] },
    { name: `seqQ ${QUERY_BLOCK + 3} (a 3-row last block) x ${past}, causal`, batch: 1, heads: 1, seqQ: QUERY_BLOCK + 3, seqK: past, headDim: 8,
      causal: 'bottom-right' },
  );
}

// Masks: every broadcast shape, boolean and additive, with and without causal.
const B = 2, H = 3, L = 11, S = 21;
const MASK_SHAPES = [[S], [1, S], [L, 1], [L, S], [1, 1], [H, L, S], [H, 1, 1], [B, 1, L, S], [B, 1, 1, S], [B, H, L, S], [1, H, 1, S]];
for (const shape of MASK_SHAPES) {
  const n = shape.reduce((a, c) => a * c, 1);
  const boolMask = Uint8Array.from(random(n, 900 + n), (x) => (x > -0.4 ? 1 : 0));
  const floatMask = Float32Array.from(random(n, 700 + n), (x) => (x < -0.6 ? -Infinity : x * 3));
  for (const causal of [false, 'top-left', 'bottom-right'] as const) {
    const base = { batch: B, heads: H, seqQ: L, seqK: S, headDim: 7, maskShape: shape, causal };
    cases.push({ name: `bool mask [${shape}] causal ${causal}`, ...base, mask: boolMask });
    cases.push({ name: `float mask [${shape}] causal ${causal}`, ...base, mask: floatMask });
  }
}
// Fully masked rows come out as zeros (and their neighbours are unaffected).
{
  const rowsOff = new Uint8Array(L * S).fill(1);
  for (const i of [0, 4, L - 1]) rowsOff.fill(0, i * S, (i + 1) * S);
  const minusInf = Float32Array.from(rowsOff, (x) => (x ? 0.25 : -Infinity));
  cases.push(
    { name: 'bool mask with fully masked rows', batch: 1, heads: 2, seqQ: L, seqK: S, headDim: 6, mask: rowsOff },
    { name: 'float −∞ mask with fully masked rows', batch: 1, heads: 2, seqQ: L, seqK: S, headDim: 6, mask: minusInf },
    { name: 'bottom-right with seqQ > seqK leaves leading rows empty', batch: 1, heads: 1, seqQ: 40, seqK: 9, headDim: 6, causal: 'bottom-right' },
    { name: 'all keys masked', batch: 1, heads: 1, seqQ: 3, seqK: 70, headDim: 6, mask: new Uint8Array(70), maskShape: [70] },
  );
}

cases.forEach((c, n) => (c.seed ??= 1 + 3 * n));

describe.each(BACKEND_NAMES)('%s matches the float64 reference', (backend) => {
  test.each(cases.map((c) => [c.name, c] as const))('%s', (_, c) => run(backend, c));
});

describe.each(BACKEND_NAMES)('%s special values', (backend) => {
  test('fully masked rows are exactly zero, never NaN', () => {
    const e = engines.get(backend)!;
    const mask = new Uint8Array(4 * 9).fill(1).fill(0, 9, 18);
    const out = e.attention(random(4 * 8, 1), random(9 * 8, 2), random(9 * 8, 3),
      { batch: 1, heads: 1, seqQ: 4, seqK: 9, headDim: 8, mask });
    expect(Array.from(out.subarray(8, 16))).toEqual(new Array(8).fill(0));
    expect(out.every((x) => Number.isFinite(x))).toBe(true);
  });

  test('logits of ±1e4 do not overflow: the dominant key wins exactly', () => {
    // q·k = 1e4·c_j exactly in float32; the row max leads by ≥ 1e4, so the weights are one-hot.
    const S = 70, D = 4;
    const q = Float32Array.from([100, 0, 0, 0, -100, 0, 0, 0]);
    const k = new Float32Array(S * D);
    const v = random(S * D, 5);
    for (let j = 0; j < S; j++) k[j * D] = 100 * ((j * 37) % S - 35);
    const out = engines.get(backend)!.attention(q, k, v, { batch: 1, heads: 1, seqQ: 2, seqK: S, headDim: D, scale: 1 });
    const argmax = (sign: number) => [...Array(S).keys()].reduce((best, j) => (sign * k[j * D]! > sign * k[best * D]! ? j : best), 0);
    expect(Array.from(out.subarray(0, D))).toEqual(Array.from(v.subarray(argmax(1) * D, argmax(1) * D + D)));
    expect(Array.from(out.subarray(D, 2 * D))).toEqual(Array.from(v.subarray(argmax(-1) * D, argmax(-1) * D + D)));
  });

  test('equal logits of 1e4 give the plain mean of v', () => {
    const S = 9, D = 4;
    const q = Float32Array.from([100, 0, 0, 0]);
    const k = new Float32Array(S * D).map((_, i) => (i % D === 0 ? 100 : 0));
    const v = random(S * D, 8);
    const out = engines.get(backend)!.attention(q, k, v, { batch: 1, heads: 1, seqQ: 1, seqK: S, headDim: D, scale: 1 });
    for (let c = 0; c < D; c++) {
      let mean = 0;
      for (let j = 0; j < S; j++) mean += v[j * D + c]! / S;
      expect(Math.abs(out[c]! - mean)).toBeLessThan(1e-6);
    }
  });

  test('NaN in a query row makes exactly that output row NaN', () => {
    const q = random(3 * 8, 11);
    q[8 + 2] = NaN;
    const out = engines.get(backend)!.attention(q, random(20 * 8, 12), random(20 * 8, 13),
      { batch: 1, heads: 1, seqQ: 3, seqK: 20, headDim: 8 });
    expect(out.subarray(8, 16).every(Number.isNaN)).toBe(true);
    expect([...out.subarray(0, 8), ...out.subarray(16)].every(Number.isFinite)).toBe(true);
  });

  test('a +∞ float-mask entry makes its row NaN (∞ − ∞), like PyTorch', () => {
    const mask = new Float32Array(2 * 5);
    mask[5 + 3] = Infinity;
    const out = engines.get(backend)!.attention(random(2 * 4, 1), random(5 * 4, 2), random(5 * 4, 3),
      { batch: 1, heads: 1, seqQ: 2, seqK: 5, headDim: 4, mask });
    expect(out.subarray(0, 4).every(Number.isFinite)).toBe(true);
    expect(out.subarray(4, 8).every(Number.isNaN)).toBe(true);
  });

  test('writes into options.out, also when out aliases q', () => {
    const e = engines.get(backend)!;
    const options = { batch: 1, heads: 2, seqQ: 9, seqK: 9, headDim: 8 };
    const q = random(2 * 9 * 8, 21), k = random(2 * 9 * 8, 22), v = random(2 * 9 * 8, 23);
    const want = referenceAttention(q, k, v, options);
    const out = new Float32Array(2 * 9 * 8);
    expect(e.attention(q, k, v, { ...options, out })).toBe(out);
    expectClose(out, want, 'out');
    const aliased = q.slice();
    expect(e.attention(aliased, k, v, { ...options, out: aliased })).toBe(aliased);
    expectClose(aliased, want, 'out aliasing q');
    const vAlias = v.slice();
    e.attention(q, k, vAlias, { ...options, out: vAlias });
    expectClose(vAlias, want, 'out aliasing v');
  });

  test('inputs are not modified', () => {
    const q = random(4 * 8, 31), k = random(6 * 8, 32), v = random(6 * 8, 33);
    const copies = [q.slice(), k.slice(), v.slice()];
    engines.get(backend)!.attention(q, k, v, { batch: 1, heads: 1, seqQ: 4, seqK: 6, headDim: 8, causal: true });
    expect([q, k, v]).toEqual(copies);
  });
});
