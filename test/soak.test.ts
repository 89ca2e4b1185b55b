// Soak: 50 000 mixed calls per backend (shapes, masks, causal modes, activations, weights, `out`, and invalid
// calls in between). Wasm memory must settle at the largest call and stay there, the JS heap must stay
// bounded, results must stay right; dispose() must release the memory and make every later use throw DISPOSED.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, test } from 'vitest';
import { ACTIVATIONS, AttentionError, createAttention } from '../src/index.js';
import type { AttentionEngine, AttentionOptions, BackendName } from '../src/index.js';
import { BACKEND_NAMES, expectClose, random } from './helpers.js';
import { referenceWithWeights } from './runtimes/reference.mjs';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapAfterGc = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

const CALLS = 50_000;
const activations = Array.isArray(ACTIVATIONS) && ACTIVATIONS.length > 0 ? ACTIVATIONS : ['softmax' as const];

interface Job {
  q: Float32Array; k: Float32Array; v: Float32Array; options: AttentionOptions; want: Float64Array; wantWeights: Float64Array;
}

function jobs(): Job[] {
  const shapes: AttentionOptions[] = [
    { batch: 1, heads: 2, seqQ: 17, seqK: 33, headDim: 16 },
    { batch: 2, heads: 1, seqQ: 1, seqK: 70, headDim: 8, causal: 'bottom-right' },
    { batch: 1, heads: 4, kvHeads: 2, seqQ: 9, seqK: 9, headDim: 5, headDimV: 3, causal: true },
    { batch: 1, heads: 1, seqQ: 32, seqK: 65, headDim: 12, mask: random(32 * 65, 99).map((x) => (x < -0.6 ? -Infinity : x)) },
    { batch: 1, heads: 3, seqQ: 5, seqK: 12, headDim: 4, mask: Uint8Array.from(random(3 * 12, 98), (x) => (x > -0.3 ? 1 : 0)), maskShape: [3, 1, 12] },
    { batch: 1, heads: 1, seqQ: 3, seqK: 200, headDim: 24, scale: 0.4 },
  ];
  return shapes.flatMap((o, i) => activations.map((activation, a) => {
    const options: AttentionOptions = { ...o, activation, ...(a % 2 === 1 ? { returnWeights: true } : {}) };
    const kv = options.kvHeads ?? options.heads;
    const q = random(options.batch * options.heads * options.seqQ * options.headDim, 10 * i + 1);
    const k = random(options.batch * kv * options.seqK * options.headDim, 10 * i + 2);
    const v = random(options.batch * kv * options.seqK * (options.headDimV ?? options.headDim), 10 * i + 3);
    const { output, weights } = referenceWithWeights(q, k, v, options);
    return { q, k, v, options, want: output, wantWeights: weights };
  }));
}

/** Invalid calls mixed into the soak; each must throw AttentionError. */
const BAD: ((j: Job) => unknown[])[] = [
  (j) => [j.q.subarray(1), j.k, j.v, j.options],
  (j) => [j.q, j.k, j.v, { ...j.options, seqK: j.options.seqK + 1 }],
  (j) => [j.q, j.k, j.v, { ...j.options, causal: 'sideways' }],
  (j) => [j.q, new Float64Array(j.k), j.v, j.options],
  (j) => [j.q, j.k, j.v, { ...j.options, heads: 0 }],
  (j) => [j.q, j.k, j.v, { ...j.options, out: new Float32Array(1) }],
];

function run(engine: AttentionEngine, j: Job, check: boolean, out?: Float32Array): void {
  if (j.options.returnWeights) {
    const r = engine.attention(j.q, j.k, j.v, { ...j.options, returnWeights: true });
    if (check) {
      expectClose(r.output, j.want, `${engine.backend} ${JSON.stringify(j.options.activation)}`);
      expectClose(r.weights, j.wantWeights, `${engine.backend} weights`);
    }
  } else {
    const r = engine.attention(j.q, j.k, j.v, out ? { ...j.options, out } : j.options);
    if (out) expect(r).toBe(out);
    if (check) expectClose(r, j.want, `${engine.backend} ${JSON.stringify(j.options.activation)}`);
  }
}

