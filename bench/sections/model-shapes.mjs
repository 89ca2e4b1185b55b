// Real model shapes (MODEL_SHAPES in test/runtimes/cases.mjs): ours on 1 and 2 threads against onnxruntime-web on
// 1 and 2 threads (env.wasm.numThreads; each ORT thread count in its own worker thread, see ort-worker.mjs), all
// timed in the same interleaved rounds. Our answers are checked against float64 (the first rows of each head),
// ORT's against ours. Decode rows are our KV-cache step (append a token, attend over the cache) against ORT's whole
// call over the same 4096 keys: ORT has no resident cache in a plain graph.
import { Worker } from 'node:worker_threads';
import { MODEL_SHAPES, flops, inputsFor, optionsOf } from '../shapes.mjs';
import { referenceAttention, relativeError } from '../../test/runtimes/cases.mjs';
import { ORT_VERSION } from '../peers/ort.mjs';
import { computedFlops, maxAbsDiff, medianMs, shareOf } from './timing.mjs';

const OURS_TOLERANCE = 1e-5; // max |err| / max |ref| against float64
const PEER_TOLERANCE = 1e-4; // ORT against ours: its own exp and summation order

/** An ORT worker on `threads` threads: `ask(message)` resolves with its answer. */
function ortWorker(threads) {
  const worker = new Worker(new URL('./ort-worker.mjs', import.meta.url), { workerData: { threads } });
  let pending = null;
  worker.on('message', (m) => pending?.(m));
  const ask = (message) => new Promise((resolve, reject) => {
    pending = (m) => (m.error ? reject(new Error(m.error)) : resolve(m));
    worker.postMessage(message);
  });
  return { threads, ask, close: async () => (await ask({ close: true }), worker.terminate()) };
}

/** The first `n` query rows of every head of a (1, H, L, D) tensor, and the same slice of a shape. */
function firstRows(x, H, L, D, n) {
  const out = new Float32Array(H * n * D);
  for (let h = 0; h < H; h++) out.set(x.subarray(h * L * D, (h * L + n) * D), h * n * D);
  return out;
}

/** Our runner for a shape: a whole call, or for decode shapes a KV-cache step over seqK − 1 cached tokens. */
function oursFor(shape, d) {
  const { decode, ...options } = optionsOf(shape);
  if (!decode) return (e) => ({ run: () => e.attention(d.q, d.k, d.v, options), dispose() {} });
  const { heads, seqK, headDim } = shape;
  const kvHeads = shape.kvHeads ?? heads;
  const tokens = (x, from, to) => {
    const out = new Float32Array(kvHeads * (to - from) * headDim);
    for (let h = 0; h < kvHeads; h++) out.set(x.subarray((h * seqK + from) * headDim, (h * seqK + to) * headDim), h * (to - from) * headDim);
    return out;
  };
  const [k0, v0, k1, v1] = [tokens(d.k, 0, seqK - 1), tokens(d.v, 0, seqK - 1), tokens(d.k, seqK - 1, seqK), tokens(d.v, seqK - 1, seqK)];
  return (e) => {
    const cache = e.createKVCache({ batch: 1, kvHeads, headDim, capacity: seqK + 1024 });
    cache.append(k0, v0);
    let first = true;
    return {
      // The first step attends over exactly the shape's keys (the answer checked); later ones over a growing cache.
      run() {
        if (!first) {
          if (cache.length === cache.capacity) cache.reset(), cache.append(k0, v0);
        }
        first = false;
        cache.append(k1, v1);
        return cache.attend(d.q, { heads, seqQ: 1, causal: 'bottom-right' });
      },
      dispose: () => cache.dispose(),
    };
  };
}

