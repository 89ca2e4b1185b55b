// The demo: wasm vs JS timing, live; one head's weights under every activation with causal, sliding-window,
// ALiBi and sink structure (heatmaps.js); and the benchmark tables in this browser (bench.js). It imports the
// built package (dist/) as a plain ES module; `npm run demo` builds it and serves this page cross-origin isolated.
import * as pkg from '../dist/index.js';
import { setupBenchmark } from './bench.js';
import { drawPanel, weightsOf } from './heatmaps.js';
import { random } from '../test/runtimes/cases.mjs'; // the suite's generator (the demo is served from the repo root)

const { ACTIVATIONS, createAttention, createJsAttention } = pkg;
const $ = (id) => document.getElementById(id);
const ROUNDS = 12;

/**
 * Median ms per call of `fn` within ~`budgetMs`. Browsers coarsen performance.now() (to 0.1 ms without
 * cross-origin isolation), so each sample times a batch of calls lasting at least ~2 ms.
 */
function time(fn, budgetMs) {
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) fn();
    if (performance.now() - t0 >= 2 || reps >= 1 << 16) break;
    reps *= 2;
  }
  const samples = [];
  const start = performance.now();
  while (samples.length < 3 || (performance.now() - start < budgetMs && samples.length < 100)) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) fn();
    samples.push((performance.now() - t0) / reps);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1];
}

const nextFrame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));

let wasm;
let js;
let runId = 0;

async function timingLoop() {
  const id = ++runId;
  delete document.body.dataset.timing;
  const seq = Number($('seq').value), heads = Number($('heads').value), headDim = Number($('dim').value);
  const options = { batch: 1, heads, seqQ: seq, seqK: seq, headDim, causal: $('causal').checked };
  const n = heads * seq * headDim;
  const q = random(n, 1), k = random(n, 2), v = random(n, 3);
  // Counted as bench/ counts: 4·B·H·Lq·Lk·D for every shape, causal included.
  const flops = 4 * heads * seq * seq * headDim;
  const a = wasm.attention(q, k, v, options), b = js.attention(q, k, v, options);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
  const best = { wasm: Infinity, js: Infinity };
  for (let round = 1; round <= ROUNDS && id === runId; round++) {
    best.wasm = Math.min(best.wasm, time(() => wasm.attention(q, k, v, options), 60));
    best.js = Math.min(best.js, time(() => js.attention(q, k, v, options), 60));
    const slow = Math.max(best.wasm, best.js);
    for (const name of ['wasm', 'js']) {
      $(`${name}-ms`).textContent = best[name].toFixed(3);
      $(`${name}-gf`).textContent = (flops / best[name] / 1e6).toFixed(2);
      $(`${name}-bar`).style.width = `${Math.max(2, (120 * best[name]) / slow)}px`;
    }
    $('speedup').textContent = `${wasm.backend} is ${(best.js / best.wasm).toFixed(1)}× faster than JS`;
    $('status').textContent = `round ${round}/${ROUNDS} · max |wasm − js| = ${diff.toExponential(1)}`;
    document.body.dataset.rounds = String(round);
    await nextFrame();
  }
  if (id === runId) document.body.dataset.timing = 'done';
}

function structure() {
  return {
    causal: $('hm-causal').checked, window: Number($('hm-window').value), alibi: $('hm-alibi').checked,
    sinks: $('hm-sinks').checked, temperature: Number($('temp').value),
  };
}

function drawHeatmaps() {
  const s = structure();
  const panels = $('panels');
  for (const activation of ACTIVATIONS) {
    let fig = document.getElementById(`panel-${activation}`);
    if (!fig) {
      fig = document.createElement('figure');
      fig.id = `panel-${activation}`;
      fig.innerHTML = `<canvas id="hm-${activation}" aria-label="${activation} weights"></canvas><figcaption></figcaption>`;
      panels.append(fig);
    }
    const stats = drawPanel(fig.querySelector('canvas'), weightsOf(wasm, activation, s), s);
    const [lo, hi] = stats.rowSums.map((x) => x.toFixed(2));
    fig.querySelector('figcaption').innerHTML = `<b>${activation}</b> · max ${stats.max.toFixed(2)} · rows sum ${lo === hi ? lo : `${lo}…${hi}`}`;
  }
  document.body.dataset.heatmap = 'done';
}

async function main() {
  try {
    wasm = await createAttention();
    js = createJsAttention();
    let threads = 'available';
    try {
      (await createAttention({ threads: 2 })).dispose();
    } catch (error) {
      threads = `unavailable: ${error.message}`;
    }
    $('backend').innerHTML = `<code>createAttention()</code> picked <b>${wasm.backend}</b>; threads: <span id="threads"></span>`;
    $('threads').textContent = threads;
    $('wasm-name').textContent = wasm.backend;
    document.body.dataset.backend = wasm.backend;
    document.body.dataset.threads = threads;
    drawHeatmaps();
    for (const id of ['hm-causal', 'hm-window', 'hm-alibi', 'hm-sinks', 'temp']) $(id).addEventListener('input', drawHeatmaps);
    for (const id of ['seq', 'heads', 'dim', 'causal']) $(id).addEventListener('change', timingLoop);
    $('run').addEventListener('click', timingLoop);
    setupBenchmark(pkg, () => { runId++; });
    await timingLoop();
  } catch (error) {
    $('status').textContent = `error: ${error}`;
    document.body.dataset.error = String(error);
    throw error;
  }
}

main();
