// engine.alloc(): tensors in engine memory used in place, view invalidation on growth, misuse throws.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createAttention } from '../src/index.js';
import type { AttentionEngine, BackendName } from '../src/index.js';
import { BACKEND_NAMES, allEngines, expectClose, maxAbsError, random } from './helpers.js';
import { referenceAttention } from './runtimes/reference.mjs';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

const o = { batch: 1, heads: 2, seqQ: 9, seqK: 13, headDim: 8 };
const q = random(2 * 9 * 8, 1), k = random(2 * 13 * 8, 2), v = random(2 * 13 * 8, 3);
const want = referenceAttention(q, k, v, o);

describe.each(BACKEND_NAMES)('%s tensors', (backend) => {
  test('alloc gives zeroed tensors usable as q, k, v and out; repeated calls reuse them', () => {
    const e = engines.get(backend)!;
    const [tq, tk, tv, tout] = [q.length, k.length, v.length, 2 * 9 * 8].map((n) => e.alloc(n));
    expect(tq!.array.every((x) => x === 0)).toBe(true);
    tq!.array.set(q);
    tk!.array.set(k);
    tv!.array.set(v);
    for (let i = 0; i < 3; i++) {
      const out = e.attention(tq!, tk!, tv!, { ...o, out: tout! });
      expectClose(out, want, 'tensors in place');
      expectClose(tout!.array, want, 'out tensor');
    }
    // The arrays themselves (views of live tensors) are accepted as well.
    expectClose(e.attention(tq!.array, tk!.array, tv!.array, { ...o, out: tout!.array }), want, 'views in place');
    // out aliasing an input tensor still gives the right answer.
    const alias = e.alloc(q.length);
    alias.array.set(q);
    expectClose(e.attention(alias, tk!, tv!, { ...o, out: alias }), want, 'out = q tensor');
    expect(maxAbsError(e.linearAttention(tq!, tk!, tv!, o), e.linearAttention(q, k, v, o))).toBe(0);
    for (const t of [tq, tk, tv, tout, alias]) t!.free();
  });

  test('freed tensors throw DISPOSED, never read stale memory; free is idempotent', () => {
    const e = engines.get(backend)!;
    const t = e.alloc(q.length);
    t.array.set(q);
    t.free();
    t.free();
    expect(t.freed).toBe(true);
    expect(() => t.array).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
    expect(() => e.attention(t, k, v, o)).toThrow(expect.objectContaining({ code: 'DISPOSED', argument: 'q' }));
    expect(() => e.alloc(0)).toThrow(expect.objectContaining({ code: 'INVALID_DIMENSION' }));
    expect(() => e.alloc(1.5)).toThrow(expect.objectContaining({ code: 'INVALID_DIMENSION' }));
  });

  test('a tensor of another engine is accepted by copy', async () => {
    const other = await createAttention({ backend });
    const t = other.alloc(q.length);
    t.array.set(q);
    expectClose(engines.get(backend)!.attention(t, k, v, o), want, 'foreign tensor');
    other.dispose();
    expect(t.freed).toBe(true);
    expect(() => engines.get(backend)!.attention(t, k, v, o)).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
  });
});

describe.each(['wasm-relaxed-simd', 'wasm-simd'] as const)('%s tensor views', (backend) => {
  test('growth detaches old views: using one throws SHAPE_MISMATCH naming it, re-reading .array works', async () => {
    const e = await createAttention({ backend });
    const t = e.alloc(q.length);
    t.array.set(q);
    const stale = t.array;
    const big = { batch: 1, heads: 4, seqQ: 256, seqK: 256, headDim: 64 };
    e.attention(random(4 * 256 * 64, 5), random(4 * 256 * 64, 6), random(4 * 256 * 64, 7), big); // grows memory
    expect(stale.length).toBe(0);
    expect(() => e.attention(stale, k, v, o)).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH', message: expect.stringContaining('detached') }));
    expect(Array.from(t.array)).toEqual(Array.from(q));
    expectClose(e.attention(t, k, v, o), want, 'after growth');
  });

  test('RoPE rotates a copy of in-place q and k read by offset, also when the call grows memory', async () => {
    const ref = engines.get(backend)!;
    const [L, S, D] = [8, 40000, 8]; // seqK large enough that the call grows memory
    const qv = random(L * D, 30), kv = random(S * D, 31), vv = random(S * D, 32);
    const r = { batch: 1, heads: 1, seqQ: L, seqK: S, headDim: D, rope: { dims: 8, positionQ: S - L } };
    const want = ref.attention(qv, kv, vv, r);
    for (const as of ['tensor', 'view'] as const) {
      const e = await createAttention({ backend });
      try {
        // q as a tensor of its own, or as a sub-view 16 bytes into a larger one; k as a tensor or its array
        const tq = e.alloc(as === 'tensor' ? L * D : L * D + 4), tk = e.alloc(S * D);
        const at = as === 'tensor' ? 0 : 4;
        tq.array.set(qv, at);
        tk.array.set(kv);
        const before = e.memoryBytes;
        const got = as === 'tensor' ? e.attention(tq, tk, vv, r) : e.attention(tq.array.subarray(at), tk.array, vv, r);
        expect(e.memoryBytes, 'the call grew memory').toBeGreaterThan(before);
        expect(got, as).toEqual(want);
        expect(Array.from(tq.array.subarray(at)), 'q itself is not rotated').toEqual(Array.from(qv));
        expect(Array.from(tk.array), 'k itself is not rotated').toEqual(Array.from(kv));
      } finally {
        e.dispose();
      }
    }
    // A KV-cache append with RoPE of keys in place, while the append grows memory.
    const n = 4000, kn = kv.subarray(0, n * D), vn = vv.subarray(0, n * D), q1 = qv.subarray(0, D);
    const cacheOptions = { batch: 1, kvHeads: 1, headDim: D, capacity: n, rope: { dims: 8 } };
    const wantCache = ref.createKVCache(cacheOptions);
    wantCache.append(kn, vn);
    const e = await createAttention({ backend });
    try {
      const cache = e.createKVCache(cacheOptions);
      const t = e.alloc(n * D);
      t.array.set(kn);
      const before = e.memoryBytes;
      cache.append(t.array.subarray(0), vn);
      expect(e.memoryBytes, 'the append grew memory').toBeGreaterThan(before);
      expect(cache.attend(q1, { heads: 1, seqQ: 1 })).toEqual(wantCache.attend(q1, { heads: 1, seqQ: 1 }));
    } finally {
      e.dispose();
      wantCache.dispose();
    }
  });

  test('alloc/free cycles reuse space instead of growing', async () => {
    const e = await createAttention({ backend });
    const a = e.alloc(100_000);
    const b = e.alloc(100_000);
    e.attention(q, k, v, o);
    const settled = e.memoryBytes;
    a.free();
    b.free();
    for (let i = 0; i < 1000; i++) {
      const c = e.alloc(150_000);
      const x = e.alloc(20_000);
      c.free();
      const y = e.alloc(100_000);
      x.free();
      y.free();
    }
    e.attention(q, k, v, o);
    expect(e.memoryBytes).toBe(settled);
  });
});