export async function modelShapesSection({ wasmEngines, createAttention, peak }) {
  const one = wasmEngines[0];
  const two = await createAttention({ backend: one.backend, threads: 2 });
  const orts = [ortWorker(1), ortWorker(2)];
  const rows = [];
  const notes = [];
  for (const shape of MODEL_SHAPES) {
    peak.measure();
    const d = inputsFor(shape);
    const { decode, ...options } = optionsOf(shape);
    const make = oursFor(shape, d);
    const ours = [make(one), make(two)];
    const got = ours[0].run();
    if (maxAbsDiff(ours[1].run(), got) !== 0) throw new Error(`${shape.id}: 2 threads differ from 1`);
    // Float64 check of the first rows (a row's answer depends on no later query row, causal or not).
    const n = Math.min(shape.seqQ, 16), H = shape.heads, D = shape.headDim;
    const want = referenceAttention(firstRows(d.q, H, shape.seqQ, D, n), d.k, d.v, { ...options, seqQ: n, seqK: shape.seqK });
    const err = relativeError(firstRows(got, H, shape.seqQ, D, n), want);
    if (!(err <= OURS_TOLERANCE)) throw new Error(`${shape.id}: relative error ${err} against float64`);
    // ORT: the plain graph always; its MultiHeadAttention op too where it applies (no GQA, no soft-cap).
    const variants = ['plain', ...(shape.kvHeads === undefined && shape.softcap === undefined && !decode ? ['mha'] : [])];
    const ort = orts.map(() => ({ ms: Infinity, how: '', mismatch: false, failed: null }));
    const best = ours.map(() => Infinity);
    for (const variant of variants) {
      for (const [i, w] of orts.entries()) {
        try {
          const { out } = await w.ask({ setup: shape, variant });
          const peerErr = relativeError(out, got);
          if (!(peerErr <= PEER_TOLERANCE)) ort[i].mismatch = true;
        } catch (error) {
          ort[i].failed = String(error.message).split('\n')[0].slice(0, 100);
          continue;
        }
        // Ours and this ORT variant in two interleaved rounds (ours re-timed with every variant: more rounds).
        for (let round = 0; round < 2; round++) {
          for (let t = 0; t < ours.length; t++) {
            best[t] = Math.min(best[t], (await medianMs(`${shape.id} ours ${t + 1}`, ours[t].run, flops(shape) > 1e9)).ms);
          }
          const m = await w.ask({ time: true });
          if (m.ms < ort[i].ms) Object.assign(ort[i], { ms: m.ms, how: variant });
        }
      }
    }
    ours.forEach((r) => r.dispose());
    const computed = computedFlops(shape);
    const rate = (ms) => (shape.causal && !decode
      ? `${(flops(shape) / ms / 1e6).toFixed(1)} / ${(computed / ms / 1e6).toFixed(1)}` : (flops(shape) / ms / 1e6).toFixed(1));
    const ortCell = (o) => (o.failed ? `failed: ${o.failed}` : `${o.ms.toFixed(2)}${o.mismatch ? ' ⚠' : ''} (${o.how})`);
    const ratio = (o, ms) => (o.failed || o.mismatch ? '—' : `**${(o.ms / ms).toFixed(1)}×**`);
    rows.push(`| ${shape.id} | ${shape.label} | ${best[0].toFixed(2)} · ${rate(best[0])} · ${shareOf(computed / best[0] / 1e6, peak.gflops)} | ` +
      `${best[1].toFixed(2)} · ${(best[0] / best[1]).toFixed(2)}× | ${ortCell(ort[0])} | ${ortCell(ort[1])} | ` +
      `${ratio(ort[0], best[0])} | ${ratio(ort[1], best[1])} |`);
    if (ort.some((o) => o.mismatch)) notes.push(`${shape.id}: ORT's output differs from ours by more than ${PEER_TOLERANCE} × max|out| (⚠).`);
  }
  for (const w of orts) await w.close();
  two.dispose();
  return ['Model shapes: ours against onnxruntime-web, 1 and 2 threads',
    `Batch 1, whole calls (Float32Array in → out); decode rows: our KV-cache step (append one token, attend over ` +
    `4096 + cached tokens) against onnxruntime-web ${ORT_VERSION}'s whole call over the same keys (no resident cache in a ` +
    'plain graph). Ours: median ms · GFLOP/s (causal rows: counting 4·B·H·L·S·D / counting only the admitted half) · ' +
    'share of the in-run wasm peak (of the computed rate). ORT: the faster of its plain graph and its ' +
    'MultiHeadAttention op where that applies (no GQA, no soft-cap), `env.wasm.numThreads` = 1 or 2, each in its ' +
    'own worker thread, timed in the same interleaved rounds as ours. Last columns: ORT ms ÷ our ms at the same ' +
    `thread count (> 1: we are faster). Our answers checked against float64 (first 16 rows of every head), ORT's against ours.\n\n` +
    '| model | shape | ours 1 thread: ms · GFLOP/s · % of peak | ours 2 threads: ms · speed-up | ORT 1 thread ms | ' +
    'ORT 2 threads ms | ours vs ORT, 1 thread | ours vs ORT, 2 threads |\n|---|---|---:|---:|---:|---:|---:|---:|\n' +
    rows.join('\n') + (notes.length ? `\n\n${notes.map((x) => `- ${x}`).join('\n')}` : '')];
}
