// Threaded engines (options.threads > 1): every call against the float64 reference and, element for element,
// against a single-threaded engine of the same build (each work item runs the same kernel code, so the
// answers must be identical), through the KV cache and in-place tensors, across memory growth, with invalid
// options, after dispose, and in a script that exits without disposing.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
// The built package: workers load dist/wasm/worker-node.js, a file that only exists after the build (npm test builds first).
import { AttentionError, BACKENDS, createAttention } from '../dist/index.js';
import type { AttentionEngine, AttentionOptions } from '../dist/index.js';
import { splitPolicy } from '../dist/wasm/pool.js';
import { expectClose, maxAbsError, random } from './helpers.js';
import { allTileEdges, edgePairs } from './runtimes/cases.mjs';
import { referenceAttention, referenceWithWeights } from './runtimes/reference.mjs';

const BUILDS = ['wasm-relaxed-simd', 'wasm-simd'] as const;
const defaultMinFlops = splitPolicy.minFlops;
const engines = new Map<string, { single: AttentionEngine; two: AttentionEngine; three: AttentionEngine }>();

beforeAll(async () => {
  // Share every call among the threads, however small (the engine runs calls below the cost model's threshold on
  // the caller alone): these tests are about the threaded path.
  splitPolicy.minFlops = 0;
  for (const backend of BUILDS) {
    engines.set(backend, {
      single: await createAttention({ backend }),
      two: await createAttention({ backend, threads: 2 }),
      // More threads than this machine's cores: items are claimed dynamically, so oversubscription is only slower.
      three: await createAttention({ backend, threads: 3 }),
    });
  }
});
afterAll(() => {
  engines.forEach((e) => Object.values(e).forEach((x) => x.dispose()));
  splitPolicy.minFlops = defaultMinFlops;
});

type Case = AttentionOptions & { name: string };

function cases(): Case[] {
  const list: Case[] = [];
  // Query counts around the work item (one query block) and the 4-row tile; key counts around the 8-key panel and
  // the key block: the tile edges of the threaded builds' blocking.
  const edges = allTileEdges(BACKENDS.filter((b) => (BUILDS as readonly string[]).includes(b.name)).map((b) => b.blocks));
  for (const [L, S] of edgePairs(edges)) {
    list.push({ name: `L${L} S${S}`, batch: 2, heads: 3, seqQ: L, seqK: S, headDim: 13 });
    list.push({ name: `L${L} S${S} causal`, batch: 1, heads: 4, seqQ: L, seqK: S, headDim: 8, causal: true });
    list.push({ name: `L${L} S${S} bottom-right`, batch: 1, heads: 2, seqQ: L, seqK: S, headDim: 16, causal: 'bottom-right' });
  }
  list.push({ name: 'GQA 8/2, headDimV 5', batch: 2, heads: 8, kvHeads: 2, seqQ: 70, seqK: 90, headDim: 24, headDimV: 5 });
  list.push({ name: 'MQA 6/1', batch: 1, heads: 6, kvHeads: 1, seqQ: 130, seqK: 33, headDim: 64 });
  list.push({
    name: 'bool mask [B,1,L,S] + causal', batch: 2, heads: 3, seqQ: 67, seqK: 67, headDim: 9, causal: true,
    mask: Uint8Array.from(random(2 * 67 * 67, 5), (x) => (x > -0.6 ? 1 : 0)), maskShape: [2, 1, 67, 67],
  });
  list.push({
    name: 'float mask [S]', batch: 1, heads: 5, seqQ: 96, seqK: 40, headDim: 7,
    mask: random(40, 6, 3), maskShape: [40],
  });
  for (const activation of ['softmax1', 'squared', 'sigmoid', 'relu', 'polynomial'] as const) {
    list.push({ name: activation, batch: 1, heads: 3, seqQ: 100, seqK: 70, headDim: 16, activation, softcap: 5 });
  }
  return list;
}

