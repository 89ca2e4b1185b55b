// Linear attention (chunkwise, O(n)) against softmax attention (O(n²)) as the sequence grows, on one engine, in
// interleaved rounds (each keeps its better round median), so every ratio comes from one time window; then
// single-token RNN steps through a state at two positions. Issue 14's targets: causal B1 H8 L4096 D64 ≥ 12× faster
// than causal softmax, both modes faster than softmax from L ≤ 256, a step as cheap at position 16 384 as at 16.
// Answers are checked against float64 first (up to L 512, where the quadratic reference is quick).
import { Bench } from 'tinybench';
import { inputsFor, random, referenceLinear, relativeError } from '../../test/runtimes/cases.mjs';

/** Median ms of `fn` with tinybench (fewer iterations for calls of hundreds of ms). */
async function median(fn, slow = false) {
  const bench = new Bench({ time: slow ? 0 : 1000, iterations: slow ? 3 : 10, warmupIterations: slow ? 1 : 3 });
  bench.add('x', fn);
  await bench.run();
  const r = bench.tasks[0].result;
  if (r.state !== 'completed') throw new Error(`${r.state} ${r.error ?? ''}`);
  return r.latency.p50;
}

/** The better round median of each function, timed in `rounds` interleaved rounds. */
async function interleaved(fns, rounds = 2, slow = false) {
  const best = fns.map(() => Infinity);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < fns.length; i++) best[i] = Math.min(best[i], await median(fns[i], slow));
  }
  return best;
}

export async function linearSection(e) {
  const rows = [];
  const crossover = {};
  let ratio4096 = NaN;
  for (const causal of [false, true]) {
    for (const n of [32, 64, 128, 256, 512, 1024, 2048, 4096]) {
      const shape = { batch: 1, heads: 8, seqQ: n, seqK: n, headDim: 64, causal };
      const { q, k, v } = inputsFor(shape);
      if (n <= 512) {
        const err = relativeError(e.linearAttention(q, k, v, shape), referenceLinear(q, k, v, shape));
        if (!(err <= 1e-5)) throw new Error(`linear ${n} causal ${causal}: relative error ${err} against float64`);
      }
      const [soft, lin] = await interleaved([() => e.attention(q, k, v, shape), () => e.linearAttention(q, k, v, shape)], 2, n >= 4096);
      if (lin < soft && crossover[causal] === undefined) crossover[causal] = n;
      if (causal && n === 4096) ratio4096 = soft / lin;
      rows.push(`| ${n} | ${causal ? 'causal' : 'full'} | ${soft.toFixed(3)} | ${lin.toFixed(3)} | ${(soft / lin).toFixed(2)} |`);
    }
  }
  // The decay path (per-head γ and per-token gates) at L4096, against plain causal linear attention.
  {
    const shape = { batch: 1, heads: 8, seqQ: 4096, seqK: 4096, headDim: 64, causal: true };
    const { q, k, v } = inputsFor(shape);
    const decayed = { ...shape, decay: new Float32Array(8).fill(0.999), gates: Float32Array.from(random(8 * 4096, 9), (x) => -0.1 * Math.abs(x)) };
    const [plain, gated] = await interleaved([() => e.linearAttention(q, k, v, shape), () => e.linearAttention(q, k, v, decayed)]);
    rows.push(`| 4096, decay + gates (plain linear in the same rounds: ${plain.toFixed(3)}) | causal | — | ${gated.toFixed(3)} | — |`);
  }
  // RNN decoding: one token (seqQ = seqK = 1, with decay) through a state after 16 and after 16 384 tokens.
  const H = 8, D = 64;
  const steps = [];
  for (const position of [16, 16384]) {
    const prefill = { batch: 1, heads: H, seqQ: position, seqK: position, headDim: D, causal: true };
    const p = inputsFor(prefill);
    const state = e.createLinearState({ batch: 1, heads: H, headDim: D });
    e.linearAttention(p.q, p.k, p.v, { ...prefill, state });
    const t = inputsFor({ batch: 1, heads: H, seqQ: 1, seqK: 1, headDim: D });
    const step = { batch: 1, heads: H, seqQ: 1, seqK: 1, headDim: D, causal: true, state, decay: new Float32Array(H).fill(0.999) };
    steps.push({ position, state, run: () => e.linearAttention(t.q, t.k, t.v, step) });
  }
  const stepMs = await interleaved(steps.map((s) => s.run), 3);
  steps.forEach((s, i) => {
    rows.push(`| 1 token at position ${s.position} (state, decay) | causal | — | ${stepMs[i].toFixed(4)} | — |`);
    s.state.dispose();
  });
  const note = [false, true].map((c) => `${c ? 'causal' : 'full'}: linear is faster from seqQ = seqK = ${crossover[c] ?? '> 4096'}`).join('; ') +
    `; causal L4096: linear ${ratio4096.toFixed(1)}× faster than softmax; a single-token step costs ` +
    `${(stepMs[1] / stepMs[0]).toFixed(2)}× at position 16 384 what it costs at 16`;
  return [`Linear vs softmax attention (${e.backend}, B1 H8 D64)`,
    `${note}.\n\n| seq | mask | softmax ms | linear ms | softmax ÷ linear |\n|---|---|---:|---:|---:|\n` + rows.join('\n')];
}
