// Autoregressive decoding with a KV cache, on one thread and on two: a 1024-token prompt is prefilled in one
// append, then 256 tokens are decoded one at a time (GQA: 32 query heads over 8 kv heads, headDim 128), as a
// language model's attention layer would. Each engine's output is checked against the other's (identical).
// Run: npm run example:decode   (or: npm run build && node examples/decode.mjs; Node 20: --experimental-wasm-relaxed-simd)
import { createAttention } from '../dist/index.js';

const [heads, kvHeads, headDim, prompt, steps] = [32, 8, 128, 1024, 256];
let seed = 7;
const rand = (n) => Float32Array.from({ length: n }, () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
const kPrompt = rand(kvHeads * prompt * headDim);
const vPrompt = rand(kvHeads * prompt * headDim);
const tokens = Array.from({ length: steps }, () => ({ q: rand(heads * headDim), k: rand(kvHeads * headDim), v: rand(kvHeads * headDim) }));

const outputs = [];
for (const threads of [1, 2]) {
  const engine = await createAttention({ threads });
  const cache = engine.createKVCache({ batch: 1, kvHeads, headDim, capacity: prompt + steps });
  let t = performance.now();
  cache.append(kPrompt, vPrompt);
  const prefillMs = performance.now() - t;
  const out = [];
  t = performance.now();
  for (const { q, k, v } of tokens) {
    cache.append(k, v); // copies this token only
    out.push(cache.attend(q, { heads, seqQ: 1, causal: 'bottom-right' }));
  }
  const stepMs = (performance.now() - t) / steps;
  console.log(`${engine.backend}, ${threads} thread${threads > 1 ? 's' : ''}: prefill append ${prefillMs.toFixed(1)} ms, ` +
    `${stepMs.toFixed(3)} ms per decode step (append + attend) over ${prompt}–${cache.length} cached tokens, ` +
    `${(cache.length * kvHeads * headDim * 8 / 2 ** 20).toFixed(0)} MiB of K/V`);
  outputs.push(out);
  engine.dispose();
}
const same = outputs[0].every((o, i) => o.every((x, j) => x === outputs[1][i][j]));
console.log(same ? 'one and two threads gave identical outputs' : 'MISMATCH between one and two threads');
if (!same) process.exitCode = 1;
