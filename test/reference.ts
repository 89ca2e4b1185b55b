// Float64 reference attention, written independently of both backends from the semantics in the README:
// additive float masks, boolean masks (1 = attend), both causal alignments, GQA, zero rows when nothing is
// admissible (PyTorch ≥ 2.5 _safe_softmax), every activation, soft-capping, and quadratic linear attention.
export interface RefOptions {
  batch: number; heads: number; seqQ: number; seqK: number; headDim: number;
  kvHeads?: number; headDimV?: number; scale?: number;
  causal?: boolean | 'top-left' | 'bottom-right';
  mask?: Float32Array | Uint8Array; maskShape?: readonly number[];
  activation?: 'softmax' | 'softmax1' | 'squared' | 'sigmoid' | 'relu' | 'polynomial';
  epsilon?: number; bias?: number; power?: number; softcap?: number;
}

/** Element of a mask broadcast to [B, H, L, S] (right-aligned, size-1 dims broadcast). */
function maskAt(mask: Float32Array | Uint8Array, shape: readonly number[], b: number, h: number, i: number, j: number): number {
  const full = [1, 1, 1, 1];
  for (let d = 0; d < shape.length; d++) full[4 - shape.length + d] = shape[d]!;
  const idx = [b, h, i, j].map((x, d) => (full[d] === 1 ? 0 : x));
  const flat = ((idx[0]! * full[1]! + idx[1]!) * full[2]! + idx[2]!) * full[3]! + idx[3]!;
  return mask[flat]!;
}

/** Weights of one row of scores; `null` marks an inadmissible key (weight exactly 0). */
function rowWeights(x: (number | null)[], o: RefOptions): number[] {
  const S = o.seqK;
  const live = x.filter((s): s is number => s !== null);
  switch (o.activation ?? 'softmax') {
    case 'softmax': {
      if (live.length === 0) return x.map(() => 0);
      const max = Math.max(...live);
      const sum = live.reduce((a, s) => a + Math.exp(s - max), 0);
      return x.map((s) => (s === null ? 0 : Math.exp(s - max) / sum));
    }
    case 'softmax1': {
      // e^s / (1 + Σ e^s), scaled by e^(−m) top and bottom with m = max(0, max s)
      const m = Math.max(0, ...live);
      const sum = Math.exp(-m) + live.reduce((a, s) => a + Math.exp(s - m), 0);
      return x.map((s) => (s === null ? 0 : Math.exp(s - m) / sum));
    }
    case 'squared': {
      const sum = live.reduce((a, s) => a + s * s, 0) + (o.epsilon ?? 1e-6);
      return x.map((s) => (s === null || sum === 0 ? 0 : (s * s) / sum)); // ε = 0 and all scores 0: a zero row
    }
    case 'sigmoid': {
      const bias = o.bias ?? -Math.log(S);
      return x.map((s) => (s === null ? 0 : 1 / (1 + Math.exp(-(s + bias)))));
    }
    case 'relu':
      return x.map((s) => (s === null ? 0 : Math.max(0, s) / S));
    case 'polynomial':
      return x.map((s) => (s === null ? 0 : s ** (o.power ?? 3) / Math.sqrt(S)));
  }
}

export function referenceWithWeights(q: Float32Array, k: Float32Array, v: Float32Array, o: RefOptions): { output: Float64Array; weights: Float64Array } {
  const { batch: B, heads: H, seqQ: L, seqK: S, headDim: D } = o;
  const KVH = o.kvHeads ?? H;
  const Dv = o.headDimV ?? D;
  const scale = o.scale ?? 1 / Math.sqrt(D);
  const shape = o.maskShape ?? [L, S];
  const offset = o.causal === 'bottom-right' ? S - L : 0;
  const output = new Float64Array(B * H * L * Dv);
  const weights = new Float64Array(B * H * L * S);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / KVH));
      for (let i = 0; i < L; i++) {
        const logits: (number | null)[] = [];
        for (let j = 0; j < S; j++) {
          let x = 0;
          for (let d = 0; d < D; d++) {
            x += q[((b * H + h) * L + i) * D + d]! * k[((b * KVH + kvh) * S + j) * D + d]!;
          }
          x *= scale;
          if (o.softcap !== undefined) x = o.softcap * Math.tanh(x / o.softcap);
          let admissible = !o.causal || j <= i + offset;
          if (o.mask instanceof Float32Array) x += maskAt(o.mask, shape, b, h, i, j);
          if (o.mask instanceof Uint8Array && maskAt(o.mask, shape, b, h, i, j) === 0) admissible = false;
          if (x === -Infinity) admissible = false;
          logits.push(admissible ? x : null);
        }
        const w = rowWeights(logits, o);
        const row = (b * H + h) * L + i;
        for (let j = 0; j < S; j++) weights[row * S + j] = w[j]!;
        for (let c = 0; c < Dv; c++) {
          let acc = 0;
          for (let j = 0; j < S; j++) if (w[j]! !== 0) acc += w[j]! * v[((b * KVH + kvh) * S + j) * Dv + c]!;
          output[row * Dv + c] = acc;
        }
      }
    }
  }
  return { output, weights };
}

export function referenceAttention(q: Float32Array, k: Float32Array, v: Float32Array, o: RefOptions): Float64Array {
  return referenceWithWeights(q, k, v, o).output;
}

/** Linear attention the quadratic way: w_ij = φ(q_i)·φ(k_j) over admitted keys, out_i = Σ w_ij v_j / (Σ w_ij + ε). */
export function referenceLinear(
  q: Float32Array, k: Float32Array, v: Float32Array,
  o: Omit<RefOptions, 'mask' | 'maskShape' | 'activation' | 'scale' | 'softcap'>,
): Float64Array {
  const { batch: B, heads: H, seqQ: L, seqK: S, headDim: D } = o;
  const KVH = o.kvHeads ?? H;
  const Dv = o.headDimV ?? D;
  const eps = o.epsilon ?? 1e-6;
  const offset = o.causal === 'bottom-right' ? S - L : 0;
  const phi = (x: number) => (x > 0 ? x + 1 : Math.exp(x));
  const out = new Float64Array(B * H * L * Dv);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / KVH));
      for (let i = 0; i < L; i++) {
        const num = new Float64Array(Dv);
        let den = eps;
        for (let j = 0; j < S; j++) {
          if (o.causal && j > i + offset) continue;
          let w = 0;
          for (let d = 0; d < D; d++) w += phi(q[((b * H + h) * L + i) * D + d]!) * phi(k[((b * KVH + kvh) * S + j) * D + d]!);
          den += w;
          for (let c = 0; c < Dv; c++) num[c]! += w * v[((b * KVH + kvh) * S + j) * Dv + c]!;
        }
        for (let c = 0; c < Dv; c++) out[((b * H + h) * L + i) * Dv + c] = num[c]! / den;
      }
    }
  }
  return out;
}
