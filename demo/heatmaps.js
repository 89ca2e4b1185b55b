// Why softmax? One head's scores for a 32-token toy sequence, turned into weights by every activation and drawn
// side by side, with the structures models put on top of the scores: causal masking, a sliding window, ALiBi
// (a distance penalty per head) and an attention sink. The engine draws its own weights (returnWeights), so
// what you see is what the kernels compute, with the library's own options: `window`, `alibiSlopes` and `sinks`
// (a sink only takes weight through the softmax denominator, e^sink / (e^sink + Σ e^s), as gpt-oss's do; what a
// row gives the sink is 1 − the row's sum). Cells a query may not attend to are grey.
import { random } from '../test/runtimes/cases.mjs'; // the suite's generator (the demo is served from the repo root)

export const L = 32;
const D = 16;
const CELL = 5;
const SINK_LOGIT = 6;
const ALIBI_SLOPE = 0.5;
const EXCLUDED = [226, 229, 235];
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

/** Viridis-like colour map for t in [0, 1]; negative weights (polynomial) on a red ramp. */
export function colour(t) {
  if (t < 0) {
    const a = Math.min(1, -t);
    return [Math.round(250 - 60 * a), Math.round(200 - 170 * a), Math.round(200 - 170 * a)];
  }
  const x = Math.min(1, t) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x)), f = x - i;
  return STOPS[i].map((c, j) => Math.round(c + f * (STOPS[i + 1][j] - c)));
}

/** Queries and keys: sinusoidal position codes plus noise, so each query leans towards nearby tokens. */
function toyInputs() {
  const q = new Float32Array(L * D), k = new Float32Array(L * D);
  const noise = random(2 * L * D, 7);
  for (let i = 0; i < L; i++) {
    for (let d = 0; d < D; d += 2) {
      const a = i * (1 / 10000 ** (d / D)) * 4;
      q[i * D + d] = Math.sin(a) + 0.5 * noise[i * D + d];
      q[i * D + d + 1] = Math.cos(a) + 0.5 * noise[i * D + d + 1];
      k[i * D + d] = Math.sin(a) + 0.5 * noise[L * D + i * D + d];
      k[i * D + d + 1] = Math.cos(a) + 0.5 * noise[L * D + i * D + d + 1];
    }
  }
  return { q, k };
}
const TOY = toyInputs();

/** Whether query i may attend to key j under `s` (causal, window). */
export function admissible(s, i, j) {
  if (s.causal && j > i) return false;
  return !(s.window > 0 && Math.abs(i - j) >= s.window);
}

/**
 * The weights [L, L] of `activation` under structure `s` ({ causal, window, alibi, sinks, temperature }), and the
 * sink's weight per row (sinks apply to softmax only).
 */
export function weightsOf(engine, activation, s) {
  const sink = s.sinks && activation === 'softmax';
  const options = {
    batch: 1, heads: 1, seqQ: L, seqK: L, headDim: D, scale: 3 / Math.sqrt(D) / s.temperature, activation, returnWeights: true,
    ...(s.causal ? { causal: true } : {}),
    ...(s.window > 0 ? { window: [s.window - 1, s.window - 1] } : {}), // |i − j| < window
    ...(s.alibi ? { alibiSlopes: Float32Array.of(ALIBI_SLOPE) } : {}),
    ...(sink ? { sinks: Float32Array.of(SINK_LOGIT) } : {}),
  };
  const { weights: w } = engine.attention(TOY.q, TOY.k, new Float32Array(L * D), options);
  let sinkWeight = null;
  if (sink) {
    sinkWeight = new Float32Array(L);
    for (let i = 0; i < L; i++) sinkWeight[i] = 1 - w.subarray(i * L, (i + 1) * L).reduce((a, x) => a + x, 0);
  }
  return { w, sink: sinkWeight };
}

/** Draws one panel: the sink column (if any) at the left, then the L × L weights; returns its statistics. */
export function drawPanel(canvas, { w, sink }, s) {
  const ctx = canvas.getContext('2d');
  const left = CELL + 4;
  canvas.width = left + L * CELL;
  canvas.height = L * CELL;
  ctx.fillStyle = '#fafbfc';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  let max = 0, lo = Infinity, hi = -Infinity;
  for (let i = 0; i < L; i++) {
    let sum = 0; // over the tokens: what the sink takes is missing from it
    for (let j = 0; j < L; j++) {
      max = Math.max(max, Math.abs(w[i * L + j]));
      sum += w[i * L + j];
    }
    if (sink) max = Math.max(max, sink[i]);
    lo = Math.min(lo, sum);
    hi = Math.max(hi, sum);
  }
  const fill = (rgb, x, y) => {
    ctx.fillStyle = `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
    ctx.fillRect(x, y, CELL, CELL);
  };
  for (let i = 0; i < L; i++) {
    if (sink) fill(colour(sink[i] / max), 0, i * CELL);
    for (let j = 0; j < L; j++) fill(admissible(s, i, j) ? colour(w[i * L + j] / (max || 1)) : EXCLUDED, left + j * CELL, i * CELL);
  }
  return { max, rowSums: [lo, hi] };
}

export const GEOMETRY = { cell: CELL, left: CELL + 4, excluded: EXCLUDED };
