// What every benchmark section shares: tinybench medians, interleaved rounds, the in-run wasm peak, FLOP counts
// and answer checks. The machine is shared and noisy, so sections time the things they compare in interleaved
// rounds (a burst of load then hits one round of one runner, not the table) and keep each runner's better round.
import { Bench } from 'tinybench';
import { measurePeak, measureTiles } from './peak.mjs';

/** Median ms of `fn` (sync or async) with tinybench; few iterations for calls of a second or more (`'once'`: tens). */
export async function medianMs(name, fn, slow = false) {
  const once = slow === 'once';
  const bench = new Bench({ time: slow ? 0 : 1000, iterations: once ? 2 : slow ? 3 : 10, warmupIterations: once ? 0 : slow ? 1 : 3 });
  bench.add(name, fn);
  await bench.run();
  const result = bench.tasks[0].result;
  if (result.state !== 'completed') throw new Error(`${name}: ${result.state} ${result.error ?? ''}`);
  return { ms: result.latency.p50, samples: result.latency.samplesCount ?? bench.tasks[0].runs };
}

/** Median ms of `fn` over exactly `iterations` runs (after `warmup`), for A/B rounds of a fixed length. */
export async function fixedMedian(fn, iterations, warmup = 1) {
  const bench = new Bench({ time: 0, iterations, warmupIterations: warmup });
  bench.add('x', fn);
  await bench.run();
  const r = bench.tasks[0].result;
  if (r.state !== 'completed') throw new Error(`${r.state} ${r.error ?? ''}`);
  return r.latency.p50;
}

/** Each function's better round median over `rounds` interleaved rounds, with the samples of all rounds. */
export async function interleaved(fns, { rounds = 2, slow = false, name = 'x' } = {}) {
  const best = fns.map(() => ({ ms: Infinity, samples: 0 }));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < fns.length; i++) {
      const m = await medianMs(`${name} ${i}`, fns[i], slow);
      best[i].ms = Math.min(best[i].ms, m.ms);
      best[i].samples += m.samples;
    }
  }
  return best;
}

export function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * This machine's wasm FMA peak for the run: measured when a section starts (so every section has a measurement
 * next to its timings) and kept at its best, since load from other processes only ever lowers it. The tile loops
 * alone (peak.mjs measureTiles) are measured with it; `tiles` keeps the best median and the best round of each.
 */
export function peakTracker() {
  const seen = [];
  const tiles = [];
  return {
    measure() {
      const m = measurePeak();
      seen.push(m.gflops);
      this.relaxed = m.relaxed;
      const t = measureTiles();
      if (t !== null) tiles.push(t);
      return m.gflops;
    },
    /** { qk, pv, count }: [best median, best round] over the measurements as shares of the run's peak, or null
     * without the testing build. */
    get tiles() {
      if (tiles.length === 0) return null;
      const best = (key, i) => Math.max(...tiles.map((t) => t[key][i])) / Math.max(...seen);
      return { qk: [best('qk', 0), best('qk', 1)], pv: [best('pv', 0), best('pv', 1)], count: tiles.length };
    },
    get gflops() {
      return Math.max(...seen);
    },
    get lowest() {
      return Math.min(...seen);
    },
    get count() {
      return seen.length;
    },
    relaxed: true,
  };
}

/** Keys query row i of a shape admits (causal alignment as in the API; no window or mask). */
function admitted(s, i) {
  if (!s.causal) return s.seqK;
  const limit = s.causal === 'bottom-right' ? i + s.seqK - s.seqQ + 1 : i + 1;
  return Math.max(0, Math.min(s.seqK, limit));
}

/** FLOPs the kernels compute: 4·B·H·D·Σ_i (keys row i admits) — for causal shapes about half of 4·B·H·L·S·D. */
export function computedFlops(s) {
  let keys = 0;
  for (let i = 0; i < s.seqQ; i++) keys += admitted(s, i);
  return 4 * s.batch * s.heads * keys * s.headDim;
}

/** "x %" of the peak for `gflops` on `threads` threads. */
export const shareOf = (gflops, peak, threads = 1) => `${((100 * gflops) / (peak * threads)).toFixed(0)} %`;
