// npm run bench: every backend of the one list on S1–S5, each activation on S2, and linear vs softmax
// attention as the sequence grows — all in one process, timed with tinybench.
// Usage: node --experimental-wasm-relaxed-simd bench/attention.bench.mjs [--write] [--only S2,S3] [--skip activations,linear,long,threads,models,kvcache]
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { Bench } from 'tinybench';
import { ACTIVATIONS, BACKENDS, createAttention, isBackendSupported } from '../dist/index.js';
import { SHAPES, flops, inputsFor, optionsOf } from './shapes.mjs';
import { modelsSection } from './sections/models.mjs';
import { linearSection } from './sections/linear.mjs';
import { kvcacheSection } from './sections/kvcache.mjs';

const args = process.argv.slice(2);
const listArg = (name) => (args.includes(name) ? args[args.indexOf(name) + 1].split(',') : null);
const only = listArg('--only');
const skip = listArg('--skip') ?? [];
const shapes = SHAPES.filter((s) => only === null || only.includes(s.id));

const engines = [];
for (const { name } of BACKENDS) {
  if (isBackendSupported(name)) engines.push(await createAttention({ backend: name }));
  else console.warn(`${name}: not supported by this runtime, skipped (Node 20 needs --experimental-wasm-relaxed-simd)`);
}
const engine = (name) => engines.find((e) => e.backend === name);
const wasmEngines = engines.filter((e) => e.backend !== 'js');

function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Median ms of `fn` with tinybench; few iterations for calls that take seconds (`'once'`: tens of seconds). */
async function medianMs(name, fn, slow = false) {
  const once = slow === 'once';
  const bench = new Bench({ time: slow ? 0 : 1000, iterations: once ? 2 : slow ? 3 : 10, warmupIterations: once ? 0 : slow ? 1 : 3 });
  bench.add(name, fn);
  await bench.run();
  const result = bench.tasks[0].result;
  if (result.state !== 'completed') throw new Error(`${name}: ${result.state} ${result.error ?? ''}`);
  return { ms: result.latency.p50, samples: result.latency.samplesCount ?? bench.tasks[0].runs };
}

const sections = [];

// 1. Backends on S1–S5. Every backend's answer is checked against the JS fallback (itself tested against
// float64) before it is timed.
{
  const rows = [];
  for (const shape of shapes) {
    const { q, k, v } = inputsFor(shape);
    const options = optionsOf(shape);
    const js = engine('js').attention(q, k, v, options);
    const medians = new Map();
    for (const e of engines) {
      const err = maxAbsDiff(e.attention(q, k, v, options), js);
      if (!(err <= 1e-5)) throw new Error(`${e.backend} ${shape.id}: max abs diff ${err} vs JS`);
    }
    // The wasm backends are timed in two interleaved rounds and keep their better round median, so a burst of
    // load on the shared machine hits one round of one backend rather than the table; JS (seconds a call) once.
    for (let round = 0; round < 2; round++) {
      for (const e of engines) {
        if (e.backend === 'js' && round > 0) continue;
        const m = await medianMs(`${e.backend} ${shape.id}`, () => e.attention(q, k, v, options), e.backend === 'js' && flops(shape) > 1e9);
        const best = medians.get(e.backend);
        if (best === undefined || m.ms < best.ms) medians.set(e.backend, { ms: m.ms, samples: m.samples + (best?.samples ?? 0) });
        else best.samples += m.samples;
      }
    }
    const jsMs = medians.get('js').ms;
    for (const [backend, { ms, samples }] of medians) {
      rows.push(`| ${shape.id} ${shape.label} | ${backend} | ${ms.toFixed(2)} | ${(flops(shape) / ms / 1e6).toFixed(1)} | ${(jsMs / ms).toFixed(1)} | ${samples} |`);
    }
  }
  sections.push(['Backends on S1–S5',
    '| shape | backend | median ms | GFLOP/s | × JS | samples |\n|---|---|---:|---:|---:|---:|\n' + rows.join('\n')]);
  console.log(sections.at(-1)[1] + '\n');
}

// 2. Each activation on S2, next to softmax (wasm backends; weights are not materialised).
if (!skip.includes('activations') && (only === null || only.includes('S2'))) {
  const shape = SHAPES.find((s) => s.id === 'S2');
  const { q, k, v } = inputsFor(shape);
  const rows = [];
  for (const e of wasmEngines) {
    let softmaxMs = NaN;
    for (const activation of ACTIVATIONS) {
      const options = { ...optionsOf(shape), activation };
      const err = maxAbsDiff(e.attention(q, k, v, options), engine('js').attention(q, k, v, options));
      if (!(err <= 1e-4)) throw new Error(`${e.backend} ${activation}: max abs diff ${err} vs JS`);
      const { ms, samples } = await medianMs(`${e.backend} ${activation}`, () => e.attention(q, k, v, options));
      if (activation === 'softmax') softmaxMs = ms;
      rows.push(`| ${activation} | ${e.backend} | ${ms.toFixed(2)} | ${(flops(shape) / ms / 1e6).toFixed(1)} | ${(softmaxMs / ms).toFixed(2)} | ${samples} |`);
    }
  }
  sections.push(['Activations on S2 (B1 H12 L512 D64)',
    '| activation | backend | median ms | GFLOP/s | speed vs softmax | samples |\n|---|---|---:|---:|---:|---:|\n' + rows.join('\n')]);
  console.log(sections.at(-1)[1] + '\n');
}

