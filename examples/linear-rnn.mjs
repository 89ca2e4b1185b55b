// Linear attention as an RNN: a 4096-token prompt is prefilled through a recurrent state in one causal call, then
// 256 tokens are decoded one at a time (8 heads, headDim 64, RetNet-style per-head decay and a Mamba-2-style gate
// per token). The state is a fixed headDim × headDimV matrix per head, so a step costs the same at every position,
// and no KV cache grows. The decoded outputs are checked against one call over the whole sequence.
// Run: npm run example:linear   (or: npm run build && node examples/linear-rnn.mjs; Node 20: --experimental-wasm-relaxed-simd)
import { createAttention } from '../dist/index.js';

const [heads, headDim, prompt, steps] = [8, 64, 4096, 256];
const total = prompt + steps;
let seed = 11;
const rand = (n) => Float32Array.from({ length: n }, () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
const q = rand(heads * total * headDim), k = rand(heads * total * headDim), v = rand(heads * total * headDim);
const gates = Float32Array.from(rand(heads * total), (x) => -0.05 * Math.abs(x)); // a_t ≤ 0, [heads, total]
const decay = Float32Array.from({ length: heads }, (_, h) => 1 - 2 ** -(5 + h)); // γ_h: 0.97 … 0.9998 (RetNet)

/** Positions t0 … t1 − 1 of a [heads, total, dim] tensor. */
const slice = (x, dim, t0, t1) => {
  const out = new Float32Array(heads * (t1 - t0) * dim);
  for (let h = 0; h < heads; h++) out.set(x.subarray((h * total + t0) * dim, (h * total + t1) * dim), h * (t1 - t0) * dim);
  return out;
};

const engine = await createAttention();
const shape = { batch: 1, heads, headDim, causal: true, decay };
const state = engine.createLinearState({ batch: 1, heads, headDim });
let t = performance.now();
engine.linearAttention(slice(q, headDim, 0, prompt), slice(k, headDim, 0, prompt), slice(v, headDim, 0, prompt),
  { ...shape, seqQ: prompt, seqK: prompt, state, gates: slice(gates, 1, 0, prompt) });
const prefillMs = performance.now() - t;
const decoded = [];
const stepMs = [];
for (let i = prompt; i < total; i++) {
  t = performance.now();
  decoded.push(engine.linearAttention(slice(q, headDim, i, i + 1), slice(k, headDim, i, i + 1), slice(v, headDim, i, i + 1),
    { ...shape, seqQ: 1, seqK: 1, state, gates: slice(gates, 1, i, i + 1) }));
  stepMs.push(performance.now() - t);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`${engine.backend}: prefill of ${prompt} tokens ${prefillMs.toFixed(1)} ms; decode ${steps} tokens, ` +
  `${(median(stepMs) * 1000).toFixed(0)} µs per token (median) at positions ${prompt}–${total - 1}; ` +
  `state ${state.length} tokens in ${heads}×${headDim}×${headDim} floats`);

// The same sequence in one call: the decoded rows must match it.
const whole = engine.linearAttention(q, k, v, { ...shape, seqQ: total, seqK: total, gates });
let err = 0;
decoded.forEach((out, s) => {
  for (let h = 0; h < heads; h++) {
    for (let c = 0; c < headDim; c++) err = Math.max(err, Math.abs(out[h * headDim + c] - whole[(h * total + prompt + s) * headDim + c]));
  }
});
console.log(`max |token-by-token − one call| = ${err.toExponential(2)}`);
if (!(err <= 1e-5)) process.exitCode = 1;
state.dispose();
engine.dispose();
