// Threads: S1–S5 (and the S4 KV-cache step) on threaded engines (options.threads) against one thread, in
// interleaved rounds. Threaded results are checked identical to one thread's first.
import os from 'node:os';
import { flops, inputsFor, optionsOf } from '../shapes.mjs';
import { computedFlops, interleaved, maxAbsDiff, shareOf } from './timing.mjs';

export async function threadsSection({ wasmEngines, shapes, createAttention, peak }) {
  const backend = wasmEngines[0].backend;
  const counts = [...new Set([2, os.availableParallelism?.() ?? os.cpus().length])].filter((n) => n >= 2).sort((a, b) => a - b);
  const threaded = [wasmEngines[0]];
  for (const threads of counts) threaded.push(await createAttention({ backend, threads }));
  const rows = [];
  const kvStep = (e, d, s) => {
    const cache = e.createKVCache({ batch: 1, kvHeads: s.heads, headDim: s.headDim, capacity: s.seqK + 4096 });
    cache.append(d.k, d.v);
    const k1 = d.k.subarray(0, s.heads * s.headDim);
    const v1 = d.v.subarray(0, s.heads * s.headDim);
    const run = () => {
      if (cache.length === cache.capacity) cache.reset(), cache.append(d.k, d.v);
      cache.append(k1, v1);
      return cache.attend(d.q, { heads: s.heads, seqQ: 1, causal: 'bottom-right' });
    };
    return { run, dispose: () => cache.dispose() };
  };
  for (const shape of shapes) {
    peak.measure();
    const d = inputsFor(shape);
    const options = optionsOf(shape);
    const want = threaded[0].attention(d.q, d.k, d.v, options);
    const cases = [{ label: `${shape.id} ${shape.label}`, make: (e) => ({ run: () => e.attention(d.q, d.k, d.v, options), dispose() {} }) }];
    if (shape.id === 'S4') cases.push({ label: 'S4 decode, KV-cache step', make: (e) => kvStep(e, d, shape) });
    for (const c of cases) {
      const runs = threaded.map((e) => c.make(e));
      if (c.label === cases[0].label) {
        for (const r of runs) if (maxAbsDiff(r.run(), want) !== 0) throw new Error(`${c.label}: threaded result differs from one thread`);
      }
      // Three rounds: a 2-thread row needs both cores quiet, and a burst on the other core is common here.
      const timed = await interleaved(runs.map((r) => r.run), { rounds: 3, slow: flops(shape) > 1e9, name: c.label });
      const best = timed.map((t) => t.ms);
      runs.forEach((r) => r.dispose());
      const share = (i) => shareOf(computedFlops(shape) / best[i] / 1e6, peak.gflops, threaded[i].threads);
      rows.push(`| ${c.label} | ${threaded.map((e, i) => `${best[i].toFixed(2)} (${share(i)})`).join(' | ')} | ` +
        `${threaded.slice(1).map((e, i) => `${(best[0] / best[i + 1]).toFixed(2)}×`).join(' | ')} |`);
    }
  }
  threaded.slice(1).forEach((e) => e.dispose());
  const head = `| case | ${threaded.map((e) => `${e.threads} thread${e.threads > 1 ? 's' : ''} ms (% of peak × threads)`).join(' | ')} | ` +
    `${counts.map((n) => `speed-up ${n}`).join(' | ')} |\n|---|${threaded.map(() => '---:').join('|')}|${counts.map(() => '---:').join('|')}|`;
  return [`Threads (${backend}, options.threads)`,
    'Whole calls as in the first table; threaded results are checked identical to one thread\'s. Speed-up = one ' +
    'thread\'s median ÷ the threaded median, measured in the same interleaved rounds (three; each keeps its better round). Calls below the cost model\'s ' +
    `threshold (2 MFLOP) run on the caller alone.\n\n${head}\n${rows.join('\n')}`];
}
