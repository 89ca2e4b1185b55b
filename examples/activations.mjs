// "What happens if attention doesn't use softmax?" — the same q, k, v through every activation.
// Prints, per activation: what the weight rows sum to, how spread out they are (entropy), and the time.
// Run: npm run build && node examples/activations.mjs   (Node 20: add --experimental-wasm-relaxed-simd)
import { ACTIVATIONS, createAttention } from '../dist/index.js';

const [batch, heads, seqQ, seqK, headDim] = [1, 4, 256, 256, 64];
// Deterministic inputs with a little structure: keys near their query's direction score higher.
let seed = 42;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const q = Float32Array.from({ length: batch * heads * seqQ * headDim }, rand);
const k = Float32Array.from(q, (x) => 0.5 * x + 0.5 * rand());
const v = Float32Array.from({ length: batch * heads * seqK * headDim }, rand);

const engine = await createAttention();
console.log(`backend ${engine.backend}; B${batch} H${heads} L${seqQ} S${seqK} D${headDim}, causal\n`);

const stats = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = values.reduce((a, c) => a + c, 0) / values.length;
  return `${mean.toFixed(3)} [${sorted[0].toFixed(3)}, ${sorted.at(-1).toFixed(3)}]`;
};

const rows = [];
for (const activation of ACTIVATIONS) {
  const options = { batch, heads, seqQ, seqK, headDim, causal: true, activation };
  const { weights } = engine.attention(q, k, v, { ...options, returnWeights: true });
  const sums = [];
  const entropies = [];
  for (let r = 0; r < batch * heads * seqQ; r++) {
    const row = weights.subarray(r * seqK, (r + 1) * seqK);
    sums.push(row.reduce((a, c) => a + c, 0));
    // Entropy of the row's mass |w| / Σ|w| in nats: 0 = all on one key, ln(n) = uniform over n keys.
    const mass = row.reduce((a, c) => a + Math.abs(c), 0);
    entropies.push(mass === 0 ? 0 : -row.reduce((a, c) => (c === 0 ? a : a + (Math.abs(c) / mass) * Math.log(Math.abs(c) / mass)), 0));
  }
  const runs = [];
  for (let i = 0; i < 15; i++) {
    const t = performance.now();
    engine.attention(q, k, v, options);
    runs.push(performance.now() - t);
  }
  runs.sort((a, b) => a - b);
  rows.push({ activation, 'row sum: mean [min, max]': stats(sums), 'entropy (nats)': stats(entropies), 'median ms': runs[7].toFixed(2) });
}
console.table(rows);
console.log(`(a uniform row over all ${seqK} keys has entropy ${Math.log(seqK).toFixed(3)} nats; causal rows see 1..${seqK} keys)`);
engine.dispose();