describe.each(BACKEND_NAMES)('%s soak', (backend: BackendName) => {
  test(`${CALLS} mixed calls with errors in between: memory settles, heap bounded, results right`, async () => {
    const engine = await createAttention({ backend });
    const all = jobs();
    const outs = all.map((j) => new Float32Array(j.want.length));
    for (const j of all) run(engine, j, true); // warm-up: every shape once
    const settled = engine.memoryBytes;
    if (backend !== 'js') expect(settled).toBeGreaterThan(0);
    const heapStart = heapAfterGc();
    let errors = 0;
    let heapPeak = heapStart;
    for (let call = 0; call < CALLS; call++) {
      const j = all[(call * 7) % all.length]!;
      if (call % 97 === 13) {
        const args = BAD[call % BAD.length]!(j);
        expect(() => engine.attention(...(args as Parameters<AttentionEngine['attention']>))).toThrow(AttentionError);
        errors++;
        continue;
      }
      run(engine, j, call % 2500 === 0, call % 3 === 0 ? outs[(call * 7) % all.length] : undefined);
      if (call % 10_000 === 9_999) {
        expect(engine.memoryBytes, `wasm memory after ${call + 1} calls`).toBe(settled);
        heapPeak = Math.max(heapPeak, heapAfterGc());
      }
    }
    expect(errors).toBeGreaterThan(500);
    expect(engine.memoryBytes).toBe(settled);
    // Nothing accumulates per call: the retained JS heap grows by less than 4 MiB over 50 000 calls.
    expect(heapPeak - heapStart, `heap grew from ${heapStart} to ${heapPeak}`).toBeLessThan(4 << 20);
    for (const j of all) run(engine, j, true);
    engine.dispose();
    expect(engine.memoryBytes).toBe(0);
  });

  test('dispose() releases the memory; every later use throws DISPOSED; dispose is idempotent', async () => {
    // 24 engines, each grown to ≥ 32 MiB and then disposed, all kept reachable: if dispose kept its memory,
    // the process would hold ≥ 768 MiB more.
    const kept: AttentionEngine[] = [];
    const seqK = 1 << 16, D = 64; // k and v: 16 MiB each
    const k = random(seqK * D, 5), v = random(seqK * D, 6), q = random(D, 7);
    const options = { batch: 1, heads: 1, seqQ: 1, seqK, headDim: D };
    gc();
    const rssStart = process.memoryUsage().rss;
    for (let n = 0; n < 24; n++) {
      const engine = await createAttention({ backend });
      engine.attention(q, k, v, options);
      if (backend !== 'js') expect(engine.memoryBytes).toBeGreaterThanOrEqual(32 << 20);
      engine.dispose();
      kept.push(engine);
      if (n % 4 === 3) gc();
    }
    gc();
    const grown = process.memoryUsage().rss - rssStart;
    expect(grown, `rss grew by ${grown} bytes`).toBeLessThan(256 << 20);

    const engine = kept[0]!;
    expect(engine.memoryBytes).toBe(0);
    const uses: [string, () => unknown][] = [
      ['attention', () => engine.attention(q, k, v, options)],
      ['linearAttention', () => engine.linearAttention(q, k, v, options)],
      ...(typeof engine.alloc === 'function' ? [['alloc', () => engine.alloc(16)] as [string, () => unknown]] : []),
      ...(typeof engine.createKVCache === 'function'
        ? [['createKVCache', () => engine.createKVCache({ batch: 1, kvHeads: 1, headDim: 4, capacity: 8 } as never)] as [string, () => unknown]]
        : []),
    ];
    for (const [name, use] of uses) {
      let thrown: unknown;
      try {
        use();
      } catch (error) {
        thrown = error;
      }
      expect(thrown, `${name} after dispose`).toBeInstanceOf(AttentionError);
      expect((thrown as AttentionError).code, name).toBe('DISPOSED');
      expect((thrown as AttentionError).message, name).toMatch(/disposed/);
    }
    expect(() => engine.dispose()).not.toThrow();
    expect(engine.memoryBytes).toBe(0);
  });
});
