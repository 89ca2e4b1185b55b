// The options real models need (issue 9): sliding windows, ALiBi, sinks, RoPE, the 'bshd' layout, key lengths and
// block-sparse masks, alone and combined, in every backend against the float64 reference, across the kernels'
// tile edges around the window borders, and through KV caches.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AttentionEngine, AttentionOptions, BackendName } from '../src/index.js';
import { BACKENDS } from '../src/index.js';
import { referenceWithWeights, tileEdges } from './runtimes/cases.mjs';
import { allEngines, expectClose, random } from './helpers.js';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

type Case = { name: string } & AttentionOptions;

/** Inputs of a case: q, k, v uniform in [−1, 1) (q, k times `amp`). */
function inputsOf(o: Case, seed: number, amp = 1) {
  const kvh = o.kvHeads ?? o.heads;
  const q = random(o.batch * o.heads * o.seqQ * o.headDim, seed, amp);
  const k = random(o.batch * kvh * o.seqK * o.headDim, seed + 1, amp);
  const v = random(o.batch * kvh * o.seqK * (o.headDimV ?? o.headDim), seed + 2);
  return { q, k, v };
}

function slopes(H: number): Float32Array {
  return Float32Array.from({ length: H }, (_, h) => 2 ** (-8 * (h + 1) / H)); // BLOOM's geometric slopes
}

const wasm = BACKENDS.find((b) => b.name !== 'js')!.blocks;
const edges = tileEdges(wasm);
const W = wasm.keys; // windows around the key block

