// NaN and ±Infinity in q, k, v and masks (README "NaN and Infinity"): every backend gives the same result —
// the same NaN / ±Infinity pattern element by element, and the same finite values — for every activation, and
// softmax follows the documented rules exactly.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ACTIVATIONS, BACKENDS } from '../src/index.js';
import type { Activation, AttentionEngine, AttentionOptions, BackendName } from '../src/index.js';
import { allEngines, expectClose, random } from './helpers.js';
import { referenceAttention } from './runtimes/reference.mjs';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

const KEY_BLOCK = Math.max(...BACKENDS.map((b) => b.blocks.keys)); // the wasm kernels' key block
const B = 1, H = 2, L = 5, S = KEY_BLOCK + 12, D = 8; // S crosses the key block
const ROW = 2; // the query row that gets the special value
const KEYS = [1, KEY_BLOCK + 5]; // a key in the first block and one in the second
const MIDDLE = KEY_BLOCK / 2 + 2; // a key in the middle of the first block
const activations: readonly Activation[] = Array.isArray(ACTIVATIONS) && ACTIVATIONS.length > 0 ? ACTIVATIONS : ['softmax'];

interface Case {
  q: Float32Array; k: Float32Array; v: Float32Array; options: AttentionOptions;
}

function base(causal: AttentionOptions['causal'], activation: Activation): Case {
  return {
    q: random(B * H * L * D, 11), k: random(B * H * S * D, 12), v: random(B * H * S * D, 13),
    options: { batch: B, heads: H, seqQ: L, seqK: S, headDim: D, causal, activation },
  };
}

/** 'nan' | '+inf' | '-inf' | 'fin' for each element. */
function pattern(a: Float32Array): string[] {
  return Array.from(a, (x) => (Number.isNaN(x) ? 'nan' : x === Infinity ? '+inf' : x === -Infinity ? '-inf' : 'fin'));
}

/** Runs the case on every backend; asserts identical special-value patterns and agreeing finite values. */
function runAll(c: Case, label: string): Float32Array {
  const outs = [...engines].map(([name, engine]) => ({ name, out: engine.attention(c.q, c.k, c.v, c.options) }));
  const first = outs[0]!;
  const want = pattern(first.out);
  for (const { name, out } of outs.slice(1)) {
    const got = pattern(out);
    const diff = got.findIndex((p, i) => p !== want[i]);
    expect(diff, `${label}: ${name} element ${diff} is ${got[diff]} (${out[diff]}), ${first.name} gives ${want[diff]} (${first.out[diff]})`).toBe(-1);
    let err = 0;
    for (let i = 0; i < out.length; i++) if (want[i] === 'fin') err = Math.max(err, Math.abs(out[i]! - first.out[i]!));
    expect(err, `${label}: ${name} vs ${first.name} on the finite elements`).toBeLessThanOrEqual(1e-4);
  }
  return first.out;
}

const rowsOf = (out: Float32Array) => Array.from({ length: B * H * L }, (_, r) => Array.from(out.subarray(r * D, (r + 1) * D)));
const isNaNRow = (row: number[]) => row.every(Number.isNaN);
const isFiniteRow = (row: number[]) => row.every(Number.isFinite);

const SPECIALS = [NaN, Infinity, -Infinity];

