// Float64 reference attention, written independently of both backends from the semantics in the README:
// additive float masks, boolean masks (1 = attend), both causal alignments, GQA, zero rows when nothing is
// admissible (PyTorch ≥ 2.5 _safe_softmax).
export interface RefOptions {
  batch: number; heads: number; seqQ: number; seqK: number; headDim: number;
  kvHeads?: number; headDimV?: number; scale?: number;
  causal?: boolean | 'top-left' | 'bottom-right';
  mask?: Float32Array | Uint8Array; maskShape?: readonly number[];
}

/** Element of a mask broadcast to [B, H, L, S] (right-aligned, size-1 dims broadcast). */
function maskAt(mask: Float32Array | Uint8Array, shape: readonly number[], b: number, h: number, i: number, j: number): number {
  const full = [1, 1, 1, 1];
  for (let d = 0; d < shape.length; d++) full[4 - shape.length + d] = shape[d]!;
  const idx = [b, h, i, j].map((x, d) => (full[d] === 1 ? 0 : x));
  const flat = ((idx[0]! * full[1]! + idx[1]!) * full[2]! + idx[2]!) * full[3]! + idx[3]!;
  return mask[flat]!;
}

export function referenceAttention(q: Float32Array, k: Float32Array, v: Float32Array, o: RefOptions): Float64Array {
  const { batch: B, heads: H, seqQ: L, seqK: S, headDim: D } = o;
  const KVH = o.kvHeads ?? H;
  const Dv = o.headDimV ?? D;
  const scale = o.scale ?? 1 / Math.sqrt(D);
  const shape = o.maskShape ?? [L, S];
  const offset = o.causal === 'bottom-right' ? S - L : 0;
  const out = new Float64Array(B * H * L * Dv);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / KVH));
      for (let i = 0; i < L; i++) {
        const logits: number[] = [];
        for (let j = 0; j < S; j++) {
          let admissible = !o.causal || j <= i + offset;
          let x = 0;
          for (let d = 0; d < D; d++) {
            x += q[((b * H + h) * L + i) * D + d]! * k[((b * KVH + kvh) * S + j) * D + d]!;
          }
          x *= scale;
          if (o.mask instanceof Float32Array) x += maskAt(o.mask, shape, b, h, i, j);
          if (o.mask instanceof Uint8Array && maskAt(o.mask, shape, b, h, i, j) === 0) admissible = false;
          logits.push(admissible ? x : -Infinity);
        }
        const max = Math.max(...logits);
        if (max === -Infinity) continue; // no admissible key: the row stays zero
        const w = logits.map((x) => Math.exp(x - max));
        const sum = w.reduce((a, c) => a + c, 0);
        for (let c = 0; c < Dv; c++) {
          let acc = 0;
          for (let j = 0; j < S; j++) if (w[j]! !== 0) acc += w[j]! * v[((b * KVH + kvh) * S + j) * Dv + c]!;
          out[((b * H + h) * L + i) * Dv + c] = acc / sum;
        }
      }
    }
  }
  return out;
}
