// Ragged batches (continuous batching, issue 11): each cache row has its own length; appends go to some rows only;
// attend reads any rows in any order (FlashAttention's cache_batch_idx) aligned bottom-right to each row's own
// length (its cache_seqlens); reset(row) forgets one row. Checked against one-shot attention per row (the engine's
// own, and float64 on the stored and on the given values), in every backend and dtype, with RoPE and 'bshd'.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BACKENDS } from '../src/index.js';
import type { AttentionEngine, BackendName, KVAttendOptions } from '../src/index.js';
import { allEngines, random } from './helpers.js';
import { DTYPES, expectBound, expectStored } from './kvcache-helpers.js';
import { referenceAttention } from './runtimes/cases.mjs';
import type { RefOptions } from './runtimes/cases.mjs';
import { storedAs } from './runtimes/quantize.mjs';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

const [H, KVH, D, CAP] = [4, 2, 16, 200];

/** A conversation per cache row: its keys and values so far, [1, KVH, len, D] (or [1, len, KVH, D]). */
class Row {
  k: number[][] = [];
  v: number[][] = [];
  constructor(readonly seed: number) {}
  /** n new tokens as [1, KVH, n, D] tensors (or bshd), remembered per token. */
  next(n: number, bshd: boolean): { k: Float32Array; v: Float32Array } {
    const k = random(KVH * n * D, this.seed + this.k.length * 7 + 1, 1.5), v = random(KVH * n * D, this.seed + this.k.length * 7 + 2);
    for (let t = 0; t < n; t++) {
      const at = (h: number) => (bshd ? (t * KVH + h) * D : (h * n + t) * D);
      this.k.push(Array.from({ length: KVH }, (_, h) => Array.from(k.subarray(at(h), at(h) + D))).flat());
      this.v.push(Array.from({ length: KVH }, (_, h) => Array.from(v.subarray(at(h), at(h) + D))).flat());
    }
    return { k, v };
  }
  /** Every token so far as [1, KVH, len, D] (or bshd). */
  all(which: 'k' | 'v', bshd: boolean): Float32Array {
    const rows = this[which];
    const flat = Float32Array.from(rows.flat()); // [len, KVH, D]
    return bshd ? flat : transpose(flat, rows.length);
  }
}

/** [len, KVH, D] → [KVH, len, D]. */
function transpose(x: Float32Array, len: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let t = 0; t < len; t++) for (let h = 0; h < KVH; h++) out.set(x.subarray((t * KVH + h) * D, (t * KVH + h + 1) * D), (h * len + t) * D);
  return out;
}

/** Concatenates per-entry tensors into one batch tensor. */
const concat = (parts: Float32Array[]) => {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
};