describe.each(activations)('activation %s', (activation) => {
  for (const causal of [false, true] as const) {
    for (const value of SPECIALS) {
      test(`${value} in q (row ${ROW}), causal ${causal}`, () => {
        const c = base(causal, activation);
        c.q[ROW * D + 3] = value;
        const out = runAll(c, `${activation} q=${value}`);
        if (activation === 'softmax') {
          const rows = rowsOf(out);
          // Only that row is affected; it is NaN for NaN, and for ±Infinity too (its scores are ±∞ of both signs: ∞ − ∞).
          rows.forEach((row, r) => expect(r === ROW ? isNaNRow(row) : isFiniteRow(row), `row ${r}`).toBe(true));
        }
      });

      test(`${value} in k (keys ${KEYS}), causal ${causal}`, () => {
        const c = base(causal, activation);
        for (const j of KEYS) c.k[j * D + 5] = value; // kv head 0
        const out = runAll(c, `${activation} k=${value}`);
        if (activation === 'softmax' && Number.isNaN(value)) {
          // NaN in a key row reaches exactly the head-0 rows that admit it (with causal: rows i ≥ 1 admit key 1).
          rowsOf(out).forEach((row, r) => {
            const head = Math.floor(r / L), i = r % L;
            const admits = head === 0 && (!causal || KEYS.some((j) => j <= i));
            expect(admits ? isNaNRow(row) : isFiniteRow(row), `row ${r}`).toBe(true);
          });
        }
      });

      test(`${value} in v at admissible keys, causal ${causal}`, () => {
        const c = base(causal, activation);
        // Key 0 is admissible for every row in every causal mode; key MIDDLE only without causal.
        c.v[0 * D + 2] = value;
        if (!causal) c.v[MIDDLE * D + 6] = value;
        const out = runAll(c, `${activation} v=${value}`);
        if (activation === 'softmax') {
          rowsOf(out).forEach((row, r) => {
            const head = Math.floor(r / L);
            row.forEach((x, col) => {
              const hit = head === 0 && (col === 2 || (!causal && col === 6));
              if (!hit) expect(Number.isFinite(x), `row ${r} col ${col}`).toBe(true);
              else if (Number.isNaN(value)) expect(x, `row ${r} col ${col}`).toBeNaN();
              else expect(x, `row ${r} col ${col}`).toBe(value); // a positive weight times ±∞
            });
          });
        }
      });

      test(`${value} in a float mask, causal ${causal}`, () => {
        const c = base(causal, activation);
        const mask = random(L * S, 14);
        mask[ROW * S + 0] = value;
        mask[ROW * S + MIDDLE] = value;
        c.options.mask = mask;
        const out = runAll(c, `${activation} mask=${value}`);
        if (activation === 'softmax') {
          const rows = rowsOf(out);
          // +∞ or NaN added to an admissible score: NaN rows (∞ − ∞ in softmax). −∞ excludes the key.
          rows.forEach((row, r) => {
            const i = r % L;
            expect(i === ROW && value !== -Infinity ? isNaNRow(row) : isFiniteRow(row), `row ${r}`).toBe(true);
          });
          if (value === -Infinity) expectClose(out, referenceAttention(c.q, c.k, c.v, c.options), 'a -Infinity mask excludes the key');
        }
      });
    }

    test(`a row with NaN in q but no admissible key outputs zeros, causal ${causal}`, () => {
      const c = base(causal, activation);
      c.q[ROW * D] = NaN;
      c.options.mask = Uint8Array.from({ length: L * S }, (_, idx) => (Math.floor(idx / S) === ROW ? 0 : 1));
      const out = runAll(c, `${activation} NaN q, masked row`);
      rowsOf(out).forEach((row, r) => {
        if (r % L === ROW) expect(row.every((x) => x === 0), `row ${r}`).toBe(true);
        else expect(isFiniteRow(row), `row ${r}`).toBe(true);
      });
    });

    test(`NaN in k or v at keys a row does not admit does not reach that row's scores, causal ${causal}`, () => {
      // A bool mask excludes the KEYS for every row; NaN in their k rows must not matter.
      const c = base(causal, activation);
      for (const j of KEYS) c.k[j * D + 4] = NaN;
      c.options.mask = Uint8Array.from({ length: L * S }, (_, idx) => (KEYS.includes(idx % S) ? 0 : 1));
      const out = runAll(c, `${activation} NaN k at excluded keys`);
      expect(out.every(Number.isFinite)).toBe(true);
      const clean = base(causal, activation);
      clean.options.mask = c.options.mask;
      expectClose(out, referenceAttention(clean.q, clean.k, clean.v, clean.options), 'NaN keys excluded by the mask');
    });
  }
});