describe.each(BUILDS)('%s with threads', (backend) => {
  test.each(cases())('$name: identical to one thread, close to float64', ({ name, ...options }) => {
    const { single, two, three } = engines.get(backend)!;
    expect(two.threads).toBe(2);
    expect(two.backend).toBe(backend);
    const kvHeads = options.kvHeads ?? options.heads;
    const q = random(options.batch * options.heads * options.seqQ * options.headDim, 1);
    const k = random(options.batch * kvHeads * options.seqK * options.headDim, 2);
    const v = random(options.batch * kvHeads * options.seqK * (options.headDimV ?? options.headDim), 3);
    const want = single.attention(q, k, v, options);
    for (const e of [two, three]) {
      const got = e.attention(q, k, v, options);
      expect(maxAbsError(got, want), `${name}, ${e.threads} threads vs 1`).toBe(0);
      expectClose(got, referenceAttention(q, k, v, options), `${name}, ${e.threads} threads`);
    }
  });

  test('with the default cost model, calls below and above its threshold are identical to one thread', () => {
    const { single, two } = engines.get(backend)!;
    splitPolicy.minFlops = defaultMinFlops;
    try {
      // 0.26 MFLOP (run by the caller alone) and 25 MFLOP, MiniLM's shape (shared).
      for (const options of [{ batch: 1, heads: 2, seqQ: 32, seqK: 32, headDim: 32 }, { batch: 1, heads: 12, seqQ: 128, seqK: 128, headDim: 32 }]) {
        const n = options.heads * options.seqQ * options.headDim;
        const [q, k, v] = [random(n, 21), random(n, 22), random(n, 23)];
        expect(maxAbsError(two.attention(q, k, v, options), single.attention(q, k, v, options))).toBe(0);
      }
    } finally {
      splitPolicy.minFlops = 0;
    }
  });

  test('returned weights', () => {
    const { two } = engines.get(backend)!;
    const options = { batch: 2, heads: 4, seqQ: 150, seqK: 77, headDim: 10, causal: 'bottom-right' as const, returnWeights: true as const };
    const q = random(2 * 4 * 150 * 10, 7);
    const k = random(2 * 4 * 77 * 10, 8);
    const v = random(2 * 4 * 77 * 10, 9);
    const got = two.attention(q, k, v, options);
    const want = referenceWithWeights(q, k, v, options);
    expectClose(got.output, want.output, 'output');
    expectClose(got.weights, want.weights, 'weights');
  });

  test('KV cache decode and prefill match the one-shot call, GQA and bottom-right causal', () => {
    const { single, two } = engines.get(backend)!;
    const [B, H, KVH, D, S] = [1, 8, 2, 32, 300];
    const K = random(B * KVH * S * D, 10);
    const V = random(B * KVH * S * D, 11);
    const cache = two.createKVCache({ batch: B, kvHeads: KVH, headDim: D, capacity: S });
    cache.append(K, V);
    for (const seqQ of [1, 5, 130]) {
      const q = random(B * H * seqQ * D, 12 + seqQ);
      const attend = { heads: H, seqQ, causal: 'bottom-right' as const };
      const oneShot = single.attention(q, K, V, { ...attend, batch: B, kvHeads: KVH, seqK: S, headDim: D });
      expect(maxAbsError(cache.attend(q, attend), oneShot), `seqQ ${seqQ}`).toBe(0);
    }
    cache.dispose();
  });

  test('in-place tensors, and calls that grow the shared memory', () => {
    const { single, two } = engines.get(backend)!;
    const opts = (L: number) => ({ batch: 1, heads: 4, seqQ: L, seqK: L, headDim: 32 });
    const q = two.alloc(4 * 100 * 32);
    const out = two.alloc(4 * 100 * 32);
    q.array.set(random(4 * 100 * 32, 20));
    const kv = random(4 * 100 * 32, 21);
    const small = two.attention(q, kv, kv, { ...opts(100), out });
    expect(small).toBe(out.array);
    expect(maxAbsError(out.array, single.attention(q.array.slice(), kv, kv, opts(100)))).toBe(0);
    // A call larger than any before grows memory; every thread must see the grown memory.
    const before = two.memoryBytes;
    const big = random(4 * 1500 * 32, 22);
    const got = two.attention(big, big, big, opts(1500));
    expect(two.memoryBytes).toBeGreaterThan(before);
    expect(maxAbsError(got, single.attention(big, big, big, opts(1500)))).toBe(0);
    // Tensors made before the growth still work, through their current views.
    two.attention(q, kv, kv, { ...opts(100), out });
    expect(maxAbsError(out.array, small.slice())).toBe(0);
    q.free();
    out.free();
  });

  test('views taken before the shared memory grew: outside every live tensor refused, inside one used in place', async () => {
    // Growing a shared memory hands out a new SharedArrayBuffer object for the same memory; views over the old
    // object still reach engine memory, so they are engine memory like any other view.
    const { single } = engines.get(backend)!;
    const e = await createAttention({ backend, threads: 2 });
    try {
      const D = 8, o = { batch: 1, heads: 1, seqQ: 8, seqK: 8, headDim: D };
      const t = e.alloc(4096);
      const stale = t.array.subarray(64, 128), stale16 = new Uint16Array(t.array.buffer, t.array.byteOffset + 256, 64);
      const live = e.alloc(256);
      const oldView = live.array.subarray(64, 128), oldView16 = new Uint16Array(live.array.buffer, live.array.byteOffset + 2, 64);
      t.free();
      const cache = e.createKVCache({ batch: 1, kvHeads: 1, headDim: D, capacity: 8 }); // reuses t's block
      const oldBuffer = live.array.buffer;
      const before0 = e.memoryBytes;
      const grown = e.alloc(1 << 20); // grows memory
      expect(e.memoryBytes).toBeGreaterThan(before0);
      expect(grown.array.buffer, 'a new buffer object for the grown memory').not.toBe(oldBuffer);
      cache.append(new Float32Array(64), new Float32Array(64).fill(1));
      const q0 = new Float32Array(D);
      const before = cache.attend(q0, { heads: 1, seqQ: 1 });
      const [q, k, v] = [random(64, 40), random(64, 41), random(64, 42)];
      for (const view of [stale, stale16]) {
        for (const [args, argument] of [[[view, k, v, o], 'q'], [[q, k, v, { ...o, out: view }], 'options.out']] as const) {
          expect(() => e.attention(...(args as Parameters<typeof e.attention>)), argument).toThrow(expect.objectContaining({ code: 'INVALID_TYPE', argument }));
        }
        expect(() => cache.append(view.subarray(0, 8), new Float32Array(8))).toThrow(expect.objectContaining({ code: 'INVALID_TYPE', argument: 'k' }));
      }
      expect(cache.attend(q0, { heads: 1, seqQ: 1 }), 'the cache is intact').toEqual(before);
      // Views of a live tensor from before the growth are read and written in place, by offset.
      const want = single.attention(q, k, v, o);
      oldView.set(q);
      expect(e.attention(oldView, k, v, o)).toEqual(want);
      expect(e.attention(q, k, v, { ...o, out: oldView })).toBe(oldView);
      expect(Array.from(live.array.subarray(64, 128)), 'written into the tensor').toEqual(Array.from(want));
      const out16 = e.attention(q, k, v, { ...o, out: oldView16 });
      expect(out16).toBe(oldView16);
      const want16 = new Uint16Array(64);
      single.attention(q, k, v, { ...o, out: want16 });
      expect(Array.from(new Uint16Array(live.array.buffer, live.array.byteOffset + 2, 64))).toEqual(Array.from(want16));
    } finally {
      e.dispose();
    }
  });

  test('3 000 back-to-back calls of 1 to 6 work items (where a lost wake-up or a stale argument would show) match one thread', () => {
    const { single, two, three } = engines.get(backend)!;
    const inputs = [1, 2, 3, 4, 5, 6].map((items) => {
      const options = { batch: 1, heads: items, seqQ: 9 + items, seqK: 20 + items, headDim: 8, causal: items % 2 === 1 };
      const q = random(items * options.seqQ * 8, 50 + items);
      const kv = random(items * options.seqK * 8, 60 + items);
      return { options, q, kv, want: single.attention(q, kv, kv, options) };
    });
    let mismatches = 0;
    for (let i = 0; i < 3000; i++) {
      const { options, q, kv, want } = inputs[(i * 7) % inputs.length]!;
      const e = i % 3 === 0 ? three : two;
      if (maxAbsError(e.attention(q, kv, kv, options), want) !== 0) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  test('linear attention runs on a threaded engine (on the calling thread), with decay and a state', () => {
    const { single, two } = engines.get(backend)!;
    const options = { batch: 1, heads: 2, seqQ: 40, seqK: 40, headDim: 8, causal: true, decay: Float32Array.of(0.9, 1) };
    const q = random(2 * 40 * 8, 30);
    expect(maxAbsError(two.linearAttention(q, q, q, options), single.linearAttention(q, q, q, options))).toBe(0);
    const [s1, s2] = [single, two].map((e) => e.createLinearState({ batch: 1, heads: 2, headDim: 8 }));
    for (let i = 0; i < 3; i++) {
      expect(maxAbsError(two.linearAttention(q, q, q, { ...options, state: s2 }), single.linearAttention(q, q, q, { ...options, state: s1 }))).toBe(0);
    }
    s1!.dispose();
    s2!.dispose();
  });
});

describe('threads option', () => {
  test.each([0, 1.5, -1, 257, NaN, '2', null])('threads: %s is INVALID_OPTION', async (threads) => {
    await expect(createAttention({ threads: threads as number })).rejects.toMatchObject({ code: 'INVALID_OPTION', argument: 'options.threads' });
  });

  test('threads with the JS backend is INVALID_OPTION', async () => {
    await expect(createAttention({ backend: 'js', threads: 2 })).rejects.toBeInstanceOf(AttentionError);
    await expect(createAttention({ backend: 'js', threads: 2 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });

  test('threads: 1 is the ordinary single-threaded engine', async () => {
    const e = await createAttention({ threads: 1 });
    expect(e.threads).toBe(1);
    e.dispose();
  });

  test('bad input to a threaded engine throws before any work and the engine keeps working', async () => {
    const e = await createAttention({ threads: 2 });
    const q = random(2 * 70 * 8, 40);
    expect(() => e.attention(q, q, q.subarray(1), { batch: 1, heads: 2, seqQ: 70, seqK: 70, headDim: 8 }))
      .toThrow(AttentionError);
    const options = { batch: 1, heads: 2, seqQ: 70, seqK: 70, headDim: 8 };
    expectClose(e.attention(q, q, q, options), referenceAttention(q, q, q, options), 'after the error');
    e.dispose();
    expect(() => e.attention(q, q, q, options)).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
  });

  test('a script that never disposes its threaded engine still exits', () => {
    const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const script = `
      const { createAttention } = await import(${JSON.stringify(entry)});
      const e = await createAttention({ threads: 2 });
      const q = new Float32Array(2 * 100 * 8).fill(0.5);
      const out = e.attention(q, q, q, { batch: 1, heads: 2, seqQ: 100, seqK: 100, headDim: 8 });
      console.log(out.every((x) => Math.abs(x - 0.5) < 1e-6) ? 'ok' : 'wrong');`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(run.error, 'the script must exit on its own').toBeUndefined();
    expect(run.stdout.trim()).toBe('ok');
    expect(run.status).toBe(0);
  });
});
