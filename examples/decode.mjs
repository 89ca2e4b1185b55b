// Autoregressive decoding with a KV cache, on one thread and on two: a 1024-token prompt is prefilled in one
// append, then 256 tokens are decoded one at a time (GQA: 32 query heads over 8 kv heads, headDim 128), as a
// language model's attention layer would. Each engine's output is checked against the other's (identical), and a
// float16 or int8 cache (--dtype) against a float32 one (max |difference| ÷ max |out|).
// Run: npm run example:decode [-- --dtype float16|int8]   (or: npm run build && node examples/decode.mjs --dtype int8;
// Node 20: --experimental-wasm-relaxed-simd)
import { createAttention } from '../dist/index.js';

const args = process.argv.slice(2);
const dtype = args.includes('--dtype') ? args[args.indexOf('--dtype') + 1] : 'float32';
const [heads, kvHeads, headDim, prompt, steps] = [32, 8, 128, 1024, 256];
let seed = 7;
const rand = (n) => Float32Array.from({ length: n }, () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
const kPrompt = rand(kvHeads * prompt * headDim);
const vPrompt = rand(kvHeads * prompt * headDim);
const tokens = Array.from({ length: steps }, () => ({ q: rand(heads * headDim), k: rand(kvHeads * headDim), v: rand(kvHeads * headDim) }));

/** Decodes every token through a cache of `type` on an engine with `threads`; returns the outputs. */
async function decode(type, threads, report) {
  const engine = await createAttention({ threads });
  const cache = engine.createKVCache({ batch: 1, kvHeads, headDim, capacity: prompt + steps, dtype: type });
  let t = performance.now();
  cache.append(kPrompt, vPrompt);
  const prefillMs = performance.now() - t;
  const out = [];
  t = performance.now();
  for (const { q, k, v } of tokens) {
    cache.append(k, v); // copies (and converts) this token only
    out.push(cache.attend(q, { heads, seqQ: 1, causal: 'bottom-right' }));
  }
  const stepMs = (performance.now() - t) / steps;
  if (report) {
    console.log(`${engine.backend}, ${type} cache, ${threads} thread${threads > 1 ? 's' : ''}: prefill append ${prefillMs.toFixed(1)} ms, ` +
      `${stepMs.toFixed(3)} ms per decode step (append + attend) over ${prompt}–${cache.length} cached tokens, ` +
      `cache ${(cache.bytes / 2 ** 20).toFixed(1)} MiB`);
  }
  engine.dispose();
  return out;
}

const outputs = [await decode(dtype, 1, true), await decode(dtype, 2, true)];
const same = outputs[0].every((o, i) => o.every((x, j) => x === outputs[1][i][j]));
console.log(same ? 'one and two threads gave identical outputs' : 'MISMATCH between one and two threads');
if (!same) process.exitCode = 1;
if (dtype !== 'float32') {
  const exact = await decode('float32', 1, false);
  let err = 0, peak = 0;
  exact.forEach((o, i) => o.forEach((x, j) => {
    err = Math.max(err, Math.abs(outputs[0][i][j] - x));
    peak = Math.max(peak, Math.abs(x));
  }));
  console.log(`${dtype} against a float32 cache over the ${steps} steps: max |difference| ÷ max |out| = ${(err / peak).toExponential(2)}`);
}
