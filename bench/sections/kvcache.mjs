// KV caches at the memory limit (issue 11): the S4 decode step (append one token, attend over 4096) through float32,
// float16 and int8 caches on 1 and 2 threads, and onnxruntime-web's S4 call, all in interleaved rounds of one run;
// each dtype's error against float64 on S4; cache bytes, and the contexts that fit in 4 GiB for a 32-layer,
// 8-kv-head, headDim-128 model.
import { fixedMedian } from './timing.mjs';
import { SHAPES, inputsFor, optionsOf, referenceAttention } from '../../test/runtimes/cases.mjs';

const DTYPES = ['float32', 'float16', 'int8'];

/** Median ms of `fn` over `iterations` runs after 3 warm-up runs. */
const median = (fn, iterations) => fixedMedian(fn, iterations, 3);

/** Tokens [from, to) of a (1, H, S, D) tensor. */
function tokens(x, H, S, D, from, to) {
  const out = new Float32Array(H * (to - from) * D);
  for (let h = 0; h < H; h++) out.set(x.subarray((h * S + from) * D, (h * S + to) * D), h * (to - from) * D);
  return out;
}

/** max |got − want| / max |want|. */
function errorRatio(got, want) {
  let err = 0, peak = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    peak = Math.max(peak, Math.abs(want[i]));
  }
  return err / peak;
}

/**
 * `engines`: { threads → engine } of one wasm backend; `ort`: async () => { run(q, k, v), dispose() } or null.
 * Returns [title, markdown].
 */
