// Linear attention on every backend against float64 (reference.mjs referenceLinear, the closed form of the
// recurrence): each option alone and combined, GQA, headDimV, both causal alignments, sizes around the chunk
// edges of BACKENDS[i].blocks.linearChunk, decay and gate extremes, magnitudes float32 alone cannot hold
// (issue 10 item 7), and chunked or token-by-token feeding through a state equal to one call.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BACKENDS } from '../src/index.js';
import type { AttentionEngine, BackendName, LinearAttentionOptions } from '../src/index.js';
import { BACKEND_NAMES, allEngines, expectClose, random } from './helpers.js';
import { inputs } from './runtimes/cases.mjs';
import { referenceLinear } from './runtimes/reference.mjs';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

/** Key counts at the edges of every backend's linear chunk: 1, and n − 1, n, n + 1 for one and two chunks. */
const CHUNK_EDGES = [...new Set(BACKENDS.flatMap(({ blocks: { linearChunk: c } }) => [1, c - 1, c, c + 1, 2 * c - 1, 2 * c, 2 * c + 1]))]
  .filter((n) => n >= 1).sort((a, b) => a - b);
const LC = Math.max(...BACKENDS.map((b) => b.blocks.linearChunk));

/** γ per head in [lo, 1]. */
const decayOf = (heads: number, seed: number, lo = 0.5) => Float32Array.from(random(heads, seed), (x) => lo + (1 - lo) * (x + 1) / 2);
/** Gates in [−amplitude, 0] for [batch, heads, seqK]. */
const gatesOf = (o: LinearAttentionOptions, seed: number, amplitude = 1) =>
  Float32Array.from(random(o.batch * o.heads * o.seqK, seed), (x) => -Math.abs(x) * amplitude);

type Case = LinearAttentionOptions & { name: string };
const base = { batch: 2, heads: 4, kvHeads: 2, headDim: 7, headDimV: 9 };
function options(): Case[] {
  const list: Case[] = [];
  const add = (name: string, o: LinearAttentionOptions) => list.push({ name, ...o });
  const causal = { ...base, seqQ: 40, seqK: 40, causal: true } as const;
  add('elu+1, non-causal', { ...base, seqQ: 23, seqK: 70 });
  add('identity, non-causal', { ...base, seqQ: 23, seqK: 70, featureMap: 'identity' });
  add('identity, causal', { ...causal, featureMap: 'identity' });
  add('normalize: false, non-causal', { ...base, seqQ: 23, seqK: 70, normalize: false });
  add('normalize: false, causal', { ...causal, normalize: false });
  add('epsilon 0.5', { ...causal, epsilon: 0.5 });
  add('decay', { ...causal, decay: decayOf(4, 1) });
  add('gates', { ...causal, gates: gatesOf(causal, 2) });
  add('decay + gates', { ...causal, decay: decayOf(4, 3), gates: gatesOf(causal, 4) });
  add('everything, identity, unnormalised (RetNet / Mamba-2)',
    { ...causal, featureMap: 'identity', normalize: false, decay: decayOf(4, 5), gates: gatesOf(causal, 6, 0.3) });
  for (const [L, S] of [[20, 150], [150, 20], [1, 129], [70, 1]] as const) {
    for (const mode of [true, 'bottom-right'] as const) {
      const o = { ...base, seqQ: L, seqK: S, causal: mode };
      add(`L${L} S${S} causal ${mode}, decay + gates`, { ...o, decay: decayOf(4, L), gates: gatesOf(o, S) });
    }
  }
  add('MQA 6/1, headDim 64', { batch: 1, heads: 6, kvHeads: 1, seqQ: 100, seqK: 100, headDim: 64, causal: true, decay: decayOf(6, 9) });
  for (const n of CHUNK_EDGES) {
    const o = { batch: 1, heads: 2, seqQ: n, seqK: n, headDim: 16, headDimV: 8, causal: true } as const;
    add(`chunk edge ${n}`, o);
    add(`chunk edge ${n}, gates`, { ...o, gates: gatesOf(o, n, 0.2) });
    add(`chunk edge ${n}, non-causal`, { ...o, causal: false });
    add(`chunk edge seqK ${n}, 5 queries bottom-right`, { ...o, seqQ: 5, causal: 'bottom-right', decay: decayOf(2, n) });
  }
  return list;
}

