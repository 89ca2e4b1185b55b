// Regression tests for defects a hostile-user probe of the landed package found (each failed before its fix):
// an append whose option getter disposes its cache, option arrays whose methods, iterators or Proxy traps
// disagree with what was validated, RoPE turning finite keys of a float16/int8 cache beyond float32, an attend of
// rows that hold no token, backend names that are no backend's; then, from a second probe: options objects of another
// realm, detached per-head options, option arrays that view freed engine memory, another realm's DataView as rows.
import vm from 'node:vm';
import { describe, expect, test } from 'vitest';
import { AttentionError, BACKENDS, createAttention, isBackendSupported } from '../dist/index.js';
import type { AttentionOptions, BackendName, KVCacheDtype } from '../dist/index.js';
import { expectClose, random, thrown } from './helpers.js';
import { referenceAttention } from './runtimes/reference.mjs';

const NAMES = BACKENDS.map((b) => b.name) as BackendName[];

describe.each(NAMES)('%s', (backend) => {
  test('an append whose options getter disposes the cache ends with DISPOSED and writes nothing', async () => {
    const e = await createAttention({ backend });
    try {
      const D = 8;
      const a = e.createKVCache({ batch: 1, kvHeads: 1, headDim: D, capacity: 16 });
      let b: ReturnType<typeof e.createKVCache> | null = null;
      const error = thrown(() => a.append(new Float32Array(D).fill(7), new Float32Array(D).fill(9), {
        get rows() {
          a.dispose();
          // a new cache in the memory a gave back: a's append must not land in it
          b = e.createKVCache({ batch: 1, kvHeads: 1, headDim: D, capacity: 16 });
          b.append(new Float32Array(D), new Float32Array(D).fill(1));
          return [0];
        },
      }));
      expect(error).toMatchObject({ name: 'AttentionError', code: 'DISPOSED' });
      expect(Array.from(b!.lengths)).toEqual([1]);
      expect(Array.from(b!.attend(new Float32Array(D).fill(1), { heads: 1, seqQ: 1 }))).toEqual(new Array(D).fill(1));
      // and an append whose getter disposes the engine
      const c = e.createKVCache({ batch: 1, kvHeads: 1, headDim: D, capacity: 16 });
      const gone = thrown(() => c.append(new Float32Array(D), new Float32Array(D), { get rows() { e.dispose(); return [0]; } }));
      expect(gone).toMatchObject({ code: 'DISPOSED' });
    } finally {
      e.dispose();
    }
  });

  test('option arrays are read once: overridden map or iterator and Proxy length traps cannot change what is used', async () => {
    const e = await createAttention({ backend });
    try {
      const o: AttentionOptions = { batch: 1, heads: 2, seqQ: 3, seqK: 4, headDim: 8 };
      const q = random(48, 1), k = random(64, 2), v = random(64, 3);
      // window [1, 0] whose own map would say [-5, NaN]: the pair itself is used
      const w: [number, number] = [1, 0];
      Object.defineProperty(w, 'map', { value: () => [-5, NaN] });
      expectClose(e.attention(q, k, v, { ...o, window: w }), referenceAttention(q, k, v, { ...o, window: [1, 0] }), 'window with its own map');
      // sinks of two heads whose iterator yields one value: both are used
      const sinks = new Float32Array([0.5, -0.25]);
      (sinks as unknown as { [Symbol.iterator]: unknown })[Symbol.iterator] = function* () { yield 5; };
      expectClose(e.attention(q, k, v, { ...o, sinks }), referenceAttention(q, k, v, { ...o, sinks: [0.5, -0.25] }), 'sinks with their own iterator');
      // a Proxy whose length reads 2, then 1: read once, so the pair is [1, 0]
      let reads = 0;
      const proxy = new Proxy([1, 0], { get: (t, p, r) => (p === 'length' ? (reads++ ? 1 : 2) : Reflect.get(t, p, r)) });
      expectClose(e.attention(q, k, v, { ...o, window: proxy as unknown as [number, number] }), referenceAttention(q, k, v, { ...o, window: [1, 0] }), 'window Proxy');
      expect(reads).toBe(1);
      // a Proxy length that is no length is a typed error
      const bogus = new Proxy([1, 0], { get: (t, p, r) => (p === 'length' ? 1e300 : Reflect.get(t, p, r)) });
      expect(thrown(() => e.attention(q, k, v, { ...o, window: bogus as unknown as [number, number] }))).toMatchObject({ code: 'INVALID_OPTION', argument: 'options.window' });
      let shapeReads = 0;
      const shape = new Proxy([3, 4], { get: (t, p, r) => (p === 'length' ? (shapeReads++ ? 9 : 2) : Reflect.get(t, p, r)) });
      expectClose(e.attention(q, k, v, { ...o, mask: random(12, 4), maskShape: shape as unknown as number[] }),
        referenceAttention(q, k, v, { ...o, mask: random(12, 4), maskShape: [3, 4] }), 'maskShape Proxy');
    } finally {
      e.dispose();
    }
  });

  test.each(['float16', 'int8'] as KVCacheDtype[])('%s cache: keys that RoPE turns beyond float32 are refused, nothing written', async (dtype) => {
    const e = await createAttention({ backend });
    try {
      const c = e.createKVCache({ batch: 1, kvHeads: 1, headDim: 4, capacity: 8, dtype, rope: { base: 10 } });
      const k = new Float32Array([1, 1, 1, 1, 3e38, 3e38, -3e38, 3e38]); // finite; token 1 turns to ±∞
      const error = thrown(() => c.append(k, random(8, 1)));
      expect(error).toMatchObject({ code: 'INVALID_OPTION', argument: 'k' });
      expect((error as AttentionError).message).toMatch(/RoPE/);
      expect(c.length).toBe(0);
    } finally {
      e.dispose();
    }
  });

  test('an attend of rows that hold no token gives zeros, whether or not other rows hold tokens', async () => {
    const e = await createAttention({ backend });
    try {
      const c = e.createKVCache({ batch: 2, kvHeads: 1, headDim: 4, capacity: 8 });
      const q = random(4, 5);
      expect(Array.from(c.attend(random(8, 5), { heads: 1, seqQ: 1 }))).toEqual(new Array(8).fill(0)); // nothing appended yet
      const k = random(12, 6), v = random(12, 7);
      c.append(k, v, { rows: [1] });
      expect(Array.from(c.attend(q, { heads: 1, seqQ: 1, rows: [0] }))).toEqual([0, 0, 0, 0]);
      const both = c.attend(Float32Array.from([...q, ...q]), { heads: 1, seqQ: 1, rows: [0, 1] }) as Float32Array;
      expect(Array.from(both.subarray(0, 4))).toEqual([0, 0, 0, 0]);
      expectClose(both.subarray(4), referenceAttention(q, k, v, { batch: 1, heads: 1, seqQ: 1, seqK: 3, headDim: 4 }), 'row 1');
      const { weights } = c.attend(q, { heads: 1, seqQ: 1, rows: [0], returnWeights: true }) as { weights: Float32Array };
      expect(Array.from(weights)).toEqual([0]);
    } finally {
      e.dispose();
    }
  });
});

