// The benchmark tables of `npm run bench` for a browser page: S1–S5 and the model shapes on every backend the
// engine supports (wasm relaxed SIMD, wasm SIMD, JS), then 1 against 2 threads where the page can share memory.
// Plain ES module, no Node APIs: `npm run bench:browser` runs it in each installed browser (run.mjs) and the
// demo's "benchmark this browser" button runs it in the visitor's. Measured as the Node bench measures:
// every answer checked against the JS backend before it is timed, a whole call per run (copies in and out
// included), medians, the wasm backends (and 1 vs 2 threads) in two interleaved rounds keeping each one's better
// round, JS once; GFLOP/s counts 4·B·H·Lq·Lk·D for every shape, causal included; ratios are of medians of this
// same run. Browsers coarsen performance.now() (to 100 µs–1 ms without cross-origin isolation), so each
// sample times a batch of calls lasting at least SAMPLE_MS.
import { MODEL_SHAPES, SHAPES, flops, inputsFor, optionsOf } from '../shapes.mjs';

const SAMPLE_MS = 20;
const SCOPES = {
  full: { shapes: SHAPES, models: MODEL_SHAPES, budgetMs: 1000 },
  // A quick look (and what the test suite clicks): two shapes, a fraction of the time.
  quick: { shapes: SHAPES.filter((s) => s.id === 'S1'), models: MODEL_SHAPES.filter((s) => s.decode), budgetMs: 150 },
};

const pause = () => new Promise((r) => setTimeout(r, 0));

function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

/** Median ms per call of `run`: batches of ≥ SAMPLE_MS, for ~budgetMs and ≥ 10 samples; `slow`: 3 single calls. */
async function measure(run, budgetMs, slow) {
  let reps = 1;
  if (!slow) {
    const t0 = performance.now();
    run();
    reps = Math.max(1, Math.ceil(SAMPLE_MS / Math.max(performance.now() - t0, 0.05)));
  }
  const samples = [];
  const start = performance.now();
  while (samples.length < 3 || (!slow && samples.length < 10) || (!slow && performance.now() - start < budgetMs && samples.length < 200)) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) run();
    samples.push((performance.now() - t0) / reps);
    await pause();
  }
  samples.sort((a, b) => a - b);
  return { ms: samples[samples.length >> 1], calls: samples.length * reps };
}

/** A benchmark case: a whole call, or (decode shapes) one KV-cache step: append a token, attend with it. */
function caseOf(shape) {
  const { decode, ...rest } = optionsOf(shape);
  const options = rest;
  const d = inputsFor(shape);
  const label = `${shape.id} ${shape.label}`;
  if (!decode) {
    return { label, flops: flops(shape), want: null, make: (e) => ({ run: () => e.attention(d.q, d.k, d.v, options), dispose() {} }) };
  }
  const { heads, seqK, headDim } = shape;
  const kvHeads = shape.kvHeads ?? heads;
  const tokens = (x, from, to) => {
    const out = new Float32Array(kvHeads * (to - from) * headDim);
    for (let h = 0; h < kvHeads; h++) out.set(x.subarray((h * seqK + from) * headDim, (h * seqK + to) * headDim), h * (to - from) * headDim);
    return out;
  };
  const [k0, v0, k1, v1] = [tokens(d.k, 0, seqK - 1), tokens(d.v, 0, seqK - 1), tokens(d.k, seqK - 1, seqK), tokens(d.v, seqK - 1, seqK)];
  return {
    label, flops: flops(shape),
    make(e) {
      const cache = e.createKVCache({ batch: 1, kvHeads, headDim, capacity: seqK + 1024 });
      cache.append(k0, v0);
      return {
        // The first step's answer is the whole call's; later steps attend over a growing cache, as decoding does.
        first: () => (cache.append(k1, v1), cache.attend(d.q, { heads, seqQ: 1, causal: 'bottom-right' })),
        run() {
          if (cache.length === cache.capacity) cache.reset(), cache.append(k0, v0);
          cache.append(k1, v1);
          return cache.attend(d.q, { heads, seqQ: 1, causal: 'bottom-right' });
        },
        dispose: () => cache.dispose(),
      };
    },
  };
}

/** One table row per backend and case: checked against JS, then timed in interleaved rounds (JS once). */
async function backendTable(title, shapes, engines, budgetMs, progress) {
  const rows = [];
  for (const shape of shapes) {
    const c = caseOf(shape);
    const runs = engines.map((e) => c.make(e));
    const answers = runs.map((r) => (r.first ? r.first() : r.run()));
    const js = answers[engines.findIndex((e) => e.backend === 'js')];
    answers.forEach((answer, i) => {
      const err = maxAbsDiff(answer, js);
      if (!(err <= 1e-5)) throw new Error(`${engines[i].backend} ${c.label}: max abs diff ${err} vs JS`);
    });
    const best = engines.map(() => ({ ms: Infinity, calls: 0 }));
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < engines.length; i++) {
        if (engines[i].backend === 'js' && round > 0) continue;
        progress(`${title}: ${c.label}, ${engines[i].backend}, round ${round + 1}`);
        const m = await measure(runs[i].run, budgetMs, engines[i].backend === 'js' && c.flops > 1e9);
        best[i] = { ms: Math.min(best[i].ms, m.ms), calls: best[i].calls + m.calls };
      }
    }
    runs.forEach((r) => r.dispose());
    const jsMs = best[engines.findIndex((e) => e.backend === 'js')].ms;
    engines.forEach((e, i) => rows.push([c.label, e.backend, best[i].ms.toFixed(2), (c.flops / best[i].ms / 1e6).toFixed(1), (jsMs / best[i].ms).toFixed(1), String(best[i].calls)]));
  }
  return { title, head: ['case', 'backend', 'median ms', 'GFLOP/s', '× JS', 'calls'], rows };
}