describe.each(BACKEND_NAMES)('%s linear attention', (backend) => {
  test.each(options())('$name', ({ name, ...o }) => {
    const { q, k, v } = inputs(o, 10 + name.length);
    // identity features normalised: keep φ(q)·φ(k) positive, or the denominator is a cancellation that no
    // float32 sum can match (that is the model's problem, not the kernel's).
    if (o.featureMap === 'identity' && o.normalize !== false) [q, k].forEach((x) => x.forEach((y, i) => (x[i] = y + 1.5)));
    expectClose(engines.get(backend)!.linearAttention(q, k, v, o), referenceLinear(q, k, v, o), name);
  });

  test.each([
    ['γ tiny (1e-30, the smallest subnormal)', { decay: Float32Array.of(1e-30, 1.4e-45, 1, 0.5) }],
    ['gates −1e3', { gates: new Float32Array(4 * 50).fill(-1e3) }],
    ['gates −0', { gates: new Float32Array(4 * 50).fill(-0) }],
    // −1e3 then −1e-3: the cumulative sums sit near −1e3, their differences near 0 must stay exact.
    ['gates −1e3 once, then −1e-3', { gates: Float32Array.from({ length: 4 * 50 }, (_, i) => (i % 50 === 3 ? -1e3 : -1e-3)) }],
    ['gates −30 over 50 keys, decay 1e-20', { gates: new Float32Array(4 * 50).fill(-30), decay: new Float32Array(4).fill(1e-20) }],
  ] as const)('decay extremes: %s', (_, extra) => {
    const o = { batch: 1, heads: 4, seqQ: 50, seqK: 50, headDim: 8, causal: true, ...extra } as const;
    const { q, k, v } = inputs(o, 70);
    const got = engines.get(backend)!.linearAttention(q, k, v, o);
    expect(got.every(Number.isFinite)).toBe(true);
    expectClose(got, referenceLinear(q, k, v, o), 'extreme decay');
  });

  test('strong decay keeps only the newest key: out_i = v_i', () => {
    const o = { batch: 1, heads: 1, seqQ: 3 * LC + 5, seqK: 3 * LC + 5, headDim: 4, causal: true } as const;
    const { q, k, v } = inputs(o, 80);
    const got = engines.get(backend)!.linearAttention(q, k, v, { ...o, gates: new Float32Array(o.seqK).fill(-1e3) });
    expectClose(got, Float64Array.from(v), 'v itself');
  });

  // Issue 10 item 7: magnitudes float64 holds and float32 running sums or features alone do not.
  const tiny = { batch: 1, heads: 1, seqQ: 3, seqK: 3 * LC + 2, headDim: 4, causal: 'bottom-right' } as const;
  test.each([
    ['k = 1e30, q = 1e30', 1e30, 1e30, {}],
    ['k = 3e38 (φ(k)·v overflows float32)', 1, 3e38, {}],
    ['q = −100, ε = 0 (φ(q) underflows float32)', -100, 1, { epsilon: 0 }],
    ['q = −100, k = −100, ε = 0', -100, -100, { epsilon: 0 }],
    ['q = k = −800, ε = 0 (e^−1600 underflows float64 too)', -800, -800, { epsilon: 0 }],
    ['identity, q = k = 1e-30, ε = 0', 1e-30, 1e-30, { epsilon: 0, featureMap: 'identity' }],
  ] as const)('%s gives the mean of v', (_, qv, kv, extra) => {
    const o = { ...tiny, ...extra };
    const q = new Float32Array(3 * 4).fill(qv), k = new Float32Array(o.seqK * 4).fill(kv), v = new Float32Array(o.seqK * 4).fill(2);
    for (const causal of ['bottom-right', false, true] as const) {
      const got = engines.get(backend)!.linearAttention(q, k, v, { ...o, causal });
      for (const x of got) expect(x).toBeCloseTo(2, 5);
    }
  });

  test('a NaN key reaches the queries that admit it and no other', () => {
    const o = { batch: 1, heads: 1, seqQ: 2 * LC + 3, seqK: 2 * LC + 3, headDim: 4, causal: true, decay: Float32Array.of(0.9) } as const;
    const { q, k, v } = inputs(o, 95);
    const j = LC + 6;
    k[j * 4 + 1] = NaN;
    const got = engines.get(backend)!.linearAttention(q, k, v, o);
    expect(got.subarray(0, j * 4).every(Number.isFinite)).toBe(true);
    expect(got.subarray(j * 4).every(Number.isNaN)).toBe(true);
    expectClose(got.subarray(0, j * 4), referenceLinear(q, k, v, o).subarray(0, j * 4), 'rows before the NaN key');
  });

  test('ε = 0: queries with no admissible key give zeros (bottom-right, seqQ > seqK), the rest their answer', () => {
    const o = { batch: 1, heads: 2, seqQ: 9, seqK: 4, headDim: 5, causal: 'bottom-right', epsilon: 0 } as const;
    const { q, k, v } = inputs(o, 90);
    const got = engines.get(backend)!.linearAttention(q, k, v, o);
    expect(got.every(Number.isFinite)).toBe(true);
    for (const h of [0, 1]) expect(Array.from(got.subarray(h * 45, h * 45 + 25))).toEqual(new Array(25).fill(0));
    expectClose(got, referenceLinear(q, k, v, o), 'ε = 0');
  });

  test('a query with no admissible key gives zeros unnormalised too, and with the identity map', () => {
    for (const extra of [{ normalize: false }, { featureMap: 'identity' as const }]) {
      const o = { batch: 1, heads: 1, seqQ: 6, seqK: 2, headDim: 3, causal: 'bottom-right' as const, ...extra };
      const { q, k, v } = inputs(o, 91);
      const got = engines.get(backend)!.linearAttention(q, k, v, o);
      expect(Array.from(got.subarray(0, 12))).toEqual(new Array(12).fill(0));
      expectClose(got, referenceLinear(q, k, v, o), JSON.stringify(extra));
    }
  });
});