// Each feature alone, then combined; sizes around the tile edges of the wasm kernels.
const CASES: Case[] = [
  ...[[W - 1, 0], [W, 0], [W + 1, 0], [0, 0], [3, 5], [0, Infinity]].flatMap(([l, r]) => [
    { name: `window [${l}, ${r}] causal 300x300`, batch: 1, heads: 2, seqQ: 300, seqK: 300, headDim: 16, window: [l!, r!] as [number, number], causal: true },
    { name: `window [${l}, ${r}] 70x333 (bottom-right aligned)`, batch: 1, heads: 1, seqQ: 70, seqK: 333, headDim: 8, window: [l!, r!] as [number, number] },
  ]),
  ...edges.keys.slice(0, 6).map((S) => ({ name: `window [7, 2] seqK ${S} decode`, batch: 1, heads: 2, seqQ: 1, seqK: S, headDim: 8, window: [7, 2] as [number, number] })),
  { name: 'ALiBi 8 heads 200x260', batch: 1, heads: 8, seqQ: 200, seqK: 260, headDim: 16, alibiSlopes: slopes(8) },
  { name: 'ALiBi causal bottom-right decode 1x700', batch: 2, heads: 4, seqQ: 1, seqK: 700, headDim: 32, alibiSlopes: slopes(4), causal: 'bottom-right' },
  { name: 'sinks 4 heads 130x129', batch: 1, heads: 4, seqQ: 130, seqK: 129, headDim: 8, sinks: Float32Array.of(-2, 0, 1.5, 8) },
  { name: 'sinks causal with a fully excluded row', batch: 1, heads: 2, seqQ: 5, seqK: 3, headDim: 4, sinks: Float32Array.of(0.5, -1), causal: 'bottom-right' },
  { name: 'rope default 65x129', batch: 1, heads: 2, seqQ: 65, seqK: 129, headDim: 16, rope: {} },
  { name: 'rope partial dims 6 of 10, base 500000, positions', batch: 1, heads: 2, seqQ: 9, seqK: 40, headDim: 10, rope: { dims: 6, base: 500000, positionQ: 31, positionK: 0 } },
  { name: 'rope interleaved (GPT-J) dims 8 of 12, causal', batch: 2, heads: 1, seqQ: 33, seqK: 33, headDim: 12, rope: { dims: 8, interleaved: true }, causal: true },
  { name: 'rope frequencies at position 100000', batch: 1, heads: 1, seqQ: 4, seqK: 20, headDim: 8, rope: { frequencies: [1, 0.1, 0.01, 0.001], positionQ: 100000, positionK: 99990 } },
  { name: 'bshd 3 heads 70x130 d13, headDimV 5', batch: 2, heads: 3, seqQ: 70, seqK: 130, headDim: 13, headDimV: 5, layout: 'bshd' },
  { name: 'bshd GQA 4/2 causal 65x65 d16', batch: 1, heads: 4, kvHeads: 2, seqQ: 65, seqK: 65, headDim: 16, layout: 'bshd', causal: true },
  { name: 'keyLengths [0, 1, 129, 300] bottom-right', batch: 4, heads: 2, seqQ: 7, seqK: 300, headDim: 8, keyLengths: [0, 1, 129, 300], causal: 'bottom-right' },
  { name: 'keyLengths Int32Array with window and ALiBi', batch: 2, heads: 2, seqQ: 66, seqK: 140, headDim: 8, keyLengths: Int32Array.of(100, 140), window: [20, 0], alibiSlopes: slopes(2) },
  // Grouped decode (one query row, GQA/MQA: a kv head's query heads are the rows of one block), per-head rules.
  { name: 'grouped decode GQA 8/2 + ALiBi + sinks + per-head mask + window + keyLengths', batch: 2, heads: 8, kvHeads: 2, seqQ: 1, seqK: 300, headDim: 16,
    alibiSlopes: slopes(8), sinks: Float32Array.from({ length: 8 }, (_, h) => h - 4), window: [150, 0], keyLengths: [300, 129], causal: 'bottom-right',
    mask: Float32Array.from(random(2 * 8 * 300, 7), (x) => (x < -0.7 ? -Infinity : x)), maskShape: [2, 8, 1, 300] },
  { name: 'grouped decode MQA 70/1 (two blocks of heads), bshd, bool mask per head', batch: 1, heads: 70, kvHeads: 1, seqQ: 1, seqK: 200, headDim: 8, layout: 'bshd',
    mask: Uint8Array.from(random(70 * 200, 8), (x) => (x > -0.6 ? 1 : 0)), maskShape: [70, 1, 200] },
  { name: 'grouped decode GQA 6/2 over 8300 keys (past one decode block), RoPE, squared', batch: 1, heads: 6, kvHeads: 2, seqQ: 1, seqK: 8300, headDim: 8, rope: { positionQ: 8299 }, activation: 'squared' },
  {
    name: 'everything: window + ALiBi + sinks + softcap + RoPE + GQA + mask + bshd + keyLengths', batch: 2, heads: 4, kvHeads: 2,
    seqQ: 70, seqK: 200, headDim: 16, window: [50, 3], alibiSlopes: slopes(4), sinks: Float32Array.of(0, 1, -1, 2), softcap: 5,
    rope: { dims: 8 }, layout: 'bshd', keyLengths: [150, 200], causal: 'bottom-right',
    mask: Float32Array.from(random(70 * 200, 99), (x) => (x < -0.8 ? -Infinity : x)), maskShape: [70, 200],
  },
];

