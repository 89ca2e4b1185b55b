// Regression tests for issue 10 ("nine ways to get a wrong answer, a hang or a leak"): each fails on the package
// as it was before the fixes. The built package is used (threaded engines load dist/wasm/worker-node.js).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AttentionError, BACKENDS, createAttention } from '../dist/index.js';
import type { AttentionEngine, AttentionOptions, BackendName } from '../dist/index.js';
import { expectClose, random, thrown } from './helpers.js';
import { referenceAttention } from './runtimes/reference.mjs';

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const NAMES = BACKENDS.map((b) => b.name) as BackendName[];
const engines = new Map<BackendName, AttentionEngine>();
beforeAll(async () => {
  for (const name of NAMES) engines.set(name, await createAttention({ backend: name }));
});
afterAll(() => engines.forEach((e) => e.dispose()));

const FLT_MAX = 3.4028234663852886e38;

/** Mean of the rows of v [S, Dv]. */
const meanRows = (v: Float32Array, S: number, Dv: number) =>
  Float64Array.from({ length: Dv }, (_, c) => Array.from({ length: S }, (_, j) => v[j * Dv + c]!).reduce((a, x) => a + x, 0) / S);

describe.each(NAMES)('%s', (name) => {
  // 1. Finite scores near ±FLT_MAX are finite numbers, not ±∞.
  test('1: a whole row masked with finfo(float32).min attends uniformly (Hugging Face padding)', () => {
    const e = engines.get(name)!;
    const [L, S, D] = [2, 5, 4];
    const q = random(L * D, 1), k = random(S * D, 2), v = random(S * D, 3);
    const mask = new Float32Array(L * S);
    mask.fill(-FLT_MAX, S, 2 * S); // row 1: every key at −3.4028235e38, all logits equal
    const out = e.attention(q, k, v, { batch: 1, heads: 1, seqQ: L, seqK: S, headDim: D, mask });
    expectClose(out.subarray(D), meanRows(v, S, D), `${name} row of equal huge negative logits`);
    expectClose(out.subarray(0, D), referenceAttention(q, k, v, { batch: 1, heads: 1, seqQ: L, seqK: S, headDim: D }).subarray(0, D), 'row 0');
  });

  test('1: a mask entry of +3e38 selects its key; a q·k score of 2.56e38 selects its key', () => {
    const e = engines.get(name)!;
    const [S, D] = [5, 4];
    const q = random(D, 1), k = random(S * D, 2), v = random(S * D, 3);
    const mask = new Float32Array(S);
    mask[2] = 3e38;
    const out = e.attention(q, k, v, { batch: 1, heads: 1, seqQ: 1, seqK: S, headDim: D, mask });
    expectClose(out, Float64Array.from(v.subarray(2 * D, 3 * D)), `${name} +3e38 mask`);
    const q1 = Float32Array.of(1.6e19), k1 = Float32Array.of(1.6e19, 1, -1), v1 = Float32Array.of(7, 8, 9);
    expectClose(e.attention(q1, k1, v1, { batch: 1, heads: 1, seqQ: 1, seqK: 3, headDim: 1, scale: 1 }), Float64Array.of(7), `${name} q·k 2.56e38`);
  });

  test('1: scale 3e38 with q = 0 (unmasked fast path) gives the mean of v', () => {
    const e = engines.get(name)!;
    const [S, D] = [8, 4];
    const v = random(S * D, 3);
    const out = e.attention(new Float32Array(D), random(S * D, 2), v, { batch: 1, heads: 1, seqQ: 1, seqK: S, headDim: D, scale: 3e38 });
    expectClose(out, meanRows(v, S, D), `${name} scale 3e38`);
  });

  // 2. One options object means one thing on every path.
  test('2: inherited options and class getters are honoured with and without out, and through a KV cache', () => {
    const e = engines.get(name)!;
    const shape = { batch: 1, heads: 1, seqQ: 6, seqK: 6, headDim: 4 };
    const q = random(24, 1), k = random(24, 2), v = random(24, 3);
    const want = e.attention(q, k, v, { ...shape, causal: true });
    const inherited = Object.assign(Object.create({ causal: true }), shape) as AttentionOptions;
    expect(Array.from(e.attention(q, k, v, inherited))).toEqual(Array.from(want));
    const out = new Float32Array(24);
    expect(Array.from(e.attention(q, k, v, Object.assign(Object.create(inherited), { out }) as AttentionOptions))).toEqual(Array.from(want));
    class Options {
      batch = 1; heads = 1; seqQ = 6; seqK = 6; headDim = 4;
      get causal() {
        return true as const;
      }
    }
    expect(Array.from(e.attention(q, k, v, { ...new Options(), out: new Float32Array(24) } as AttentionOptions))).not.toEqual(Array.from(want)); // spread drops the getter: the user's own doing
    expect(Array.from(e.attention(q, k, v, Object.assign(new Options(), { out: new Float32Array(24) })))).toEqual(Array.from(want));
    const cache = e.createKVCache({ batch: 1, kvHeads: 1, headDim: 4, capacity: 6 });
    cache.append(k, v);
    expect(Array.from(cache.attend(q, Object.assign(Object.create({ causal: true }), { heads: 1, seqQ: 6 }) as { heads: number; seqQ: number }))).toEqual(Array.from(want));
    cache.dispose();
  });

  test('2: an inherited unknown option (a class getter `casual`) is rejected', () => {
    const e = engines.get(name)!;
    class Typo {
      batch = 1; heads = 1; seqQ = 2; seqK = 2; headDim = 2;
      get casual() {
        return true;
      }
    }
    const error = thrown(() => e.attention(random(4, 1), random(4, 2), random(4, 3), new Typo() as unknown as AttentionOptions));
    expect(error).toMatchObject({ code: 'INVALID_OPTION', argument: 'options.casual' });
    const proto = thrown(() => e.attention(random(4, 1), random(4, 2), random(4, 3), Object.assign(Object.create({ maks: 1 }), new Typo())));
    expect(proto).toMatchObject({ code: 'INVALID_OPTION', argument: 'options.maks' });
  });

  // 6. Options finite in float64 but not in float32.
  test('6: scale and softcap beyond float32 are rejected; a scale that rounds to 0 agrees everywhere', () => {
    const e = engines.get(name)!;
    const o = { batch: 1, heads: 1, seqQ: 2, seqK: 3, headDim: 2 };
    const q = random(4, 1), k = random(6, 2), v = random(6, 3);
    for (const [extra, argument] of [[{ scale: 1e39 }, 'options.scale'], [{ softcap: 1e39 }, 'options.softcap'],
      [{ softcap: 1e-46 }, 'options.softcap'], [{ softcap: 1e-40 }, 'options.softcap'],
      [{ activation: 'squared', epsilon: 1e39 }, 'options.epsilon'], [{ activation: 'sigmoid', bias: -1e39 }, 'options.bias']] as const) {
      expect(thrown(() => e.attention(q, k, v, { ...o, ...extra } as AttentionOptions)), JSON.stringify(extra)).toMatchObject({ code: 'INVALID_OPTION', argument });
    }
    expectClose(e.attention(q, k, v, { ...o, scale: 1e-46 }), Float64Array.from([...meanRows(v, 3, 2), ...meanRows(v, 3, 2)]), `${name} scale 1e-46`);
  });

  // 8. Smaller promises.
  test('8: BigInt dimensions are described as BigInts; out given as a tensor view is returned as given', () => {
    const e = engines.get(name)!;
    const error = thrown(() => e.attention(random(1, 1), random(1, 2), random(1, 3), { batch: 1n as unknown as number, heads: 1, seqQ: 1, seqK: 1, headDim: 1 }));
    expect(error).toBeInstanceOf(AttentionError);
    expect((error as AttentionError).message).toContain('BigInt');
    const t = e.alloc(8);
    const out = t.array;
    expect(e.attention(random(8, 1), random(8, 2), random(8, 3), { batch: 1, heads: 1, seqQ: 2, seqK: 2, headDim: 4, out })).toBe(out);
    t.free();
  });

  // 9. An input shrunk during the call.
  test('9: a length-tracking view shrunk by an option getter gives a typed error, never stale data', () => {
    const e = engines.get(name)!;
    const rab = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void })(64, { maxByteLength: 64 });
    const q = new Float32Array(rab); // length-tracking: 16 floats
    q.set(random(16, 1));
    const options = {
      batch: 1, heads: 1, seqQ: 4, seqK: 4, headDim: 4,
      get causal() {
        rab.resize(32); // q now has 8 floats
        return false;
      },
    };
    expect(thrown(() => e.attention(q, random(16, 2), random(16, 3), options))).toMatchObject({ code: 'SHAPE_MISMATCH', argument: 'q' });
  });
});

