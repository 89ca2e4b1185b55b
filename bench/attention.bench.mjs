// npm run bench: every backend of the one list on S1–S5, in one process, timed with tinybench.
// Usage: node --experimental-wasm-relaxed-simd bench/attention.bench.mjs [--write] [--only S2,S3]
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { Bench } from 'tinybench';
import { BACKENDS, createAttention, isBackendSupported } from '../dist/index.js';
import { SHAPES, flops, inputsFor, optionsOf } from './shapes.mjs';

const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : null;
const shapes = SHAPES.filter((s) => only === null || only.includes(s.id));

const engines = [];
for (const { name } of BACKENDS) {
  if (isBackendSupported(name)) engines.push(await createAttention({ backend: name }));
  else console.warn(`${name}: not supported by this runtime, skipped (Node 20 needs --experimental-wasm-relaxed-simd)`);
}

function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const rows = [];
for (const shape of shapes) {
  const { q, k, v } = inputsFor(shape);
  const options = optionsOf(shape);
  // Every backend's answer is checked against the JS fallback before it is timed.
  const js = engines.find((e) => e.backend === 'js').attention(q, k, v, options);
  const medians = new Map();
  for (const engine of engines) {
    const err = maxAbsDiff(engine.attention(q, k, v, options), js);
    if (!(err <= 1e-5)) throw new Error(`${engine.backend} ${shape.id}: max abs diff ${err} vs JS`);
    const slow = engine.backend === 'js' && flops(shape) > 1e9;
    // tinybench runs at least `iterations` and at least `time` ms; the JS fallback on S3 takes seconds a call.
    const bench = new Bench({ time: slow ? 0 : 1500, iterations: slow ? 3 : 10, warmupIterations: slow ? 1 : 5 });
    bench.add(engine.backend, () => engine.attention(q, k, v, options));
    await bench.run();
    const result = bench.tasks[0].result;
    if (result.state !== 'completed') throw new Error(`${engine.backend} ${shape.id}: ${result.state}`);
    medians.set(engine.backend, { ms: result.latency.p50, samples: result.latency.samplesCount ?? bench.tasks[0].runs });
  }
  const jsMs = medians.get('js').ms;
  for (const [backend, { ms, samples }] of medians) {
    rows.push({ shape: `${shape.id} ${shape.label}`, backend, ms, gflops: flops(shape) / ms / 1e6, vsJs: jsMs / ms, samples });
  }
}

const header = '| shape | backend | median ms | GFLOP/s | × JS | samples |\n|---|---|---:|---:|---:|---:|';
const table = rows.map((r) => `| ${r.shape} | ${r.backend} | ${r.ms.toFixed(2)} | ${r.gflops.toFixed(1)} | ${r.vsJs.toFixed(1)} | ${r.samples} |`);
const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
  `Node ${process.version} (${process.execArgv.join(' ') || 'no flags'}), ${os.platform()} ${os.arch()}`;
const markdown = [header, ...table].join('\n');
console.log(`\n${machine}\n\n${markdown}\n`);

if (args.includes('--write')) {
  const date = new Date().toISOString().slice(0, 10);
  writeFileSync(new URL('./RESULTS.md', import.meta.url), `# Benchmark results

Measured ${date} with \`npm run bench -- --write\` (one process, one thread, all backends side by side).

- Machine: ${machine}
- Each call is a whole \`engine.attention(q, k, v, options)\`: copies into wasm memory, kernel, copy out.
- GFLOP/s counts 4·B·H·Lq·Lk·D for every shape, causal (S5) included, as the peer table in shared/README.md does.
- × JS is the JS fallback's median divided by the row's median, both from this run. The machine is shared and
  noisy: treat single numbers as ±20 %, ratios from one run as the comparison.

${markdown}
`);
  console.log('wrote bench/RESULTS.md');
}
for (const e of engines) e.dispose();