// 3. Linear attention against softmax as the sequence grows, and RNN steps through a state (bench/sections/linear.mjs).
if (!skip.includes('linear')) {
  sections.push(await linearSection(wasmEngines[0] ?? engine('js')));
  console.log(sections.at(-1)[1] + '\n');
}

// 4. Long context (no L×L matrix) and KV-cache decode steps against the one-shot call, per wasm backend.
if (!skip.includes('long')) {
  const rows = [];
  const long = { batch: 1, heads: 8, seqQ: 16384, seqK: 16384, headDim: 64 };
  const { q, k, v } = inputsFor(long);
  for (const e of wasmEngines) {
    const fresh = await createAttention({ backend: e.backend });
    const { ms, samples } = await medianMs(`${e.backend} L16384`, () => fresh.attention(q, k, v, long), 'once');
    const extra = (fresh.memoryBytes - 4 * q.byteLength) / 2 ** 20;
    rows.push(`| B1 H8 L16384 D64, one call | ${e.backend} | ${ms.toFixed(0)} | ${(flops(long) / ms / 1e6).toFixed(1)} | ` +
      `wasm memory ${(fresh.memoryBytes / 2 ** 20).toFixed(0)} MiB: ${extra.toFixed(1)} MiB beyond q, k, v, out | ${samples} |`);
    fresh.dispose();
  }
  // S4 decode: the whole call (copies all of K/V) against a KV-cache step (append one token + attend).
  const s4 = SHAPES.find((x) => x.id === 'S4');
  const d = inputsFor(s4);
  const { heads, seqK, headDim } = s4;
  const tokens = (x, from, to) => {
    const out = new Float32Array(heads * (to - from) * headDim);
    for (let h = 0; h < heads; h++) out.set(x.subarray((h * seqK + from) * headDim, (h * seqK + to) * headDim), h * (to - from) * headDim);
    return out;
  };
  const [k0, v0, k1, v1] = [tokens(d.k, 0, seqK - 1), tokens(d.v, 0, seqK - 1), tokens(d.k, seqK - 1, seqK), tokens(d.v, seqK - 1, seqK)];
  for (const e of wasmEngines) {
    const whole = await medianMs(`${e.backend} S4`, () => e.attention(d.q, d.k, d.v, optionsOf(s4)));
    const cache = e.createKVCache({ batch: 1, kvHeads: heads, headDim, capacity: seqK + 2048 });
    cache.append(k0, v0);
    const step = () => {
      cache.append(k1, v1);
      return cache.attend(d.q, { heads, seqQ: 1, causal: 'bottom-right' });
    };
    const err = maxAbsDiff(step(), e.attention(d.q, d.k, d.v, optionsOf(s4)));
    if (!(err <= 1e-5)) throw new Error(`${e.backend} KV cache: max abs diff ${err} vs one-shot`);
    const cached = await medianMs(`${e.backend} S4 KV step`, step);
    rows.push(`| S4 decode, whole call | ${e.backend} | ${whole.ms.toFixed(2)} | ${(flops(s4) / whole.ms / 1e6).toFixed(1)} | copies 128 MiB of K/V per call | ${whole.samples} |`);
    rows.push(`| S4 decode, KV-cache step | ${e.backend} | ${cached.ms.toFixed(2)} | ${(flops(s4) / cached.ms / 1e6).toFixed(1)} | ` +
      `${(whole.ms / cached.ms).toFixed(1)}× faster than the whole call; cache length ${seqK}–${cache.length} | ${cached.samples} |`);
    cache.dispose();
  }
  sections.push(['Long context and decode',
    '| case | backend | median ms | GFLOP/s | note | samples |\n|---|---|---:|---:|---|---:|\n' + rows.join('\n')]);
  console.log(sections.at(-1)[1] + '\n');
}