test('isBackendSupported: true or false for a backend, INVALID_OPTION for any other name', () => {
  for (const name of NAMES) expect(isBackendSupported(name)).toBe(true); // the suite runs with relaxed SIMD on
  for (const bad of ['nope', '', 'WASM-SIMD', 'auto', 'wasm', 42, undefined, null]) {
    expect(thrown(() => isBackendSupported(bad as BackendName)), String(bad)).toMatchObject({ code: 'INVALID_OPTION', argument: 'backend' });
  }
});

describe('second probe', () => {
  const shape = { batch: 1, heads: 2, seqQ: 3, seqK: 3, headDim: 4 };
  const q = random(24, 11), k = random(24, 12), v = random(24, 13);

  test.each(NAMES)('%s: options objects made in another realm (a vm context) are read like this realm\'s', async (backend) => {
    const ctx = vm.createContext({});
    const engine = await createAttention(vm.runInContext(`({ backend: ${JSON.stringify(backend)} })`, ctx) as object);
    try {
      const o = vm.runInContext('({ batch: 1, heads: 2, seqQ: 3, seqK: 3, headDim: 4, causal: true, rope: {} })', ctx) as AttentionOptions;
      expectClose(engine.attention(q, k, v, o) as Float32Array, referenceAttention(q, k, v, { ...shape, causal: true, rope: {} }), 'vm options');
      const cache = engine.createKVCache(vm.runInContext('({ batch: 1, kvHeads: 2, headDim: 4, capacity: 4 })', ctx) as never);
      cache.append(k.subarray(0, 8), v.subarray(0, 8), vm.runInContext('({ rows: [0] })', ctx) as never);
      expect(cache.length).toBe(1);
      // another realm's unknown option is still refused, by its own name
      expect(thrown(() => engine.attention(q, k, v, vm.runInContext('({ batch: 1, heads: 2, seqQ: 3, seqK: 3, headDim: 4, casual: true })', ctx) as never)))
        .toMatchObject({ code: 'INVALID_OPTION', argument: 'options.casual' });
      // and another realm's DataView as rows is INVALID_TYPE, as this realm's is
      for (const rows of [new DataView(new ArrayBuffer(4)), vm.runInContext('new DataView(new ArrayBuffer(4))', ctx)]) {
        expect(thrown(() => cache.attend(q.subarray(0, 8), { heads: 2, seqQ: 1, rows }))).toMatchObject({ code: 'INVALID_TYPE', argument: 'options.rows' });
      }
    } finally {
      engine.dispose();
    }
  });

  test.each(NAMES)('%s: detached or out-of-bounds per-head and linear options are SHAPE_MISMATCH, not a raw TypeError', async (backend) => {
    const engine = await createAttention({ backend });
    try {
      const detached = () => {
        const x = new Float32Array(2).fill(0.5);
        structuredClone(x.buffer, { transfer: [x.buffer] });
        return x;
      };
      // a fixed-length view of a resizable buffer, shrunk below it (Node 20 has resizable ArrayBuffers)
      const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void };
      const resizable = new Resizable(8, { maxByteLength: 8 });
      const shrunk = new Float32Array(resizable, 0, 2);
      resizable.resize(4);
      for (const [name, run] of [
        ['options.alibiSlopes', () => engine.attention(q, k, v, { ...shape, alibiSlopes: detached() })],
        ['options.sinks', () => engine.attention(q, k, v, { ...shape, sinks: detached() })],
        ['options.sinks', () => engine.attention(q, k, v, { ...shape, sinks: shrunk })],
        ['options.decay', () => engine.linearAttention(q, k, v, { ...shape, causal: true, decay: detached() })],
        ['options.gates', () => engine.linearAttention(q, k, v, { ...shape, causal: true, gates: Object.assign(detached(), {}) })],
      ] as const) {
        expect(thrown(run), name).toMatchObject({ name: 'AttentionError', code: 'SHAPE_MISMATCH', argument: name });
      }
    } finally {
      engine.dispose();
    }
  });

  test.each(['wasm-relaxed-simd', 'wasm-simd'] as const)('%s: option arrays that view freed engine memory are INVALID_TYPE, inside a live tensor they are read', async (backend) => {
    const engine = await createAttention({ backend });
    try {
      const t = engine.alloc(16);
      const live = t.array.subarray(0, 2);
      live.set([0.25, -0.5]);
      expectClose(engine.attention(q, k, v, { ...shape, sinks: live }) as Float32Array,
        referenceAttention(q, k, v, { ...shape, sinks: [0.25, -0.5] }), 'sinks in a live tensor');
      const { buffer, byteOffset } = t.array;
      t.free();
      const stale = () => new Float32Array(buffer, byteOffset, 2);
      for (const [name, run] of [
        ['options.sinks', () => engine.attention(q, k, v, { ...shape, sinks: stale() })],
        ['options.alibiSlopes', () => engine.attention(q, k, v, { ...shape, alibiSlopes: stale() })],
        ['options.rope.frequencies', () => engine.attention(q, k, v, { ...shape, rope: { frequencies: stale() } })],
        ['options.keyLengths', () => engine.attention(q, k, v, { ...shape, keyLengths: new Int32Array(buffer, byteOffset, 1) })],
        ['options.decay', () => engine.linearAttention(q, k, v, { ...shape, causal: true, decay: stale() })],
      ] as const) {
        expect(thrown(run), name).toMatchObject({ code: 'INVALID_TYPE', argument: name });
      }
    } finally {
      engine.dispose();
    }
  });
});