/** 1 against 2 threads on the best wasm backend, in the same interleaved rounds; results must be identical. */
async function threadTable(shapes, single, threaded, budgetMs, progress) {
  const rows = [];
  const engines = [single, threaded];
  for (const shape of shapes) {
    const c = caseOf(shape);
    const runs = engines.map((e) => c.make(e));
    const answers = runs.map((r) => (r.first ? r.first() : r.run()));
    if (maxAbsDiff(answers[0], answers[1]) !== 0) throw new Error(`${c.label}: 2 threads differ from 1`);
    const best = [Infinity, Infinity];
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 2; i++) {
        progress(`Threads: ${c.label}, ${engines[i].threads} thread${i ? 's' : ''}, round ${round + 1}`);
        best[i] = Math.min(best[i], (await measure(runs[i].run, budgetMs, false)).ms);
      }
    }
    runs.forEach((r) => r.dispose());
    rows.push([c.label, best[0].toFixed(2), best[1].toFixed(2), `${(best[0] / best[1]).toFixed(2)}×`]);
  }
  return {
    title: `Threads (${single.backend}, options.threads)`,
    note: 'Whole calls (KV-cache step for decode); 2-thread results checked identical to 1 thread. Speed-up = 1 thread ÷ 2 threads, same rounds.',
    head: ['case', '1 thread ms', '2 threads ms', 'speed-up 2'], rows,
  };
}

/** What this browser offers the package. */
export async function detect(pkg) {
  const supported = pkg.BACKENDS.map((b) => b.name).filter((n) => pkg.isBackendSupported(n));
  const auto = await pkg.createAttention();
  const picked = auto.backend;
  auto.dispose();
  let threads = 'available';
  try {
    (await pkg.createAttention({ threads: 2 })).dispose();
  } catch (e) {
    threads = `unavailable: ${e.message}`;
  }
  let resolution = Infinity;
  for (let i = 0, last = performance.now(); i < 1e6 && resolution === Infinity; i++) {
    const now = performance.now();
    if (now > last) resolution = now - last;
    last = now;
  }
  return {
    userAgent: navigator.userAgent, cores: navigator.hardwareConcurrency, crossOriginIsolated: globalThis.crossOriginIsolated === true,
    picked, supported, threads, timerResolutionMs: resolution,
  };
}

/**
 * Runs the tables. `scope`: 'full' (S1–S5 and the model shapes) or 'quick'; `progress(text)` hears what is being
 * timed. Resolves to { env, scope, sections: [{ title, note?, head, rows }] }.
 */
export async function runBenchmark(pkg, { scope = 'full', progress = () => undefined } = {}) {
  const { shapes, models, budgetMs } = SCOPES[scope];
  const env = await detect(pkg);
  const engines = [];
  for (const name of env.supported) engines.push(await pkg.createAttention({ backend: name }));
  const sections = [];
  try {
    sections.push(await backendTable('Backends on S1–S5', shapes, engines, budgetMs, progress));
    sections.push(await backendTable('Model shapes', models, engines, budgetMs, progress));
    const wasm = engines.find((e) => e.backend !== 'js');
    if (env.threads === 'available' && wasm) {
      const two = await pkg.createAttention({ backend: wasm.backend, threads: 2 });
      try {
        sections.push(await threadTable([...shapes, ...models], wasm, two, budgetMs, progress));
      } finally {
        two.dispose();
      }
    } else {
      sections.push({ title: 'Threads', note: `Not measured: createAttention({ threads: 2 }) is ${env.threads}`, head: [], rows: [] });
    }
  } finally {
    engines.forEach((e) => e.dispose());
  }
  return { env, scope, sections };
}

/** The sections as Markdown tables under `level` headings. */
export function toMarkdown({ sections }, level = '###') {
  return sections.map(({ title, note, head, rows }) => {
    const table = head.length === 0 ? '' : `| ${head.join(' | ')} |\n|${head.map((_, i) => (i < (head[1] === 'backend' ? 2 : 1) ? '---' : '---:')).join('|')}|\n` +
      rows.map((r) => `| ${r.join(' | ')} |`).join('\n') + '\n';
    return `${level} ${title}\n\n${note ? `${note}\n\n` : ''}${table}`;
  }).join('\n');
}
