// Two engines at once: interleaved calls on one thread (each engine owns its memory, so one never disturbs
// the other), and two worker_threads workers, each with its own engine from the built package, computing
// concurrently with the main thread — on private and on SharedArrayBuffer-backed inputs.
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, test } from 'vitest';
import { createAttention } from '../src/index.js';
import type { AttentionEngine, AttentionOptions, BackendName } from '../src/index.js';
import { BACKEND_NAMES, expectClose, random } from './helpers.js';
import { referenceAttention } from './runtimes/reference.mjs';

const SHAPES: AttentionOptions[] = [
  { batch: 1, heads: 2, seqQ: 40, seqK: 130, headDim: 32, causal: 'bottom-right' },
  { batch: 2, heads: 4, kvHeads: 1, seqQ: 7, seqK: 19, headDim: 6, headDimV: 9 },
  { batch: 1, heads: 1, seqQ: 64, seqK: 64, headDim: 16, causal: true, mask: Uint8Array.from(random(64 * 64, 5), (x) => (x > -0.5 ? 1 : 0)) },
  { batch: 1, heads: 3, seqQ: 2, seqK: 300, headDim: 48, scale: 0.2 },
];

function inputs(o: AttentionOptions, seed: number) {
  const kv = o.kvHeads ?? o.heads;
  const q = random(o.batch * o.heads * o.seqQ * o.headDim, seed);
  const k = random(o.batch * kv * o.seqK * o.headDim, seed + 1);
  const v = random(o.batch * kv * o.seqK * (o.headDimV ?? o.headDim), seed + 2);
  return { q, k, v, options: o, want: referenceAttention(q, k, v, o) };
}

describe('interleaved calls on two engines', () => {
  const pairs: [BackendName, BackendName][] = [
    ...BACKEND_NAMES.map((b) => [b, b] as [BackendName, BackendName]),
    ['wasm-relaxed-simd', 'wasm-simd'], ['wasm-simd', 'js'],
  ];
  test.each(pairs)('%s + %s', async (a, b) => {
    const engines: AttentionEngine[] = [await createAttention({ backend: a }), await createAttention({ backend: b })];
    // Engine 0 cycles through the shapes forwards and engine 1 backwards, so their arenas hold different
    // layouts and grow at different moments; each call is checked.
    const cases = SHAPES.map((o, i) => inputs(o, 100 * i + 1));
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < cases.length; i++) {
        const c0 = cases[i]!, c1 = cases[cases.length - 1 - i]!;
        const o0 = engines[0]!.attention(c0.q, c0.k, c0.v, c0.options);
        const o1 = engines[1]!.attention(c1.q, c1.k, c1.v, c1.options);
        expectClose(o0, c0.want, `${a} round ${round} shape ${i}`);
        expectClose(o1, c1.want, `${b} round ${round} shape ${cases.length - 1 - i}`);
      }
    }
    // Disposing one leaves the other working.
    engines[0]!.dispose();
    const c = cases[0]!;
    expectClose(engines[1]!.attention(c.q, c.k, c.v, c.options), c.want, `${b} after the other engine was disposed`);
    engines[1]!.dispose();
  });
});

describe('two worker_threads workers', () => {
  const workers: Worker[] = [];
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.terminate()));
  });

  async function start(backend: BackendName): Promise<{ worker: Worker; backend: string }> {
    const worker = new Worker(new URL('./workers/attention-worker.mjs', import.meta.url), { workerData: { backend } });
    workers.push(worker);
    const ready = await new Promise<{ ready: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    return { worker, backend: ready.ready };
  }

  /** Sends every job at once (they queue in the worker) and collects the answers by id. */
  function runAll(worker: Worker, jobs: { q: Float32Array; k: Float32Array; v: Float32Array; options: AttentionOptions }[]) {
    return new Promise<Float32Array[]>((resolve, reject) => {
      const results: Float32Array[] = [];
      let pending = jobs.length;
      const onMessage = (m: { id: number; out?: Float32Array; error?: string }) => {
        if (m.error !== undefined) {
          reject(new Error(m.error));
          return;
        }
        results[m.id] = m.out!;
        if (--pending === 0) {
          worker.off('message', onMessage);
          resolve(results);
        }
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
      jobs.forEach((j, id) => worker.postMessage({ id, ...j }));
    });
  }

  test.each([['wasm-relaxed-simd', 'wasm-relaxed-simd'], ['wasm-simd', 'js']] as [BackendName, BackendName][])(
    'workers on %s and %s, concurrently with the main thread', async (a, b) => {
      const [wa, wb] = await Promise.all([start(a), start(b)]);
      expect([wa.backend, wb.backend]).toEqual([a, b]);
      const cases = SHAPES.flatMap((o, i) => [inputs(o, 200 * i + 1), inputs(o, 200 * i + 50)]);
      const jobs = (order: number) => Array.from({ length: 24 }, (_, n) => cases[(n * order) % cases.length]!);
      const ja = jobs(1), jb = jobs(3);
      const pa = runAll(wa.worker, ja), pb = runAll(wb.worker, jb);
      // The main thread computes meanwhile on its own engine.
      const main = await createAttention();
      for (const c of cases) expectClose(main.attention(c.q, c.k, c.v, c.options), c.want, `main thread ${main.backend}`);
      main.dispose();
      const [ra, rb] = await Promise.all([pa, pb]);
      ra.forEach((out, n) => expectClose(out, ja[n]!.want, `worker ${a} job ${n}`));
      rb.forEach((out, n) => expectClose(out, jb[n]!.want, `worker ${b} job ${n}`));
    });

  test('both workers read the same SharedArrayBuffer inputs at once', async () => {
    const [wa, wb] = await Promise.all([start('wasm-relaxed-simd'), start('wasm-simd')]);
    const share = (a: Float32Array) => {
      const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
      s.set(a);
      return s;
    };
    const c = inputs(SHAPES[0]!, 777);
    const job = { q: share(c.q), k: share(c.k), v: share(c.v), options: c.options };
    const [ra, rb] = await Promise.all([runAll(wa.worker, Array(8).fill(job)), runAll(wb.worker, Array(8).fill(job))]);
    for (const out of [...ra, ...rb]) expectClose(out, c.want, 'shared inputs');
  });
});
