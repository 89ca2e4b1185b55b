// npm run bench: this machine's wasm FMA peak, per-call overhead, every backend on S1–S5, each activation on S2,
// linear vs softmax attention, long context and decode, threads, real model shapes against onnxruntime-web and
// the options real models need — all in one process, each section a module of bench/sections/.
// Usage: node --experimental-wasm-relaxed-simd bench/attention.bench.mjs [--write] [--only S2,S3]
//   [--skip overhead,activations,linear,long,threads,model-shapes,models,kvcache]
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { ACTIVATIONS, BACKENDS, createAttention, isBackendSupported } from '../dist/index.js';
import { SHAPES } from './shapes.mjs';
import { activationsSection } from './sections/activations.mjs';
import { backendsSection } from './sections/backends.mjs';
import { linearSection } from './sections/linear.mjs';
import { longSection } from './sections/long.mjs';
import { modelShapesSection } from './sections/model-shapes.mjs';
import { modelsSection } from './sections/models.mjs';
import { overheadSection } from './sections/overhead.mjs';
import { threadsSection } from './sections/threads.mjs';
import { kvcacheSection } from './sections/kvcache.mjs';
import { peakTracker } from './sections/timing.mjs';

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
const peak = peakTracker();
peak.measure();
const ctx = { engines, engine, wasmEngines, shapes, peak, createAttention, ACTIVATIONS };

// [name for --skip, runs here?, section]
const plan = [
  ['overhead', true, overheadSection],
  ['backends', true, backendsSection],
  ['activations', only === null || only.includes('S2'), activationsSection],
  ['linear', true, (c) => linearSection(c.wasmEngines[0] ?? c.engine('js'))],
  ['long', wasmEngines.length > 0, longSection],
  ['threads', wasmEngines.length > 0, threadsSection],
  ['model-shapes', wasmEngines.length > 0 && only === null, modelShapesSection],
  ['models', wasmEngines.length > 0, (c) => modelsSection(c.wasmEngines[0])],
  // KV caches in float32, float16 and int8 on 1 and 2 threads, onnxruntime-web's S4 call alongside.
  ['kvcache', wasmEngines.length > 0, async (c) => {
    const backend = c.wasmEngines[0].backend;
    const threaded = await createAttention({ backend, threads: 2 });
    const ort = async () => (await import('./peers/ort.mjs')).createOrtPeer('plain', SHAPES.find((x) => x.id === 'S4'));
    try {
      const [title, body] = await kvcacheSection(new Map([[1, c.wasmEngines[0]], [2, threaded]]), ort);
      return [`${title}, ${backend}`, body];
    } finally {
      threaded.dispose();
    }
  }],
];
const sections = [];
for (const [name, runs, section] of plan) {
  if (!runs || skip.includes(name)) continue;
  peak.measure();
  sections.push(await section(ctx));
  console.log(`## ${sections.at(-1)[0]}\n\n${sections.at(-1)[1]}\n`);
}
peak.measure();
const tiles = wasmEngines.length > 0 ? peak.tiles : null;

const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
  `Node ${process.version} (${process.execArgv.join(' ') || 'no flags'}), ${os.platform()} ${os.arch()}`;
const peakLine = `${peak.gflops.toFixed(1)} GFLOP/s on one core (${peak.relaxed ? '12 independent f32x4.relaxed_madd chains' :
  '12 independent f32x4.mul + add chains: no relaxed SIMD here'}; the best of ${peak.count} measurements spread over the run, ` +
  `lowest ${peak.lowest.toFixed(1)})`;
const share = ([median, best]) => `median ${(100 * median).toFixed(0)} %, best round ${(100 * best).toFixed(0)} %`;
const tileLine = tiles === null ? null : `f32-qk-4x8 ${share(tiles.qk)} and f32-pv-4x8 ${share(tiles.pv)} of the peak (data in L1; ` +
  `each measurement 40 rounds of ≈ 1 ms, the best of ${tiles.count} measured beside the peak's, bench/sections/peak.mjs ` +
  'measureTiles). Every FLOP of a call is done in such loops, so this (at D = 64) bounds every "% of peak" below; ' +
  '`npm run profile -- SHAPE` shows where a call spends the rest';
console.log(`${machine}\nwasm peak: ${peakLine}${tileLine ? `\ntile loops alone: ${tileLine}` : ''}`);

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

Measured ${date} with \`npm run bench -- --write\` (one process, everything side by side; one thread except where a
table says threads).

- Machine: ${machine}
- Wasm peak of this machine: ${peakLine}, measured by bench/sections/peak.mjs in this run. "% of peak" divides a
  row's GFLOP/s by it (by threads × it for threaded rows).
${tileLine ? `- The kernels' register-tile loops alone: ${tileLine}.\n` : ''}- Each call is a whole \`engine.attention(q, k, v, options)\`: copies into wasm memory, kernel, copy out.
- GFLOP/s counts 4·B·H·Lq·Lk·D for every shape, causal included, as the peer table in shared/README.md does;
  causal rows also give the rate counting only the computed (admitted) half.
- Ratios (× JS, speed vs softmax, softmax ÷ linear, speed-ups, ours vs ORT) divide medians from this same run. The
  machine is shared and noisy: treat single numbers as ±20 %, ratios from one run as the comparison. Runners
  compared in a table are timed in interleaved rounds and keep their better round median.

${sections.map(([title, body]) => `## ${title}\n\n${body}\n`).join('\n')}
${kept}`);
  console.log('wrote bench/RESULTS.md');
}
for (const e of engines) e.dispose();