describe.each(['wasm-relaxed-simd', 'wasm-simd'] as const)('%s engine memory', (name) => {
  // 4. Views of engine memory detached by the call's own growth.
  test('4: sub-views of a tensor (q, k, v, a mask over its buffer, out) survive the call growing memory', async () => {
    const e = await createAttention({ backend: name });
    try {
      const [S, D] = [4096, 16];
      const t = e.alloc(8 * S * D); // memory is now just big enough for the tensor: the call's arena must grow
      const base = t.array;
      base.set(random(base.length, 9));
      const q = base.subarray(1, 1 + 4 * D), k = base.subarray(S * D, 2 * S * D), v = base.subarray(2 * S * D, 3 * S * D);
      const maskBytes = new Uint8Array(base.buffer, base.byteOffset + 3 * S * D * 4 + 1, 4 * S).fill(1);
      maskBytes[5] = 0;
      const mask = Uint8Array.from(maskBytes);
      const out = base.subarray(5 * S * D, 5 * S * D + 4 * D);
      const o = { batch: 1, heads: 1, seqQ: 4, seqK: S, headDim: D };
      const want = referenceAttention(Float32Array.from(q), Float32Array.from(k), Float32Array.from(v), { ...o, mask });
      const before = e.memoryBytes;
      const got = e.attention(q, k, v, { ...o, mask: maskBytes, out, returnWeights: true });
      expect(e.memoryBytes, 'the call grew memory').toBeGreaterThan(before);
      expectClose(got.output, want, `${name} sub-views`);
      expectClose(t.array.subarray(5 * S * D, 5 * S * D + 4 * D), want, `${name} out written in the tensor`);
      // A KV-cache append from a sub-view, while the append itself grows memory (v is copied in).
      const cache = e.createKVCache({ batch: 1, kvHeads: 1, headDim: D, capacity: 2 * S });
      const k2 = t.array.subarray(0, S * D), v2 = random(S * D, 4);
      const k2copy = Float32Array.from(k2);
      const grown = e.memoryBytes;
      cache.append(k2, v2);
      expect(e.memoryBytes, 'the append grew memory').toBeGreaterThan(grown);
      const q2 = random(D, 5);
      expectClose(cache.attend(q2, { heads: 1, seqQ: 1 }), referenceAttention(q2, k2copy, v2, { batch: 1, heads: 1, seqQ: 1, seqK: S, headDim: D }), `${name} append`);
    } finally {
      e.dispose();
    }
  });

  test('4: a view of engine memory outside any tensor is a typed error, not stale memory', async () => {
    const e = await createAttention({ backend: name });
    try {
      const t = e.alloc(16);
      const outside = new Float32Array(t.array.buffer, 0, 16); // below the heap: the engine's own data
      const error = thrown(() => e.attention(outside, random(16, 2), random(16, 3), { batch: 1, heads: 1, seqQ: 4, seqK: 4, headDim: 4 }));
      expect(error).toMatchObject({ code: 'INVALID_TYPE', argument: 'q' });
    } finally {
      e.dispose();
    }
  });

  test('8: maxMemoryBytes is a whole number of pages and never exceeded; one query row of weights needs one row of scratch', async () => {
    await expect(createAttention({ backend: name, maxMemoryBytes: 1000 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    const capped = await createAttention({ backend: name, maxMemoryBytes: 100_000 });
    try {
      const calls = [8, 64, 256, 1024];
      for (const S of calls) {
        try {
          capped.attention(random(8, 1), random(S * 8, 2), random(S * 8, 3), { batch: 1, heads: 1, seqQ: 1, seqK: S, headDim: 8 });
        } catch (error) {
          expect(error).toMatchObject({ code: 'OUT_OF_MEMORY' });
        }
        expect(capped.memoryBytes).toBeLessThanOrEqual(100_000);
      }
    } finally {
      capped.dispose();
    }
    const e = await createAttention({ backend: name });
    try {
      const S = 1 << 16;
      e.attention(random(8, 1), random(S * 8, 2), random(S * 8, 3), { batch: 1, heads: 1, seqQ: 1, seqK: S, headDim: 8, returnWeights: true });
      // inputs 4 MiB, weights 256 KiB, one row of scores 256 KiB: a 64-row score block alone would be 16 MiB.
      expect(e.memoryBytes).toBeLessThan(8 << 20);
    } finally {
      e.dispose();
    }
  });
});

/** Runs a script against the built package in a fresh Node process; it must print `ok` and exit on its own. */
function script(source: string, flags: string[] = []): void {
  const run = spawnSync(process.execPath, ['--experimental-wasm-relaxed-simd', ...flags, '--input-type=module', '-e',
    `import * as pkg from ${JSON.stringify(DIST)};\n${source}`], { encoding: 'utf8', timeout: 60_000 });
  expect(run.error, `the script must end on its own: ${run.stderr}`).toBeUndefined();
  expect(run.stderr.trim() === '' ? run.stdout.trim() : `${run.stdout}\n${run.stderr}`).toBe('ok');
  expect(run.status).toBe(0);
}

describe('threads', () => {
  test('3: disposing a threaded engine from an option getter of its own call throws DISPOSED, never hangs', () => {
    script(`
      const e = await pkg.createAttention({ threads: 2 });
      const x = new Float32Array(2 * 200 * 16).fill(0.5);
      const options = { batch: 1, heads: 2, seqQ: 200, seqK: 200, headDim: 16, get causal() { e.dispose(); return true; } };
      let code = null;
      try { e.attention(x, x, x, options); } catch (err) { code = err.code; }
      if (code !== 'DISPOSED') throw new Error('got ' + code);
      console.log('ok');
    `);
  });

  test('5: threaded engines dropped without dispose() give back their threads and memory after GC', () => {
    script(`
      import { readFileSync } from 'node:fs';
      const threads = () => Number(/Threads:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
      const settle = async () => { for (let i = 0; i < 40; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 50)); } };
      const x = new Float32Array(2 * 100 * 8).fill(0.5);
      (await pkg.createAttention({ threads: 2 })).dispose(); // load the threaded module once
      await settle();
      const before = threads();
      for (let i = 0; i < 5; i++) {
        const e = await pkg.createAttention({ threads: 2 });
        e.attention(x, x, x, { batch: 1, heads: 2, seqQ: 100, seqK: 100, headDim: 8 });
      }
      const during = threads();
      await settle();
      const after = threads();
      if (!(during >= before + 5)) throw new Error('workers did not start: ' + before + ' -> ' + during);
      if (!(after <= before + 1)) throw new Error('threads not reclaimed: ' + before + ' before, ' + during + ' with 5 dropped engines, ' + after + ' after GC');
      console.log('ok');
    `, ['--expose-gc']);
  });
});
