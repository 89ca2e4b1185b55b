// The one case list: the deterministic inputs, the tile edges derived from a backend's blocking, the runtime smoke
// suite's shapes and the benchmark shapes. A plain ES module with no imports beyond its sibling reference.mjs (no
// src/, no node:), so vitest, the smoke suite in Node, Deno, Bun, Chromium and a Vite bundle, and both benchmarks
// load it unchanged. It re-exports the float64 reference, so one import gives everything.
export * from './reference.mjs';

/** Deterministic uniform [−amplitude, amplitude) floats (mulberry32), so failures reproduce. */
export function random(n, seed, amplitude = 1) {
  let t = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    a[i] = ((((r ^ (r >>> 14)) >>> 0) / 4294967296) * 2 - 1) * amplitude;
  }
  return a;
}

/** The register tile of the wasm kernels (f32-qk-4x8, f32-pv-4x8): 4 query rows × an 8-key panel. */
export const MICRO_TILE = { rows: 4, keys: 8 };

const around = (n) => [n - 1, n, n + 1];
const sorted = (xs) => [...new Set(xs)].filter((x) => x >= 1).sort((a, b) => a - b);

/**
 * The sizes at the edges of a backend's blocking `{ queries, keys }` (BACKENDS[i].blocks): 1, and n − 1, n, n + 1
 * for n = the 4-row micro-tile, the query block and 2 query blocks (query counts), the 8-key panel, the key block
 * and 2 key blocks (key counts); `all` is both. Blocks of fewer than 4 query rows (decode) sweep up to
 * ⌊queries·keys / rows⌋ rounded down to 64 keys at a time: `decode` lists, for rows 1–3, that block and the key
 * counts around it (only where it is longer than an ordinary key block).
 */
export function tileEdges({ queries, keys }) {
  const decode = [];
  for (let rows = 1; rows < MICRO_TILE.rows; rows++) {
    const block = Math.floor((queries * keys) / rows) & ~63;
    if (block > keys) decode.push({ rows, block, keys: around(block) });
  }
  const q = sorted([1, ...around(MICRO_TILE.rows), ...around(queries), ...around(2 * queries)]);
  const k = sorted([1, ...around(MICRO_TILE.keys), ...around(keys), ...around(2 * keys)]);
  return { queries: q, keys: k, all: sorted([...q, ...k]), decode };
}

/** The union of the tile edges of several blockings (e.g. `BACKENDS.map((b) => b.blocks)`). */
export function allTileEdges(blockings) {
  const each = blockings.map(tileEdges);
  const decode = new Map();
  for (const e of each) for (const d of e.decode) decode.set(`${d.rows} ${d.block}`, d);
  return {
    queries: sorted(each.flatMap((e) => e.queries)),
    keys: sorted(each.flatMap((e) => e.keys)),
    all: sorted(each.flatMap((e) => e.all)),
    decode: [...decode.values()].sort((a, b) => a.rows - b.rows || a.block - b.block),
  };
}

/**
 * [seqQ, seqK] pairs over tile edges: every count squared, and the i-th query count with the i-th key count in
 * ascending and in descending order (the shorter list wrapping around), so each edge meets small and large partners.
 */
export function edgePairs({ queries, keys, all }) {
  const pairs = all.map((n) => [n, n]);
  const n = Math.max(queries.length, keys.length);
  for (let i = 0; i < n; i++) {
    pairs.push([queries[i % queries.length], keys[i % keys.length]]);
    pairs.push([queries[i % queries.length], keys[(2 * n - 1 - i) % keys.length]]);
  }
  const seen = new Set();
  return pairs.filter(([l, s]) => !seen.has(`${l} ${s}`) && seen.add(`${l} ${s}`));
}

/** q, k, v for options `o` from three consecutive seeds (any layout: the lengths are the same). */
export function inputs(o, seed) {
  const kvh = o.kvHeads ?? o.heads;
  return {
    q: random(o.batch * o.heads * o.seqQ * o.headDim, seed),
    k: random(o.batch * kvh * o.seqK * o.headDim, seed + 1),
    v: random(o.batch * kvh * o.seqK * (o.headDimV ?? o.headDim), seed + 2),
  };
}