// 5. Threads: the same calls on a threaded engine (options.threads) against one thread, in interleaved rounds.
if (!skip.includes('threads') && wasmEngines.length > 0) {
  const backend = wasmEngines[0].backend;
  const counts = [...new Set([2, os.availableParallelism?.() ?? os.cpus().length])].filter((n) => n >= 2).sort((a, b) => a - b);
  const threaded = [wasmEngines[0]];
  for (const threads of counts) threaded.push(await createAttention({ backend, threads }));
  const rows = [];
  const kvStep = (e, d, s) => {
    const cache = e.createKVCache({ batch: 1, kvHeads: s.heads, headDim: s.headDim, capacity: s.seqK + 4096 });
    cache.append(d.k, d.v);
    const q = d.q;
    const k1 = d.k.subarray(0, s.heads * s.headDim);
    const v1 = d.v.subarray(0, s.heads * s.headDim);
    const run = () => {
      if (cache.length === cache.capacity) cache.reset(), cache.append(d.k, d.v);
      cache.append(k1, v1);
      return cache.attend(q, { heads: s.heads, seqQ: 1, causal: 'bottom-right' });
    };
    return { run, dispose: () => cache.dispose() };
  };
  for (const shape of shapes) {
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
      const best = runs.map(() => Infinity);
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < runs.length; i++) {
          const { ms } = await medianMs(`${c.label} ${threaded[i].threads}t`, runs[i].run, flops(shape) > 1e9);
          best[i] = Math.min(best[i], ms);
        }
      }
      runs.forEach((r) => r.dispose());
      rows.push(`| ${c.label} | ${threaded.map((e, i) => `${best[i].toFixed(2)}`).join(' | ')} | ` +
        `${threaded.slice(1).map((e, i) => `${(best[0] / best[i + 1]).toFixed(2)}×`).join(' | ')} |`);
    }
  }
  const head = `| case | ${threaded.map((e) => `${e.threads} thread${e.threads > 1 ? 's' : ''} ms`).join(' | ')} | ` +
    `${counts.map((n) => `speed-up ${n}`).join(' | ')} |\n|---|${threaded.map(() => '---:').join('|')}|${counts.map(() => '---:').join('|')}|`;
  sections.push([`Threads (${backend}, options.threads)`,
    `Whole calls as in the first table; threaded results are checked identical to one thread's. ` +
    `Speed-up = one thread's median ÷ the threaded median, measured in the same interleaved rounds.\n\n${head}\n${rows.join('\n')}`]);
  console.log(sections.at(-1)[1] + '\n');
  threaded.slice(1).forEach((e) => e.dispose());
}

// 6. The options real models need: window, block-sparse mask, ALiBi, sinks, RoPE (bench/sections/models.mjs).
if (!skip.includes('models') && wasmEngines.length > 0) {
  sections.push(await modelsSection(wasmEngines[0]));
  console.log(sections.at(-1)[1] + '\n');
}

// 7. KV caches in float32, float16 and int8 on 1 and 2 threads, onnxruntime-web's S4 call alongside
// (bench/sections/kvcache.mjs).
if (!skip.includes('kvcache') && wasmEngines.length > 0) {
  const backend = wasmEngines[0].backend;
  const engines = new Map([[1, wasmEngines[0]], [2, await createAttention({ backend, threads: 2 })]]);
  const ort = async () => (await import('./peers/ort.mjs')).createOrtPeer('plain', SHAPES.find((x) => x.id === 'S4'));
  const [title, body] = await kvcacheSection(engines, ort);
  sections.push([`${title}, ${backend}`, body]);
  console.log(sections.at(-1)[1] + '\n');
  engines.get(2).dispose();
}

const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
  `Node ${process.version} (${process.execArgv.join(' ') || 'no flags'}), ${os.platform()} ${os.arch()}`;
console.log(machine);

if (args.includes('--write')) {
  const file = new URL('./RESULTS.md', import.meta.url);
  // Keep the sections that `npm run bench:browser` and `npm run bench:peers -- --write` maintain.
  let kept = '';
  try {
    const old = readFileSync(file, 'utf8');
    for (const key of ['browsers', 'peers']) {
      const start = old.indexOf(`<!-- ${key}:start -->`);
      const end = old.indexOf(`<!-- ${key}:end -->`);
      if (start >= 0 && end > start) kept += old.slice(start, end + `<!-- ${key}:end -->`.length) + '\n\n';
    }
    kept = kept.replace(/\n\n$/, '\n');
  } catch {}
  const date = new Date().toISOString().slice(0, 10);
  writeFileSync(file, `# Benchmark results

Measured ${date} with \`npm run bench -- --write\` (one process, everything side by side; one thread except in the Threads section).

- Machine: ${machine}
- Each call is a whole \`engine.attention(q, k, v, options)\`: copies into wasm memory, kernel, copy out.
- GFLOP/s counts 4·B·H·Lq·Lk·D for every shape, causal (S5) included, as the peer table in shared/README.md does.
- Ratios (× JS, speed vs softmax, softmax ÷ linear) divide medians from this same run. The machine is shared
  and noisy: treat single numbers as ±20 %, ratios from one run as the comparison. In the first table the
  wasm backends are timed in two interleaved rounds and keep the better round median (samples: both rounds).

${sections.map(([title, body]) => `## ${title}\n\n${body}\n`).join('\n')}
${kept}`);
  console.log('wrote bench/RESULTS.md');
}
for (const e of engines) e.dispose();