describe.each([...BACKENDS.map((b) => b.name)])('%s', (name) => {
  test.each(CASES.map((c, n) => [c.name, c, n] as const))('%s', (_, c, n) => {
    const e = engines.get(name)!;
    const { name: _label, ...o } = c;
    const { q, k, v } = inputsOf(c, 1000 + 10 * n, 1.5);
    const want = referenceWithWeights(q, k, v, o);
    expectClose(e.attention(q, k, v, o), want.output, `${name} ${c.name}`);
    const got = e.attention(q, k, v, { ...o, returnWeights: true });
    expectClose(got.output, want.output, `${name} ${c.name} (weights mode)`);
    expectClose(got.weights, want.weights, `${name} ${c.name} weights`);
  });

  test('other activations with window, ALiBi and key lengths', () => {
    const e = engines.get(name)!;
    for (const activation of ['softmax1', 'squared', 'sigmoid', 'relu', 'polynomial'] as const) {
      const o = { batch: 2, heads: 2, seqQ: 40, seqK: 150, headDim: 8, activation, window: [30, 2] as [number, number], alibiSlopes: slopes(2), keyLengths: [150, 90], causal: 'bottom-right' as const };
      const { q, k, v } = inputsOf({ name: '', ...o }, 77);
      expectClose(e.attention(q, k, v, o), referenceWithWeights(q, k, v, o).output, `${name} ${activation}`);
    }
  });

  test('block-sparse: a block-diagonal bool mask (8 documents) equals the reference', () => {
    const e = engines.get(name)!;
    const L = 520, docs = 8, size = Math.ceil(L / docs);
    const mask = new Uint8Array(L * L);
    for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) mask[i * L + j] = Math.floor(i / size) === Math.floor(j / size) && j <= i ? 1 : 0;
    const o = { batch: 1, heads: 2, seqQ: L, seqK: L, headDim: 16, mask };
    const { q, k, v } = inputsOf({ name: '', ...o }, 5);
    expectClose(e.attention(q, k, v, o), referenceWithWeights(q, k, v, o).output, `${name} documents`);
    // float −∞ mask of the same pattern, broadcast over heads
    const fmask = Float32Array.from(mask, (x) => (x ? 0 : -Infinity));
    const o2 = { ...o, mask: fmask, maskShape: [1, L, L] };
    expectClose(e.attention(q, k, v, o2), referenceWithWeights(q, k, v, o2).output, `${name} documents, float`);
  });

  test('KV cache with RoPE and bshd appends equals one-shot attention over the rotated sequence', () => {
    const e = engines.get(name)!;
    const [H, KVH, D, T] = [4, 2, 16, 150];
    const rope = { dims: 12, base: 500000, positionK: 3, positionQ: 3 };
    const K = random(T * KVH * D, 11), V = random(T * KVH * D, 12); // [1, T, KVH, D] (bshd)
    const cache = e.createKVCache({ batch: 1, kvHeads: KVH, headDim: D, capacity: T, rope, layout: 'bshd' });
    const rows = (x: Float32Array, from: number, n: number) => x.subarray(from * KVH * D, (from + n) * KVH * D);
    cache.append(rows(K, 0, 100), rows(V, 0, 100));
    let len = 100;
    for (const [n, seqQ] of [[0, 30], [1, 1], [49, 3]] as const) {
      if (n > 0) cache.append(rows(K, len, n), rows(V, len, n));
      len += n;
      const q = random(seqQ * H * D, 100 + len);
      const attend = { heads: H, seqQ, causal: 'bottom-right' as const, layout: 'bshd' as const, window: [40, 0] as [number, number] };
      const one = { ...attend, batch: 1, kvHeads: KVH, seqK: len, headDim: D, rope: { ...rope, positionQ: 3 + len - seqQ } };
      expectClose(cache.attend(q, attend), referenceWithWeights(q, rows(K, 0, len), rows(V, 0, len), one).output, `${name} cache at ${len}`);
    }
    cache.dispose();
  });
});

