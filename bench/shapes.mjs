// The benchmark shapes of shared/README.md (peer measurements were taken on exactly these).
// GFLOP/s counts 4·B·H·Lq·Lk·D for every shape, causal included, so the columns compare like for like.
export const SHAPES = [
  { id: 'S1', label: 'B1 H12 L128 D64', batch: 1, heads: 12, seqQ: 128, seqK: 128, headDim: 64 },
  { id: 'S2', label: 'B1 H12 L512 D64', batch: 1, heads: 12, seqQ: 512, seqK: 512, headDim: 64 },
  { id: 'S3', label: 'B1 H8 L2048 D64', batch: 1, heads: 8, seqQ: 2048, seqK: 2048, headDim: 64 },
  { id: 'S4', label: 'decode B1 H32 Lq1 Lk4096 D128', batch: 1, heads: 32, seqQ: 1, seqK: 4096, headDim: 128 },
  { id: 'S5', label: 'causal S2', batch: 1, heads: 12, seqQ: 512, seqK: 512, headDim: 64, causal: true },
];

export const flops = (s) => 4 * s.batch * s.heads * s.seqQ * s.seqK * s.headDim;

/** Uniform [−1, 1) inputs for a shape, deterministic. */
export function inputsFor(s, seed = 1) {
  let t = seed >>> 0;
  const rand = (n) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      t = (Math.imul(t, 1664525) + 1013904223) >>> 0;
      a[i] = t / 2147483648 - 1;
    }
    return a;
  };
  const kv = s.kvHeads ?? s.heads;
  return {
    q: rand(s.batch * s.heads * s.seqQ * s.headDim),
    k: rand(s.batch * kv * s.seqK * s.headDim),
    v: rand(s.batch * kv * s.seqK * (s.headDimV ?? s.headDim)),
  };
}

export function optionsOf(s) {
  const { id, label, ...options } = s;
  return options;
}