/** The smoke suite's shapes: tile edges, causal modes, GQA/MQA, both mask kinds, decode, every activation. */
export function cases(activations) {
  const list = [
    { name: 'square 17x65 d32', o: { batch: 1, heads: 2, seqQ: 17, seqK: 65, headDim: 32 } },
    { name: 'causal top-left 33x33', o: { batch: 2, heads: 1, seqQ: 33, seqK: 33, headDim: 16, causal: true } },
    { name: 'causal bottom-right decode', o: { batch: 1, heads: 4, seqQ: 1, seqK: 129, headDim: 8, causal: 'bottom-right' } },
    { name: 'GQA 4/2, headDimV 5, scale 0.3', o: { batch: 1, heads: 4, kvHeads: 2, seqQ: 9, seqK: 70, headDim: 12, headDimV: 5, scale: 0.3 } },
    { name: 'MQA bool mask [H,1,S]', o: { batch: 1, heads: 3, kvHeads: 1, seqQ: 6, seqK: 20, headDim: 7 }, mask: 'bool', maskShape: [3, 1, 20] },
    { name: 'float mask with -Infinity + causal', o: { batch: 2, heads: 1, seqQ: 20, seqK: 24, headDim: 4, causal: 'bottom-right' }, mask: 'float', maskShape: [2, 1, 20, 24] },
    { name: 'fully masked row → zeros', o: { batch: 1, heads: 1, seqQ: 3, seqK: 5, headDim: 3 }, mask: 'none-row' },
    // The options real models need (issue 9), alone and combined.
    { name: 'window [40, 2] + ALiBi + key lengths, bottom-right', o: { batch: 2, heads: 2, seqQ: 70, seqK: 140, headDim: 8, causal: 'bottom-right', window: [40, 2], alibiSlopes: Float32Array.of(0.5, 0.125), keyLengths: [140, 77] } },
    { name: 'RoPE (partial, interleaved) + bshd + GQA 4/2', o: { batch: 1, heads: 4, kvHeads: 2, seqQ: 9, seqK: 130, headDim: 16, layout: 'bshd', rope: { dims: 10, interleaved: true, positionQ: 121 } } },
    { name: 'sinks + softcap + causal, a row with no key', o: { batch: 1, heads: 2, seqQ: 6, seqK: 4, headDim: 8, causal: 'bottom-right', sinks: Float32Array.of(1, -2), softcap: 3 } },
  ];
  for (const activation of activations) {
    if (activation === 'softmax') continue;
    list.push({ name: `activation ${activation}`, o: { batch: 1, heads: 2, seqQ: 18, seqK: 67, headDim: 8, causal: true, activation } });
  }
  return list.map((c, n) => {
    const o = { ...c.o };
    const { q, k, v } = inputs(o, 10 * n + 1);
    if (c.mask === 'bool' || c.mask === 'float') {
      const noise = random(c.maskShape.reduce((a, d) => a * d, 1), 10 * n + 4);
      o.maskShape = c.maskShape;
      o.mask = c.mask === 'bool'
        ? Uint8Array.from(noise, (x) => (x > -0.4 ? 1 : 0))
        : Float32Array.from(noise, (x) => (x < -0.6 ? -Infinity : 3 * x));
    } else if (c.mask === 'none-row') {
      o.mask = Uint8Array.from({ length: o.seqQ * o.seqK }, (_, idx) => (Math.floor(idx / o.seqK) === 1 ? 0 : 1));
    }
    return { name: c.name, o, q, k, v };
  });
}

/**
 * Linear attention's smoke cases (referenceLinear): both feature maps, unnormalised, decay and gates, GQA, both
 * causal alignments, around a 64-key chunk. `stream` cases are also fed through a state in two pieces.
 */
export function linearCases() {
  const gates = (n, seed) => Float32Array.from(random(n, seed), (x) => -Math.abs(x));
  const list = [
    { name: 'linear: non-causal 17x65 d32', o: { batch: 1, heads: 2, seqQ: 17, seqK: 65, headDim: 32 } },
    { name: 'linear: causal GQA 4/2, decay + gates, 65 keys', stream: true,
      o: { batch: 1, heads: 4, kvHeads: 2, seqQ: 65, seqK: 65, headDim: 8, headDimV: 5, causal: true,
        decay: Float32Array.of(0.9, 0.99, 1, 0.5), gates: gates(4 * 65, 3001) } },
    { name: 'linear: identity, unnormalised, bottom-right 9x130', o: { batch: 2, heads: 1, seqQ: 9, seqK: 130, headDim: 6,
      causal: 'bottom-right', featureMap: 'identity', normalize: false, decay: Float32Array.of(0.95) } },
    { name: 'linear: ε = 0, bottom-right 7x3 (rows before the first key → zeros)', o: { batch: 1, heads: 1, seqQ: 7, seqK: 3,
      headDim: 4, causal: 'bottom-right', epsilon: 0 } },
  ];
  return list.map((c, n) => ({ ...c, ...inputs(c.o, 3000 + 10 * n) }));
}