export async function kvcacheSection(engines, ort, { rounds = 3, iterations = 60 } = {}) {
  const s4 = SHAPES.find((s) => s.id === 'S4');
  const { heads: H, seqK: S, headDim: D } = s4;
  const d = inputsFor(s4);
  const want = referenceAttention(d.q, d.k, d.v, optionsOf(s4));
  const [k0, v0] = [tokens(d.k, H, S, D, 0, S - 1), tokens(d.v, H, S, D, 0, S - 1)];
  const [k1, v1] = [tokens(d.k, H, S, D, S - 1, S), tokens(d.v, H, S, D, S - 1, S)];
  const step = { heads: H, seqQ: 1, causal: 'bottom-right' };

  // One cache per (threads, dtype), prefilled with S4's first 4095 tokens; a step appends the 4096th again and
  // attends (the cache grows by one token a step and is refilled when full, outside the timed steps).
  const runs = [];
  const errors = new Map();
  for (const [threads, engine] of engines) {
    for (const dtype of DTYPES) {
      const cache = engine.createKVCache({ batch: 1, kvHeads: H, headDim: D, capacity: S + 2048, dtype });
      cache.append(k0, v0);
      cache.append(k1, v1);
      if (threads === 1) {
        const sized = engine.createKVCache({ batch: 1, kvHeads: H, headDim: D, capacity: S, dtype });
        errors.set(dtype, { ratio: errorRatio(cache.attend(d.q, step), want), bytes: sized.bytes });
        sized.dispose();
      }
      const refill = () => {
        if (cache.length > S + 2048 - 2 * iterations) cache.reset(), cache.append(k0, v0);
      };
      runs.push({ label: `${dtype}, ${threads} thread${threads > 1 ? 's' : ''}`, threads, dtype, refill,
        run: () => (cache.append(k1, v1), cache.attend(d.q, step)), dispose: () => cache.dispose() });
    }
  }
  // Grouped decode (Llama 3's 32/8 heads) and a prefill chunk reuse each key for several query rows: bound by
  // arithmetic rather than bandwidth, where decoding a 16- or 8-bit cache costs extra. One thread.
  const gqa = { heads: 32, kvHeads: 8, headDim: 128, seqK: 4096 };
  const gk = tokens(d.k, H, S, D, 0, S).subarray(0, gqa.kvHeads * S * D), gv = tokens(d.v, H, S, D, 0, S).subarray(0, gqa.kvHeads * S * D);
  const chunk = 256, gq = inputsFor({ batch: 1, heads: 32, seqQ: chunk, seqK: 1, headDim: 128 }, 9).q;
  for (const dtype of DTYPES) {
    const cache = engines.get(1).createKVCache({ batch: 1, kvHeads: gqa.kvHeads, headDim: D, capacity: S, dtype });
    cache.append(gk, gv);
    runs.push({ label: `${dtype}, GQA 32/8 step`, group: 'gqa', dtype, threads: 1, refill() {}, dispose: () => cache.dispose(),
      run: () => cache.attend(gq.subarray(0, 32 * D), { heads: 32, seqQ: 1 }) });
    runs.push({ label: `${dtype}, GQA 32/8 prefill chunk of ${chunk}`, group: 'prefill', dtype, threads: 1, refill() {}, dispose() {}, slow: true,
      run: () => cache.attend(gq, { heads: 32, seqQ: chunk, causal: 'bottom-right' }) });
  }
  let peer = null;
  if (ort) {
    try {
      peer = await ort();
      const err = errorRatio(await peer.run(d.q, d.k, d.v), want);
      if (!(err <= 1e-4)) throw new Error(`error ${err} against float64`);
      runs.push({ label: 'onnxruntime-web S4 call, 1 thread', peer: true, run: () => peer.run(d.q, d.k, d.v), refill() {}, dispose() {} });
    } catch (e) {
      console.warn(`onnxruntime-web S4 skipped: ${e?.message ?? e}`);
    }
  }
  const best = new Map();
  for (let round = 0; round < rounds; round++) {
    for (const r of runs) {
      r.refill();
      const ms = await median(r.run, r.peer || r.slow ? Math.ceil(iterations / 6) : iterations);
      best.set(r.label, Math.min(best.get(r.label) ?? Infinity, ms));
    }
  }
  runs.forEach((r) => r.dispose());
  await peer?.dispose?.();

  const ortMs = best.get('onnxruntime-web S4 call, 1 thread');
  const rows = runs.filter((r) => !r.peer).map((r) => {
    const ms = best.get(r.label);
    const f32 = best.get(r.group ? r.label.replace(r.dtype, 'float32') : `float32, ${r.threads} thread${r.threads > 1 ? 's' : ''}`);
    const vsOrt = ortMs && !r.group ? `${(ortMs / ms).toFixed(1)}×` : '—';
    return `| ${r.label} | ${ms.toFixed(2)} | ${(f32 / ms).toFixed(2)}× | ${vsOrt} |`;
  });
  if (ortMs) rows.push(`| onnxruntime-web S4 call (copies K/V), 1 thread | ${ortMs.toFixed(2)} | — | 1.0× |`);

  // Bytes: S4's cache (32 kv heads, 4096 tokens, D128) per dtype; contexts of a 32-layer, 8-kv-head, D128 model.
  const e1 = engines.get(1);
  const perToken = new Map(DTYPES.map((dtype) => {
    const c = e1.createKVCache({ batch: 1, kvHeads: 8, headDim: 128, capacity: 32768, dtype });
    const bytes = c.bytes / 32768;
    c.dispose();
    return [dtype, bytes];
  }));
  const f32Bytes = errors.get('float32').bytes;
  const memory = DTYPES.map((dtype) => {
    const { ratio, bytes } = errors.get(dtype);
    const layer = perToken.get(dtype);
    const fit = Math.floor(2 ** 32 / (32 * layer));
    return `| ${dtype} | ${(bytes / 2 ** 20).toFixed(1)} MiB | ${(bytes / f32Bytes).toFixed(3)}× | ${ratio.toExponential(1)} | ` +
      `${(32 * layer / 1024).toFixed(1)} KiB | ${fit.toLocaleString('en-US')} tokens |`;
  });
  return ['KV cache dtypes (S4 decode step: H32, 4096 cached tokens, D128)',
    `Each step appends one token and attends over the cache (\`cache.append\` + \`cache.attend\`, seqQ 1, bottom-right); ` +
    `${rounds} interleaved rounds of ${iterations} steps, best round median. × float32: the same thread count's float32 ` +
    `step ÷ this one; × onnxruntime-web: its whole S4 call (one thread, K/V passed every call) ÷ this step. The GQA ` +
    'rows (32 query heads over 8 kv heads, the same 4096 tokens, one thread) attend without appending.\n\n' +
    '| cache | median ms | × float32 | × onnxruntime-web |\n|---|---:|---:|---:|\n' + rows.join('\n') +
    '\n\nBytes of the S4 cache and its error against float64 on the values given (max |err| ÷ max |out|); a 32-layer ' +
    'model with 8 kv heads of 128 channels: KV bytes per token over all layers, and the longest context whose caches ' +
    'fit in 4 GiB (the wasm32 limit; the engine needs a few MiB more for a call).\n\n' +
    '| dtype | S4 cache | × float32 | S4 error | per token, 32 layers | fits in 4 GiB |\n|---|---:|---:|---:|---:|---:|\n' +
    memory.join('\n')];
}