describe.each(BACKENDS.map((b) => b.name))('%s', (backend) => {
  test.each(DTYPES.flatMap((dtype) => [false, true].flatMap((bshd) => [false, true].map((rope) => ({ dtype, bshd, rope })))))(
    '$dtype bshd $bshd rope $rope: appends to some rows, attend over rows in any order, reset one row',
    ({ dtype, bshd, rope }) => {
      const e = engines.get(backend)!;
      const layout = bshd ? 'bshd' as const : 'bhsd' as const;
      const ropeOptions = { dims: 8, positionK: 3, positionQ: 3 };
      const cache = e.createKVCache({ batch: 3, kvHeads: KVH, headDim: D, capacity: CAP, dtype, layout, ...(rope ? { rope: ropeOptions } : {}) });
      const rows = [new Row(100), new Row(200), new Row(300)];

      const append = (which: number[], n: number) => {
        const parts = which.map((r) => rows[r]!.next(n, bshd));
        cache.append(concat(parts.map((p) => p.k)), concat(parts.map((p) => p.v)), { rows: which });
      };
      const attend = (which: number[], seqQ: number, label: string) => {
        const q = random(which.length * H * seqQ * D, seqQ * 31 + which.length, 1.5);
        const options = { heads: H, seqQ, causal: 'bottom-right', layout, rows: which } as KVAttendOptions;
        const got = cache.attend(q, options);
        expect(Array.from(cache.lengths)).toEqual(rows.map((r) => r.k.length));
        which.forEach((r, i) => {
          const len = rows[r]!.k.length;
          const per = H * seqQ * D;
          const qi = q.subarray(i * per, (i + 1) * per);
          const out = got.subarray(i * H * seqQ * D, (i + 1) * H * seqQ * D);
          const what = `${label}: entry ${i} = row ${r} (length ${len})`;
          if (len === 0) return expect(Array.from(out).every((x) => x === 0), `${what}: zeros`).toBe(true);
          const k = rows[r]!.all('k', bshd), v = rows[r]!.all('v', bshd);
          const o = { batch: 1, heads: H, kvHeads: KVH, seqQ, seqK: len, headDim: D, causal: 'bottom-right', layout,
            ...(rope ? { rope: { ...ropeOptions, positionQ: ropeOptions.positionQ + len - seqQ } } : {}) } as RefOptions;
          expectBound(out, referenceAttention(qi, k, v, o), dtype, what);
          if (rope) return;
          expectStored(out, referenceAttention(qi, Float32Array.from(storedAs(k, dtype, D)), Float32Array.from(storedAs(v, dtype, D)), o), dtype, what);
          if (dtype === 'float32') expect(out).toEqual(e.attention(qi, k, v, o as never)); // one-shot, same engine
        });
      };
      append([0], 50);
      append([2], 120);
      append([1], 7);
      attend([0, 1, 2], 1, 'three lengths');
      append([0, 2], 1);
      attend([2, 0], 1, 'subset, reordered');
      attend([1, 1], 1, 'one row twice');
      append([1], 3);
      attend([1, 2], 3, 'a 3-token chunk');
      cache.reset(1);
      rows[1] = new Row(400);
      attend([0, 1], 1, 'row 1 reset: zeros');
      append([1], 9);
      attend([1, 0, 2], 2, 'row 1 refilled');
    },
  );

  test('errors: capacity per row, rows out of range or repeated in an append, a row with no token among others', () => {
    const e = engines.get(backend)!;
    const cache = e.createKVCache({ batch: 2, kvHeads: 1, headDim: 4, capacity: 5 });
    cache.append(random(4 * 4, 1), random(4 * 4, 2), { rows: [1] });
    expect(() => cache.append(random(2 * 4, 1), random(2 * 4, 2), { rows: [1] })).toThrow(expect.objectContaining({ code: 'CAPACITY_EXCEEDED', argument: 'k' }));
    expect(() => cache.append(random(2 * 4, 1), random(2 * 4, 2), { rows: [0, 0] })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', argument: 'options.rows' }));
    expect(() => cache.append(random(4, 1), random(4, 2), { rows: [2] })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', argument: 'options.rows' }));
    expect(() => cache.append(random(4, 1), random(4, 2), { rows: [] })).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH', argument: 'options.rows' }));
    expect(() => cache.append(random(4, 1), random(4, 2), { rows: 1 as never })).toThrow(expect.objectContaining({ code: 'INVALID_TYPE', argument: 'options.rows' }));
    expect(Array.from(cache.attend(random(4, 3), { heads: 1, seqQ: 1, rows: [0] }))).toEqual([0, 0, 0, 0]); // row 0 holds no token
    expect(() => cache.attend(random(4, 3), { heads: 1, seqQ: 1, rows: [1.5] })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', argument: 'options.rows' }));
    expect(() => cache.attend(random(4, 3), { heads: 1, seqQ: 1 })).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH', argument: 'q' })); // 2 rows need 2 queries
    expect(Array.from(cache.lengths)).toEqual([0, 4]);
    const out = cache.attend(random(8, 3), { heads: 1, seqQ: 1, rows: [0, 1] });
    expect(Array.from(out.subarray(0, 4))).toEqual([0, 0, 0, 0]);
  });
});
