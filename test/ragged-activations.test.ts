// A ragged row gets what a call over its own keys gets, for every activation: keyLengths in attention, and the rows
// of a KV cache attend (whose seqK is the longest row read). Sigmoid's default bias −ln n, relu's 1/n and
// polynomial's 1/√n take n = that row's key count, not the padded seqK (a probe found a row's output changing with
// the lengths of the other rows in its call). On every backend and on two threads.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ACTIVATIONS } from '../src/index.js';
import type { Activation, AttentionEngine, AttentionOptions } from '../src/index.js';
import { createAttention } from '../dist/index.js'; // worker threads load the built worker script
import { BACKEND_NAMES, allEngines, random } from './helpers.js';

let engines: Map<string, AttentionEngine>;
beforeAll(async () => {
  engines = new Map(await allEngines());
  engines.set('wasm-relaxed-simd, threads: 2', (await createAttention({ backend: 'wasm-relaxed-simd', threads: 2 })) as AttentionEngine);
});
afterAll(() => engines.forEach((e) => e.dispose()));

const VARIANTS: { activation: Activation; extra?: Partial<AttentionOptions> }[] = [
  ...ACTIVATIONS.map((activation) => ({ activation })),
  { activation: 'sigmoid', extra: { bias: 0.7 } },
  { activation: 'polynomial', extra: { power: 2 } },
];
const H = 2, L = 64, D = 16, S = 300; // 2·B·H·L·S·2D ≈ 10 MFLOP: above the 2 MFLOP a call needs to be shared among threads
const LENGTHS = [5, S, 0, 129]; // a short row, a full one, an empty one, one past a key block (BC = 128)

/** Max |a − b| ÷ max(1, max |b|). */
function relErr(a: Float32Array, b: Float32Array): number {
  let err = 0, scale = 1;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return err / scale;
}

describe.each([...BACKEND_NAMES, 'wasm-relaxed-simd, threads: 2'])('%s', (name) => {
  for (const { activation, extra } of VARIANTS) {
    const label = `${activation}${extra ? ' ' + JSON.stringify(extra) : ''}`;
    for (const causal of [false, 'bottom-right'] as const) {
      test(`${label}${causal ? ', causal bottom-right' : ''}: keyLengths rows equal calls over their own keys`, () => {
        const e = engines.get(name)!;
        const B = LENGTHS.length;
        const q = random(B * H * L * D, 11), k = random(B * H * S * D, 12), v = random(B * H * S * D, 13);
        const o = { batch: B, heads: H, seqQ: L, seqK: S, headDim: D, activation, ...extra, ...(causal ? { causal } : {}) };
        const got = e.attention(q, k, v, { ...o, keyLengths: LENGTHS });
        LENGTHS.forEach((n, b) => {
          const row = got.subarray(b * H * L * D, (b + 1) * H * L * D);
          if (n === 0) return expect(row.every((x) => x === 0)).toBe(true);
          // Row b alone: its q, and its first n keys and values of each head.
          const kb = new Float32Array(H * n * D), vb = new Float32Array(H * n * D);
          for (let h = 0; h < H; h++) {
            const from = (b * H + h) * S * D;
            kb.set(k.subarray(from, from + n * D), h * n * D);
            vb.set(v.subarray(from, from + n * D), h * n * D);
          }
          const alone = e.attention(q.subarray(b * H * L * D, (b + 1) * H * L * D), kb, vb, { ...o, batch: 1, seqK: n });
          expect(relErr(row, alone), `row ${b} (${n} keys)`).toBeLessThanOrEqual(1e-6);
        });
      });
    }

    test(`${label}: a cache row attended with a longer row equals the row attended alone`, () => {
      const e = engines.get(name)!;
      const cache = e.createKVCache({ batch: 2, kvHeads: H, headDim: D, capacity: 64 });
      try {
        cache.append(random(H * 5 * D, 21), random(H * 5 * D, 22), { rows: [0] });
        cache.append(random(H * 40 * D, 23), random(H * 40 * D, 24), { rows: [1] });
        const q = random(2 * H * D, 25);
        const o = { heads: H, seqQ: 1, causal: 'bottom-right' as const, activation, ...extra };
        const both = cache.attend(q, { ...o, rows: [0, 1] });
        const first = cache.attend(q.subarray(0, H * D), { ...o, rows: [0] });
        const second = cache.attend(q.subarray(H * D), { ...o, rows: [1] });
        expect(relErr(both.subarray(0, H * D), first)).toBeLessThanOrEqual(1e-6);
        expect(relErr(both.subarray(H * D), second)).toBeLessThanOrEqual(1e-6);
      } finally {
        cache.dispose();
      }
    });
  }
});
