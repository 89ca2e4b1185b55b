// Per-call overhead: the tiny call B1 H1 L1 S1 D32 (validation, the parameter block, copies, one kernel call), on
// every backend, with a new output array and into a given `out`, and a threaded engine's (a call this small runs
// on the caller alone). Each call is timed on its own; medians of 20 000 calls, best of 3 interleaved rounds.
import { random } from '../../test/runtimes/cases.mjs';

function medianCallUs(fn, calls) {
  for (let i = 0; i < 1000; i++) fn();
  const t = new Float64Array(calls);
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    fn();
    t[i] = performance.now() - t0;
  }
  t.sort();
  return t[calls >> 1] * 1000;
}

export async function overheadSection({ engines, createAttention }) {
  const options = { batch: 1, heads: 1, seqQ: 1, seqK: 1, headDim: 32 };
  const q = random(32, 1), k = random(32, 2), v = random(32, 3);
  const out = new Float32Array(32);
  const threaded = await createAttention({ backend: engines[0].backend, threads: 2 });
  const runners = [];
  for (const e of [...engines, threaded]) {
    const name = `${e.backend}${e.threads > 1 ? `, threads: ${e.threads}` : ''}`;
    runners.push({ name, how: 'new output', fn: () => e.attention(q, k, v, options) });
    const withOut = { ...options, out };
    runners.push({ name, how: '`out` given', fn: () => e.attention(q, k, v, withOut) });
  }
  const best = runners.map(() => Infinity);
  for (let round = 0; round < 3; round++) {
    runners.forEach((r, i) => (best[i] = Math.min(best[i], medianCallUs(r.fn, 20000))));
  }
  threaded.dispose();
  return ['Per-call overhead (B1 H1 L1 S1 D32)',
    '| backend | output | median µs per call |\n|---|---|---:|\n' +
    runners.map((r, i) => `| ${r.name} | ${r.how} | ${best[i].toFixed(2)} |`).join('\n')];
}
