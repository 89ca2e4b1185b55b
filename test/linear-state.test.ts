// Linear attention's recurrent state on every backend: a sequence fed in chunks (across the kernels' chunk edges)
// or one token at a time equals one call over the whole sequence; queries before a call's first key see the
// prior state; reset, dispose and bad input (typed errors before anything is written); threads.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AttentionError, BACKENDS, createAttention, linearAttentionJs } from '../src/index.js';
import type { AttentionEngine, AttentionErrorCode, BackendName, LinearAttentionOptions, LinearState } from '../src/index.js';
import { BACKEND_NAMES, allEngines, expectClose, maxAbsError, random } from './helpers.js';
import { inputs } from './runtimes/cases.mjs';
import { referenceLinear } from './runtimes/reference.mjs';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

const LC = Math.max(...BACKENDS.map((b) => b.blocks.linearChunk));

/** Positions t0 … t1 − 1 of a [batch, heads, seq, dim] tensor (gates: dim 1). */
function slice(x: Float32Array, batch: number, heads: number, seq: number, dim: number, t0: number, t1: number): Float32Array {
  const out = new Float32Array(batch * heads * (t1 - t0) * dim);
  for (let bh = 0; bh < batch * heads; bh++) out.set(x.subarray((bh * seq + t0) * dim, (bh * seq + t1) * dim), bh * (t1 - t0) * dim);
  return out;
}

type Stream = Omit<LinearAttentionOptions, 'seqQ' | 'seqK' | 'state' | 'causal'>;

/** Feeds positions 0 … n − 1 in the pieces `sizes` through a fresh state; returns the outputs, concatenated per head. */
function feed(e: AttentionEngine, o: Stream, n: number, sizes: number[], x: { q: Float32Array; k: Float32Array; v: Float32Array }) {
  const { batch: B, heads: H, headDim: D } = o;
  const KVH = o.kvHeads ?? H, Dv = o.headDimV ?? D;
  const state = e.createLinearState({ batch: B, heads: H, headDim: D, headDimV: Dv });
  const out = new Float32Array(B * H * n * Dv);
  let t = 0;
  for (const size of sizes) {
    const t1 = t + size;
    const part = e.linearAttention(slice(x.q, B, H, n, D, t, t1), slice(x.k, B, KVH, n, D, t, t1), slice(x.v, B, KVH, n, Dv, t, t1), {
      ...o, seqQ: size, seqK: size, causal: true, state, gates: o.gates && slice(o.gates, B, H, n, 1, t, t1),
    });
    for (let bh = 0; bh < B * H; bh++) out.set(part.subarray(bh * size * Dv, (bh + 1) * size * Dv), (bh * n + t) * Dv);
    t = t1;
  }
  expect(state.length).toBe(n);
  state.dispose();
  return out;
}

const N = 2 * LC + 7;
const gates = (B: number, H: number, n: number, seed: number) => Float32Array.from(random(B * H * n, seed), (x) => -Math.abs(x));
const STREAMS: [string, Stream][] = [
  ['plain', { batch: 1, heads: 2, headDim: 8 }],
  ['GQA 4/2, headDimV 5, decay + gates', {
    batch: 2, heads: 4, kvHeads: 2, headDim: 6, headDimV: 5, decay: Float32Array.of(0.9, 0.99, 1, 0.5), gates: gates(2, 4, N, 3),
  }],
  ['identity, unnormalised, decay', { batch: 1, heads: 2, headDim: 16, featureMap: 'identity', normalize: false, decay: Float32Array.of(0.95, 0.8) }],
];

