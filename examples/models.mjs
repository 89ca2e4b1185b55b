// One attention layer of the models people run, as a runtime would call it:
//  - Mistral-style: GQA 32/8, RoPE (base 1e6) kept in a KV cache, a 4096-token sliding window, 'bshd' tensors;
//    a 600-token prompt prefilled in one attend, then 64 decode steps.
//  - gpt-oss-style: per-head sinks and a 128-token window on the same cache.
// Every decode step is checked against the JS backend given the same inputs (float32 rounding apart, the two
// backends agree to 1e-5). Run: npm run example:models   (Node 20: --experimental-wasm-relaxed-simd)
import { createAttention, createJsAttention } from '../dist/index.js';

const [heads, kvHeads, headDim, prompt, steps] = [32, 8, 128, 600, 64];
let seed = 11;
const rand = (n) => Float32Array.from({ length: n }, () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
const rope = { base: 1e6 };                                   // keys stored rotated at their own positions
const sinks = Float32Array.from({ length: heads }, (_, h) => (h % 4) - 1.5);
const layers = [
  { name: 'Mistral-style, window 4096', options: { causal: 'bottom-right', window: [4095, 0], layout: 'bshd' } },
  { name: 'gpt-oss-style, sinks + window 128', options: { causal: 'bottom-right', window: [127, 0], sinks, layout: 'bshd' } },
];

const engine = await createAttention();
const js = createJsAttention();
let worst = 0;
for (const { name, options } of layers) {
  const caches = [engine, js].map((e) => e.createKVCache({ batch: 1, kvHeads, headDim, capacity: prompt + steps, rope, layout: 'bshd' }));
  // prefill: k, v as [1, prompt, kvHeads, headDim]; q as [1, prompt, heads, headDim]
  const [k0, v0, q0] = [rand(prompt * kvHeads * headDim), rand(prompt * kvHeads * headDim), rand(prompt * heads * headDim)];
  for (const c of caches) c.append(k0, v0);
  let t = performance.now();
  caches[0].attend(q0, { heads, seqQ: prompt, ...options });
  const prefillMs = performance.now() - t;
  let stepMs = 0;
  for (let s = 0; s < steps; s++) {
    const [k, v, q] = [rand(kvHeads * headDim), rand(kvHeads * headDim), rand(heads * headDim)];
    t = performance.now();
    caches[0].append(k, v);
    const out = caches[0].attend(q, { heads, seqQ: 1, ...options });
    stepMs += performance.now() - t;
    caches[1].append(k, v);
    const want = caches[1].attend(q, { heads, seqQ: 1, ...options });
    for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - want[i]));
  }
  console.log(`${name} (${engine.backend}): prefill of ${prompt} queries ${prefillMs.toFixed(1)} ms, ` +
    `${(stepMs / steps).toFixed(3)} ms per decode step (append + attend) up to ${caches[0].length} cached tokens`);
  for (const c of caches) c.dispose();
}
console.log(`largest difference from the JS backend over every decode step: ${worst.toExponential(2)}`);
if (!(worst <= 1e-5)) process.exitCode = 1;
engine.dispose();
