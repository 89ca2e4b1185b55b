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

/**
 * Attention shapes of models people run in browsers (one layer, batch 1; `decode`: one KV-cache step, appending
 * one token to `seqK − 1` cached ones and attending with it). GQA as the models configure it.
 */
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