describe.each(BACKEND_NAMES)('%s linear-attention state', (backend) => {
  test.each(STREAMS)('%s: chunks across the chunk edges equal one call', (_, o) => {
    const e = engines.get(backend)!;
    const whole = { ...o, seqQ: N, seqK: N, causal: true as const };
    const x = inputs(whole, 5);
    const want = e.linearAttention(x.q, x.k, x.v, whole);
    expectClose(want, referenceLinear(x.q, x.k, x.v, whole), 'one call');
    for (const sizes of [[1, LC - 1, LC + 1, 2, N - 2 * LC - 3], [LC, LC, 7], [N]]) {
      expectClose(feed(e, o, N, sizes, x), Float64Array.from(want), `pieces ${sizes}`);
    }
  });

  test.each(STREAMS)('%s: one token at a time (an RNN) equals one call', (_, o) => {
    const e = engines.get(backend)!;
    const n = LC + 3;
    const whole = { ...o, seqQ: n, seqK: n, causal: true as const, gates: o.gates && slice(o.gates, o.batch, o.heads, N, 1, 0, n) };
    const x = inputs(whole, 6);
    const want = e.linearAttention(x.q, x.k, x.v, whole);
    expectClose(feed(e, { ...o, gates: whole.gates }, n, new Array(n).fill(1), x), Float64Array.from(want), 'token by token');
  });

  test('bottom-right: the last query of a prefill, and queries before the first key see the prior state', () => {
    const e = engines.get(backend)!;
    const o = { batch: 1, heads: 2, headDim: 8, decay: Float32Array.of(0.9, 0.7) };
    const whole = { ...o, seqQ: 20, seqK: 20, causal: true as const };
    const x = inputs(whole, 7);
    const want = e.linearAttention(x.q, x.k, x.v, whole);
    const state = e.createLinearState({ batch: 1, heads: 2, headDim: 8 });
    // Keys 0–11 with only the last query (position 11).
    const first = e.linearAttention(slice(x.q, 1, 2, 20, 8, 11, 12), slice(x.k, 1, 2, 20, 8, 0, 12), slice(x.v, 1, 2, 20, 8, 0, 12),
      { ...o, seqQ: 1, seqK: 12, causal: 'bottom-right', state });
    for (const h of [0, 1]) expectClose(first.subarray(h * 8, h * 8 + 8), Float64Array.from(want.subarray((h * 20 + 11) * 8, (h * 20 + 12) * 8)), 'prefill');
    // Keys 12–19 with 9 queries: query 0 sits before the first key (i' = −1) and sees the state after key 11.
    const q = new Float32Array(2 * 9 * 8);
    for (const h of [0, 1]) q.set(x.q.subarray((h * 20 + 11) * 8, (h * 20 + 20) * 8), h * 9 * 8);
    const second = e.linearAttention(q, slice(x.k, 1, 2, 20, 8, 12, 20), slice(x.v, 1, 2, 20, 8, 12, 20),
      { ...o, seqQ: 9, seqK: 8, causal: 'bottom-right', state });
    for (const h of [0, 1]) expectClose(second.subarray(h * 72, h * 72 + 72), Float64Array.from(want.subarray((h * 20 + 11) * 8, (h * 20 + 20) * 8)), 'decode');
    expect(state.length).toBe(20);
    state.dispose();
  });

  test('a top-left call with seqQ < seqK folds every key; reset gives the empty state', () => {
    const e = engines.get(backend)!;
    const o = { batch: 1, heads: 1, headDim: 4, seqQ: 6, seqK: 6, causal: true as const };
    const x = inputs(o, 8);
    const fresh = e.linearAttention(x.q, x.k, x.v, o);
    const state = e.createLinearState({ batch: 1, heads: 1, headDim: 4 });
    e.linearAttention(x.q.subarray(0, 4), x.k, x.v, { ...o, seqQ: 1, state });
    // Query 0 of this call sits before its one key (i' = −1): it reads the state after keys 0–5, as query 5 did.
    const q = new Float32Array(8);
    q.set(x.q.subarray(20, 24));
    const after = e.linearAttention(q, x.k.subarray(0, 4), x.v.subarray(0, 4), { ...o, seqQ: 2, seqK: 1, causal: 'bottom-right', state });
    expectClose(after.subarray(0, 4), Float64Array.from(fresh.subarray(20, 24)), 'state after a top-left call');
    expect(state.length).toBe(7);
    state.reset();
    expect(state.length).toBe(0);
    expect(maxAbsError(e.linearAttention(x.q, x.k, x.v, { ...o, state }), fresh)).toBe(0);
    state.dispose();
  });
});

function expectAttentionError(fn: () => unknown, code: AttentionErrorCode, argument?: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(AttentionError);
  expect((caught as AttentionError).code).toBe(code);
  if (argument !== undefined) expect((caught as AttentionError).argument).toBe(argument);
}