describe('bad input: typed errors naming the option', () => {
  const o = { batch: 2, heads: 2, seqQ: 3, seqK: 4, headDim: 4 };
  const q = random(2 * 2 * 3 * 4, 1), k = random(2 * 2 * 4 * 4, 2), v = random(2 * 2 * 4 * 4, 3);
  const bad: [string, Record<string, unknown>, string, string][] = [
    ['window not a pair', { window: [1] }, 'INVALID_OPTION', 'options.window'],
    ['window negative', { window: [-1, 0] }, 'INVALID_OPTION', 'options.window[0]'],
    ['window fractional', { window: [0, 1.5] }, 'INVALID_OPTION', 'options.window[1]'],
    ['window NaN', { window: [NaN, 0] }, 'INVALID_OPTION', 'options.window[0]'],
    ['slopes wrong type', { alibiSlopes: [1, 2] }, 'INVALID_TYPE', 'options.alibiSlopes'],
    ['slopes wrong length', { alibiSlopes: new Float32Array(3) }, 'SHAPE_MISMATCH', 'options.alibiSlopes'],
    ['slopes non-finite', { alibiSlopes: Float32Array.of(1, NaN) }, 'INVALID_OPTION', 'options.alibiSlopes'],
    ['sinks with sigmoid', { sinks: new Float32Array(2), activation: 'sigmoid' }, 'INVALID_OPTION', 'options.sinks'],
    ['sinks wrong length', { sinks: new Float32Array(1) }, 'SHAPE_MISMATCH', 'options.sinks'],
    ['sinks infinite', { sinks: Float32Array.of(0, Infinity) }, 'INVALID_OPTION', 'options.sinks'],
    ['rope odd dims', { rope: { dims: 3 } }, 'INVALID_OPTION', 'options.rope.dims'],
    ['rope dims > headDim', { rope: { dims: 6 } }, 'INVALID_OPTION', 'options.rope.dims'],
    ['rope frequencies length', { rope: { frequencies: [1] } }, 'SHAPE_MISMATCH', 'options.rope.frequencies'],
    ['rope frequencies non-finite', { rope: { frequencies: [1, Infinity] } }, 'INVALID_OPTION', 'options.rope.frequencies'],
    ['rope negative position', { rope: { positionQ: -1 } }, 'INVALID_OPTION', 'options.rope.positionQ'],
    ['rope unknown key', { rope: { theta: 1 } }, 'INVALID_OPTION', 'options.rope.theta'],
    ['rope not an object', { rope: 5 }, 'INVALID_TYPE', 'options.rope'],
    ['rope base and frequencies', { rope: { base: 10, frequencies: [1, 2] } }, 'INVALID_OPTION', 'options.rope.base'],
    ['keyLengths wrong length', { keyLengths: [1] }, 'SHAPE_MISMATCH', 'options.keyLengths'],
    ['keyLengths beyond seqK', { keyLengths: [1, 5] }, 'INVALID_OPTION', 'options.keyLengths'],
    ['keyLengths negative', { keyLengths: Int32Array.of(-1, 2) }, 'INVALID_OPTION', 'options.keyLengths'],
    ['keyLengths Float32Array', { keyLengths: Float32Array.of(1, 2) }, 'INVALID_TYPE', 'options.keyLengths'],
    ['unknown layout', { layout: 'bsdh' }, 'INVALID_OPTION', 'options.layout'],
  ];
  test.each(BACKENDS.map((b) => b.name))('%s', async (name) => {
    const e = engines.get(name)!;
    const out = new Float32Array(2 * 2 * 3 * 4).fill(7);
    for (const [label, extra, code, argument] of bad) {
      let error: unknown = null;
      try {
        e.attention(q, k, v, { ...o, ...extra, out } as AttentionOptions);
      } catch (x) {
        error = x;
      }
      expect(error, label).toMatchObject({ name: 'AttentionError', code, argument });
    }
    expect(out.every((x) => x === 7), 'out untouched').toBe(true);
    const cache = e.createKVCache({ batch: 2, kvHeads: 2, headDim: 4, capacity: 4 });
    cache.append(k, v);
    expect(() => cache.attend(q, { heads: 2, seqQ: 3, rope: {} } as never)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', argument: 'options.rope' }));
    expect(() => cache.attend(q, { heads: 2, seqQ: 3, keyLengths: [1, 1] } as never)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', argument: 'options.keyLengths' }));
    cache.dispose();
  });
});

describe('threads: a 2-thread engine gives the single-threaded result bit for bit', () => {
  test.each(['wasm-relaxed-simd', 'wasm-simd'] as const)('%s', async (backend) => {
    // The built package: its workers load dist/wasm/worker-node.js.
    const { createAttention } = await import('../dist/index.js');
    const threaded = await createAttention({ backend, threads: 2 });
    const single = await createAttention({ backend });
    try {
      CASES.forEach((c, n) => {
        const { name: _label, ...o } = c;
        const { q, k, v } = inputsOf(c, 1000 + 10 * n, 1.5);
        const a = threaded.attention(q, k, v, o), b = single.attention(q, k, v, o);
        expect(a.every((x, i) => Object.is(x, b[i])), c.name).toBe(true);
      });
    } finally {
      threaded.dispose();
      single.dispose();
    }
  });
});
