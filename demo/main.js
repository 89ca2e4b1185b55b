// The demo: wasm vs JS timing, live, and the attention weights of one head drawn as a heatmap. It imports the
// built package (dist/) as a plain ES module; `npm run demo` builds it and serves this page.
import { createAttention, createJsAttention } from '../dist/index.js';

const $ = (id) => document.getElementById(id);
const ROUNDS = 12;

function random(n, seed) {
  let t = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    a[i] = (((r ^ (r >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return a;
}

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
  const seq = Number($('seq').value), heads = Number($('heads').value), headDim = Number($('dim').value);
  const options = { batch: 1, heads, seqQ: seq, seqK: seq, headDim, causal: $('causal').checked };
  const n = heads * seq * headDim;
  const q = random(n, 1), k = random(n, 2), v = random(n, 3);
  const flops = 4 * heads * seq * seq * headDim * (options.causal ? 0.5 : 1);
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
    $('speedup').textContent = `wasm is ${(best.js / best.wasm).toFixed(1)}× faster than JS`;
    $('status').textContent = `round ${round}/${ROUNDS} · max |wasm − js| = ${diff.toExponential(1)}`;
    document.body.dataset.rounds = String(round);
    await nextFrame();
  }
  if (id === runId) document.body.dataset.timing = 'done';
}

/** Viridis-like colour map, t in [0, 1]. */
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function colour(t) {
  const x = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x)), f = x - i;
  return STOPS[i].map((c, j) => Math.round(c + f * (STOPS[i + 1][j] - c)));
}

function drawColourbar() {
  const ctx = $('colorbar').getContext('2d');
  for (let x = 0; x < 200; x++) {
    const [r, g, b] = colour(x / 199);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(x, 0, 1, 12);
  }
}

/**
 * Weights of head 0 for a 32-token toy sequence whose queries and keys are sinusoidal position codes plus a
 * little noise, so each query attends mostly to nearby tokens. Uses returnWeights when the engine has it.
 */
function drawHeatmap() {
  const L = 32, D = 16;
  const q = new Float32Array(L * D), k = new Float32Array(L * D);
  const noise = random(2 * L * D, 7);
  for (let i = 0; i < L; i++) {
    for (let d = 0; d < D; d += 2) {
      const freq = 1 / 10000 ** (d / D), a = i * freq * 4;
      q[i * D + d] = Math.sin(a) + 0.3 * noise[i * D + d];
      q[i * D + d + 1] = Math.cos(a) + 0.3 * noise[i * D + d + 1];
      k[i * D + d] = Math.sin(a) + 0.3 * noise[L * D + i * D + d];
      k[i * D + d + 1] = Math.cos(a) + 0.3 * noise[L * D + i * D + d + 1];
    }
  }
  const options = { batch: 1, heads: 1, seqQ: L, seqK: L, headDim: D, causal: $('hm-causal').checked, scale: 3 / Math.sqrt(D) / Number($('temp').value) };
  let weights;
  try {
    weights = wasm.attention(q, k, k, { ...options, returnWeights: true }).weights;
  } catch {
    weights = undefined;
  }
  if (!(weights instanceof Float32Array)) weights = softmaxWeights(q, k, options);
  let max = 0;
  for (const w of weights) max = Math.max(max, w);
  const canvas = $('heatmap'), ctx = canvas.getContext('2d');
  const cell = canvas.width / L;
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < L; j++) {
      const [r, g, b] = colour(weights[i * L + j] / max);
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fillRect(j * cell, i * cell, Math.ceil(cell), Math.ceil(cell));
    }
  }
  $('maxw').textContent = max.toFixed(2);
  document.body.dataset.heatmap = 'done';
}

/** Fallback for engines without returnWeights: softmax(q·kᵀ·scale) computed here. */
function softmaxWeights(q, k, { seqQ: L, seqK: S, headDim: D, causal, scale }) {
  const w = new Float32Array(L * S);
  for (let i = 0; i < L; i++) {
    let max = -Infinity;
    const row = [];
    for (let j = 0; j < S; j++) {
      let s = -Infinity;
      if (!causal || j <= i) {
        s = 0;
        for (let d = 0; d < D; d++) s += q[i * D + d] * k[j * D + d];
        s *= scale;
      }
      row.push(s);
      max = Math.max(max, s);
    }
    let sum = 0;
    for (const s of row) sum += Math.exp(s - max);
    for (let j = 0; j < S; j++) w[i * S + j] = Math.exp(row[j] - max) / sum;
  }
  return w;
}

async function main() {
  try {
    wasm = await createAttention();
    js = createJsAttention();
    $('backend').innerHTML = `<code>createAttention()</code> picked <b>${wasm.backend}</b>`;
    $('wasm-name').textContent = wasm.backend;
    document.body.dataset.backend = wasm.backend;
    drawColourbar();
    drawHeatmap();
    for (const id of ['hm-causal', 'temp']) $(id).addEventListener('input', drawHeatmap);
    for (const id of ['seq', 'heads', 'dim', 'causal']) $(id).addEventListener('change', timingLoop);
    $('run').addEventListener('click', timingLoop);
    await timingLoop();
  } catch (error) {
    $('status').textContent = `error: ${error}`;
    document.body.dataset.error = String(error);
    throw error;
  }
}

main();