/** Shapes for a threaded engine: several 64-row work items per call (so every thread gets some), causal, GQA. */
export function threadCases(activations) {
  const list = [
    { name: 'threads: 2x3 heads, 130x65 d13', o: { batch: 2, heads: 3, seqQ: 130, seqK: 65, headDim: 13 } },
    { name: 'threads: causal top-left 200x200 d16', o: { batch: 1, heads: 2, seqQ: 200, seqK: 200, headDim: 16, causal: true } },
    { name: 'threads: GQA 8/2 bottom-right 97x150, headDimV 5', o: { batch: 1, heads: 8, kvHeads: 2, seqQ: 97, seqK: 150, headDim: 24, headDimV: 5, causal: 'bottom-right' } },
    { name: 'threads: MQA 6/1 bool mask [S] 70x33', o: { batch: 1, heads: 6, kvHeads: 1, seqQ: 70, seqK: 33, headDim: 8 }, mask: 'bool' },
    { name: 'threads: decode seqQ 1, 8 heads', o: { batch: 1, heads: 8, kvHeads: 2, seqQ: 1, seqK: 90, headDim: 32, causal: 'bottom-right' } },
    { name: 'threads: window + ALiBi + sinks + RoPE + bshd 150x150', o: { batch: 1, heads: 4, kvHeads: 2, seqQ: 150, seqK: 150, headDim: 16, causal: true, window: [60, 0], alibiSlopes: Float32Array.of(0.5, 0.25, 0.125, 0.0625), sinks: Float32Array.of(0, 1, 2, 3), rope: {}, layout: 'bshd' } },
  ];
  if (activations.includes('sigmoid')) {
    list.push({ name: 'threads: sigmoid causal 100x70', o: { batch: 1, heads: 3, seqQ: 100, seqK: 70, headDim: 16, causal: true, activation: 'sigmoid' } });
  }
  return list.map((c, n) => {
    const o = { ...c.o };
    const { q, k, v } = inputs(o, 1000 + 10 * n + 1);
    if (c.mask === 'bool') {
      o.mask = Uint8Array.from(random(o.seqK, 1000 + 10 * n + 4), (x) => (x > -0.5 ? 1 : 0));
      o.maskShape = [o.seqK];
    }
    return { name: c.name, o, q, k, v };
  });
}

// The benchmark shapes (peer measurements were taken on exactly these). GFLOP/s counts 4·B·H·Lq·Lk·D for every
// shape, causal included, so the columns compare like for like.
export const SHAPES = [
  { id: 'S1', label: 'B1 H12 L128 D64', batch: 1, heads: 12, seqQ: 128, seqK: 128, headDim: 64 },
  { id: 'S2', label: 'B1 H12 L512 D64', batch: 1, heads: 12, seqQ: 512, seqK: 512, headDim: 64 },
  { id: 'S3', label: 'B1 H8 L2048 D64', batch: 1, heads: 8, seqQ: 2048, seqK: 2048, headDim: 64 },
  { id: 'S4', label: 'decode B1 H32 Lq1 Lk4096 D128', batch: 1, heads: 32, seqQ: 1, seqK: 4096, headDim: 128 },
  { id: 'S5', label: 'causal S2', batch: 1, heads: 12, seqQ: 512, seqK: 512, headDim: 64, causal: true },
];

/** Floating-point operations of one call: 4·B·H·Lq·Lk·D (Q·Kᵀ and P·V, a multiply and an add each). */
export const MODEL_SHAPES = [
  { id: 'MiniLM-L6', label: 'H12 L128 D32', batch: 1, heads: 12, seqQ: 128, seqK: 128, headDim: 32 },
  { id: 'BERT-base', label: 'H12 L384 D64', batch: 1, heads: 12, seqQ: 384, seqK: 384, headDim: 64 },
  { id: 'ViT-B/16', label: 'H12 L197 D64', batch: 1, heads: 12, seqQ: 197, seqK: 197, headDim: 64 },
  { id: 'Whisper-tiny encoder', label: 'H6 L1500 D64', batch: 1, heads: 6, seqQ: 1500, seqK: 1500, headDim: 64 },
  { id: 'Llama-3.2-1B prefill', label: 'GQA 32/8 L512 D64 causal', batch: 1, heads: 32, kvHeads: 8, seqQ: 512, seqK: 512, headDim: 64, causal: true },
  { id: 'Phi-3-mini prefill', label: 'H32 L512 D96 causal', batch: 1, heads: 32, seqQ: 512, seqK: 512, headDim: 96, causal: true },
  { id: 'Gemma-2-2B prefill', label: 'GQA 8/4 L512 D256 softcap 50 causal', batch: 1, heads: 8, kvHeads: 4, seqQ: 512, seqK: 512, headDim: 256, softcap: 50, causal: true },
  { id: 'Qwen2.5-0.5B prefill', label: 'GQA 14/2 L512 D64 causal', batch: 1, heads: 14, kvHeads: 2, seqQ: 512, seqK: 512, headDim: 64, causal: true },
  { id: 'Llama-3.2-1B decode', label: 'GQA 32/8 KV-cache step over 4096 tokens', batch: 1, heads: 32, kvHeads: 8, seqQ: 1, seqK: 4096, headDim: 64, causal: 'bottom-right', decode: true },
];

export const flops = (s) => 4 * s.batch * s.heads * s.seqQ * s.seqK * s.headDim;

/** Uniform [−1, 1) inputs for a benchmark shape, deterministic. */
export function inputsFor(s, seed = 1) {
  return inputs(s, seed);
}

/** The attention options of a benchmark shape (without its id and label). */
export function optionsOf(s) {
  const { id, label, ...options } = s;
  return options;
}