describe.each(BACKEND_NAMES)('%s rejects bad linear-attention options before writing anything', (backend) => {
  const shape = { batch: 1, heads: 2, seqQ: 5, seqK: 5, headDim: 4, causal: true } as const;
  const x = inputs(shape, 20);
  const bad: [string, AttentionErrorCode, string, Record<string, unknown>][] = [
    ['decay 0', 'INVALID_OPTION', 'options.decay', { decay: Float32Array.of(0.5, 0) }],
    ['decay 1.5', 'INVALID_OPTION', 'options.decay', { decay: Float32Array.of(1.5, 1) }],
    ['decay NaN', 'INVALID_OPTION', 'options.decay', { decay: Float32Array.of(NaN, 1) }],
    ['decay −0.5', 'INVALID_OPTION', 'options.decay', { decay: Float32Array.of(1, -0.5) }],
    ['decay of length 3', 'SHAPE_MISMATCH', 'options.decay', { decay: new Float32Array(3).fill(1) }],
    ['decay a Float64Array', 'INVALID_TYPE', 'options.decay', { decay: new Float64Array(2).fill(1) }],
    ['a positive gate', 'INVALID_OPTION', 'options.gates', { gates: new Float32Array(10).fill(-1).fill(1e-9, 4, 5) }],
    ['a NaN gate', 'INVALID_OPTION', 'options.gates', { gates: new Float32Array(10).fill(NaN, 9) }],
    ['a −Infinity gate', 'INVALID_OPTION', 'options.gates', { gates: new Float32Array(10).fill(-Infinity, 0, 1) }],
    ['gates of length 5', 'SHAPE_MISMATCH', 'options.gates', { gates: new Float32Array(5) }],
    ['decay without causal', 'INVALID_OPTION', 'options.decay', { causal: false, decay: Float32Array.of(1, 1) }],
    ['gates without causal', 'INVALID_OPTION', 'options.gates', { causal: undefined, gates: new Float32Array(10) }],
    ['featureMap relu', 'INVALID_OPTION', 'options.featureMap', { featureMap: 'relu' }],
    ['normalize 1', 'INVALID_OPTION', 'options.normalize', { normalize: 1 }],
    ['epsilon with normalize: false', 'INVALID_OPTION', 'options.epsilon', { normalize: false, epsilon: 0.1 }],
    ['a state that is not one', 'INVALID_TYPE', 'options.state', { state: {} }],
  ];
  test.each(bad)('%s → %s', (_, code, argument, extra) => {
    const e = engines.get(backend)!;
    const out = new Float32Array(2 * 5 * 4).fill(7);
    expectAttentionError(() => e.linearAttention(x.q, x.k, x.v, { ...shape, out, ...extra } as never), code, argument);
    expect(out.every((y) => y === 7)).toBe(true);
  });

  test('a state of another shape, engine or backend, or disposed; a state with a non-causal call', async () => {
    const e = engines.get(backend)!;
    const state = e.createLinearState({ batch: 1, heads: 2, headDim: 4 });
    const want = e.linearAttention(x.q, x.k, x.v, { ...shape, state });
    state.reset();
    const other = await createAttention({ backend });
    const foreign = [other.createLinearState({ batch: 1, heads: 2, headDim: 4 })];
    for (const b of BACKEND_NAMES) if (b !== backend) foreign.push(engines.get(b)!.createLinearState({ batch: 1, heads: 2, headDim: 4 }));
    const out = new Float32Array(2 * 5 * 4).fill(7);
    const call = (s: LinearState, extra = {}) => () => e.linearAttention(x.q, x.k, x.v, { ...shape, out, state: s, ...extra });
    for (const wrong of [{ batch: 2, heads: 2, headDim: 4 }, { batch: 1, heads: 1, headDim: 4 }, { batch: 1, heads: 2, headDim: 3 },
      { batch: 1, heads: 2, headDim: 4, headDimV: 5 }]) {
      expectAttentionError(call(e.createLinearState(wrong)), 'SHAPE_MISMATCH', 'options.state');
    }
    for (const f of foreign) expectAttentionError(call(f), 'INVALID_OPTION', 'options.state');
    expectAttentionError(call(state, { causal: false }), 'INVALID_OPTION', 'options.state');
    expectAttentionError(() => linearAttentionJs(x.q, x.k, x.v, { ...shape, state }), 'INVALID_OPTION', 'options.state');
    expect(out.every((y) => y === 7)).toBe(true);
    // Nothing was folded into the state by the rejected calls.
    expect(state.length).toBe(0);
    expect(maxAbsError(e.linearAttention(x.q, x.k, x.v, { ...shape, state }), want)).toBe(0);
    state.dispose();
    state.dispose();
    expectAttentionError(call(state), 'DISPOSED', 'options.state');
    expectAttentionError(() => state.reset(), 'DISPOSED');
    const held = other.createLinearState({ batch: 1, heads: 2, headDim: 4 });
    other.dispose();
    expectAttentionError(() => held.reset(), 'DISPOSED');
    expectAttentionError(() => other.createLinearState({ batch: 1, heads: 2, headDim: 4 }), 'DISPOSED');
  });

  test('createLinearState validates its options', () => {
    const e = engines.get(backend)!;
    expectAttentionError(() => e.createLinearState({ batch: 0, heads: 2, headDim: 4 }), 'INVALID_DIMENSION', 'options.batch');
    expectAttentionError(() => e.createLinearState({ batch: 1, heads: 2, headDim: 4, seqK: 3 } as never), 'INVALID_OPTION', 'options.seqK');
    expectAttentionError(() => e.createLinearState(null as never), 'INVALID_TYPE', 'options');
  });

  test('states created and disposed by the thousand hold no memory', () => {
    const e = engines.get(backend)!;
    e.createLinearState({ batch: 2, heads: 8, headDim: 64 }).dispose();
    const bytes = e.memoryBytes;
    for (let i = 0; i < 2000; i++) e.createLinearState({ batch: 2, heads: 8, headDim: 64 }).dispose();
    expect(e.memoryBytes).toBe(bytes);
  });
});