// Cases where the backends once disagreed: a −∞ score from the inputs (not a mask) is an excluded key for every
// activation, and a score overflowing float32 is ±∞ in every backend (the JS backend rounds scores to float32).
// One row, one head, scale 1, v = [1, 2].
describe('former divergences between backends', () => {
  const one = { batch: 1, heads: 1, seqQ: 1, seqK: 2, headDim: 1, scale: 1 };
  const v = Float32Array.of(1, 2);
  const cases: [string, number[], number[], AttentionOptions][] = [
    // (Each name: what the backends gave before they were made to agree.)
    // The JS backend treats a −Infinity *score* as an excluded key for every activation (wasm: only softmax).
    ['squared, k = [−∞, 1]: wasm NaN, js 2', [1], [-Infinity, 1], { ...one, activation: 'squared' }],
    ['polynomial, k = [−∞, 1]: wasm −∞, js √2', [1], [-Infinity, 1], { ...one, activation: 'polynomial' }],
    ['polynomial, q = [+∞], k = [1, −1]: wasm NaN, js +∞', [Infinity], [1, -1], { ...one, activation: 'polynomial' }],
    // q·k = 1e40 overflows float32 in the wasm kernels (score +∞ → NaN row, as the README says); the JS backend
    // accumulates in float64 and returns the finite answer.
    ['softmax, q·k = 1e40: wasm NaN, js 1', [1e20], [1e20, 1], { ...one }],
    ['softmax1, q·k = 1e40: wasm NaN, js 1', [1e20], [1e20, 1], { ...one, activation: 'softmax1' }],
    ['squared, q·k = 1e40: wasm NaN, js 1', [1e20], [1e20, 1], { ...one, activation: 'squared' }],
    // Scores are float32(float32(q·k)·scale) everywhere (src/js/attention.ts scoreOf): q·k rounds up to the
    // float32 that makes the score ∞ (js rounded q·k·scale once: 3.4028235e38, finite)…
    ['softmax, scale 3.007e38 at the overflow edge: js 5, wasm NaN', [1.0000078678131104], [1.1315377950668335, 1], { ...one, scale: 3.00723210429013e38 }],
    ['softmax, scale −3.007e38 at the overflow edge: js 5, wasm 0', [1.0000078678131104], [1.1315377950668335, 1], { ...one, scale: -3.00723210429013e38 }],
    // …and a subnormal scale rounds the float32 q·k = 2.5 to 2·2^−149 (js: 2.50000006 → 3·2^−149).
    ['squared, scale 1e-45: js 0.9, wasm 0.8', [1.0000234842300415], [2.499941349029541, 0.9999765157699585], { ...one, scale: 1e-45, activation: 'squared', epsilon: 0 }],
  ];
  for (const [name, q, k, options] of cases) {
    if (options.activation !== undefined && !activations.includes(options.activation)) continue;
    test(name, () => {
      runAll({ q: Float32Array.from(q), k: Float32Array.from(k), v, options }, name);
    });
  }
});

describe('a −∞ float-mask entry excludes its key whatever q·k is', () => {
  // Keys with NaN or ±∞ in k, masked −∞: in a partly masked key block, and in a block masked entirely (which the
  // wasm kernels skip). Excluded in both, so every row is finite and equals the reference without those keys.
  for (const activation of activations) {
    test(activation, () => {
      const c = base(false, activation);
      const mask = new Float32Array(L * S);
      const bad = [...KEYS, MIDDLE];
      bad.forEach((j, n) => {
        for (let d = 0; d < D; d++) c.k[j * D + d] = [NaN, Infinity, -Infinity][n]!; // head 0's keys
        for (let i = 0; i < L; i++) mask[i * S + j] = -Infinity;
      });
      for (let i = 0; i < L; i++) mask.fill(-Infinity, i * S + KEY_BLOCK, (i + 1) * S); // the second block, entirely
      c.options = { ...c.options, mask, maskShape: [L, S] };
      const out = runAll(c, `${activation} −∞ mask over NaN/±∞ keys`);
      expect(out.every(Number.isFinite), 'every row finite').toBe(true);
      expectClose(out, referenceAttention(c.q, c.k, c.v, c.options) as Float64Array, activation);
    });
  }
});
