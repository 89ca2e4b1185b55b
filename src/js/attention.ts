// The pure-JS kernels: the same maths as the wasm kernels, one query row at a time, written to be read.
// Scores are accumulated in float64 (JS numbers), so this path is slightly *more* accurate than float32 wasm.
import type { AttentionPlan } from '../plan.js';
import {
  ACT_POLYNOMIAL, ACT_RELU, ACT_SIGMOID, ACT_SOFTMAX, ACT_SOFTMAX1, ACT_SQUARED, MASK_ADDITIVE_F32, MASK_BOOL_U8,
} from '../plan.js';

import { rotated } from '../rope.js';
import type { CacheView } from './kvcache.js';

const f32 = Math.fround;

/**
 * s_j = q_row · k_j for lo ≤ j < hi: s (n) = q (D) · kᵀ (D,n), key rows `ks` apart from k0 (key 0). Four keys
 * share each load of q and keep four independent sums in flight, which is most of the plain-JS speed (≈ 3× the
 * one-key loop).
 */
function dots(
  s: Float64Array, q: Float32Array, qRow: number, k: Float32Array, kHead: number, ks: number, D: number, lo: number, hi: number,
): void {
  let j = lo;
  for (; j + 4 <= hi; j += 4) {
    const k0 = kHead + j * ks, k1 = k0 + ks, k2 = k1 + ks, k3 = k2 + ks;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let d = 0; d < D; d++) {
      const x = q[qRow + d]!;
      s0 += x * k[k0 + d]!;
      s1 += x * k[k1 + d]!;
      s2 += x * k[k2 + d]!;
      s3 += x * k[k3 + d]!;
    }
    s[j] = s0; s[j + 1] = s1; s[j + 2] = s2; s[j + 3] = s3;
  }
  for (; j < hi; j++) {
    const kRow = kHead + j * ks;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qRow + d]! * k[kRow + d]!;
    s[j] = dot;
  }
}

/** o (Dv) = Σ_{lo≤j<hi} p_j · v_j: p (n) · v (n,Dv), value rows `vs` apart, four rows per pass over o. */
function weightedSum(o: Float64Array, p: Float64Array, v: Float32Array, vHead: number, vs: number, Dv: number, lo: number, hi: number): void {
  o.fill(0);
  let j = lo;
  for (; j + 4 <= hi; j += 4) {
    const v0 = vHead + j * vs, v1 = v0 + vs, v2 = v1 + vs, v3 = v2 + vs;
    const p0 = p[j]!, p1 = p[j + 1]!, p2 = p[j + 2]!, p3 = p[j + 3]!;
    for (let c = 0; c < Dv; c++) o[c] = o[c]! + p0 * v[v0 + c]! + p1 * v[v1 + c]! + p2 * v[v2 + c]! + p3 * v[v3 + c]!;
  }
  for (; j < hi; j++) {
    const pj = p[j]!, vRow = vHead + j * vs;
    for (let c = 0; c < Dv; c++) o[c] = o[c]! + pj * v[vRow + c]!;
  }
}

/** σ(x) without overflow: e^(−|x|) ≤ 1 in both branches. */
function sigmoid(x: number): number {
  const e = Math.exp(-Math.abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/**
 * out (B,H,L,Dv) = act(q̃ (B,H,L,D) · k̃ᵀ (B,KVH,D,S) · scale [softcapped] + ALiBi + mask) · v (B,KVH,S,Dv), q̃ and
 * k̃ rotated by RoPE when asked, and, when `weights` is given, the weights (B,H,L,S). With `layout: 'bshd'` the
 * tensors are (B,L,H,·) and (B,S,KVH,·). Memory beyond the outputs: one row of S scores (and rotated copies of
 * q and k with RoPE). `cache` ≠ null: k and v are unused, the keys and values are read from a KV cache (kvcache.ts)
 * whose head (row · KVH + kv head) holds key j in slot j mod its slots, keys already rotated.
 */
export function attentionRows(
  out: Float32Array, weights: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, plan: AttentionPlan,
  cache: CacheView | null = null,
): void {
  const { batch: B, heads: H, kvHeads: KVH, seqQ: L, seqK: S, headDim: D, headDimV: Dv, scale } = plan;
  const { causal, bottomRight, mask, maskKind, activation, softcap, param, power, window, alibiSlopes, sinks, keyLengths, rope } = plan;
  const [msB, msH, msL, msS] = plan.maskStrides;
  const bshd = plan.layout === 'bshd';
  const kvBshd = bshd && cache === null;
  if (rope !== null) {
    q = rotated(q, B, H, L, D, bshd, rope, rope.positionQ);
    if (cache === null) k = rotated(k, B, KVH, S, D, bshd, rope, rope.positionK);
  }
  // Element offsets: row i of (b, h) in q/out, key row j of (b, kv head) in k/v; `…s` are row strides.
  const qs = bshd ? H * D : D, os = bshd ? H * Dv : Dv;
  const ks = kvBshd ? KVH * D : D, vs = kvBshd ? KVH * Dv : Dv;
  const group = H / KVH;
  const s = new Float64Array(S);
  const o = new Float64Array(Dv);

  for (let b = 0; b < B; b++) {
    const keys = keyLengths === null ? S : keyLengths[b]!; // keys this batch row uses
    const off = keys - L; // query i sits at key position i + off (bottom-right alignment)
    for (let h = 0; h < H; h++) {
      const kv = Math.floor(h / group);
      const kHead = kvBshd ? (b * S * KVH + kv) * D : (b * KVH + kv) * S * D;
      const vHead = kvBshd ? (b * S * KVH + kv) * Dv : (b * KVH + kv) * S * Dv;
      const head = cache === null ? 0 : (cache.rows === null ? b : cache.rows[b]!) * KVH + kv; // the cache's head
      const slope = alibiSlopes === null ? 0 : alibiSlopes[h]!;
      for (let i = 0; i < L; i++) {
        const row = (b * H + h) * L + i; // row of the weights, always (B,H,L,S)
        const qRow = bshd ? ((b * L + i) * H + h) * D : row * D;
        const oRow = bshd ? ((b * L + i) * H + h) * Dv : row * Dv;
        const mRow = b * msB + h * msH + i * msL;
        // Admissible keys lo ≤ j < hi (key lengths, causal, window); keys outside are never read.
        let hi = keys;
        if (causal) hi = Math.min(hi, i + (bottomRight ? off : 0) + 1);
        if (window !== null) hi = Math.min(hi, i + off + window[1] + 1);
        const lo = window === null ? 0 : Math.min(Math.max(0, i + off - window[0]), Math.max(hi, 0));
        hi = Math.max(hi, lo);

        // s (S) = q_i (D) · kᵀ (D,S) · scale, softcapped, + ALiBi + mask; inadmissible keys get −∞
        if (cache === null) dots(s, q, qRow, k, kHead, ks, D, lo, hi);
        else cache.dots(s, q, qRow, head, lo, hi);
        let max = -Infinity;
        for (let j = lo; j < hi; j++) {
          // Rounded to float32 like the wasm kernels' scores, so that a score overflowing float32 (|q·k| > 3.4e38)
          // becomes ±∞ here too and every backend gives the same NaN/∞ answers.
          let score = f32(f32(s[j]!) * scale);
          if (softcap > 0) score = softcap * Math.tanh(score / softcap);
          if (slope !== 0) score = f32(score - slope * Math.abs(i + off - j));
          if (maskKind === MASK_ADDITIVE_F32) score = f32(score + mask![mRow + j * msS]!);
          else if (maskKind === MASK_BOOL_U8 && mask![mRow + j * msS] === 0) score = -Infinity;
          s[j] = score;
          // Softmax pass 1: the max. Subtracting it makes every exponent ≤ 0, so e^x cannot overflow even for
          // logits of 1e4. `>` skips NaN, which then poisons the sum below, so a NaN score gives a NaN row.
          if (score > max) max = score;
        }

        // Pass 2: weights p_j and the row's denominator.
        let denominator = 1;
        if (activation === ACT_SOFTMAX || activation === ACT_SOFTMAX1) {
          // A sink (softmax1: the sink 0) is one more logit in the denominator only: with ref = max(sink, max),
          // it adds e^(sink − ref) ≤ 1. With no admissible key and no sink, max is −∞; exponentiate against 0 so
          // every p_j is e^(−∞) = 0 instead of e^(−∞ + ∞) = NaN, and the row comes out as zeros.
          const sink = activation === ACT_SOFTMAX1 ? 0 : sinks === null ? -Infinity : sinks[h]!;
          const top = Math.max(sink, max);
          const ref = top === -Infinity ? 0 : top;
          let sum = Math.exp(sink - ref);
          for (let j = lo; j < hi; j++) {
            const p = Math.exp(s[j]! - ref);
            s[j] = p;
            sum += p;
          }
          denominator = sum;
        } else {
          let sum = 0;
          for (let j = lo; j < hi; j++) {
            const x = s[j]!;
            let p = 0; // masked positions contribute exactly 0, whatever f(−∞) would be
            if (x !== -Infinity) {
              if (activation === ACT_SQUARED) p = x * x; // float64: s² of any float32 s is finite (wasm scales by max |s|)
              else if (activation === ACT_SIGMOID) p = sigmoid(x + param);
              else if (activation === ACT_RELU) p = Math.max(0, x) * param;
              else if (activation === ACT_POLYNOMIAL) p = f32(x ** power) * param;
            }
            s[j] = p;
            sum += p;
          }
          // squared: Σp² can be ~0 when every score is ~0; ε keeps p²/Σp² from dividing by (nearly) zero.
          if (activation === ACT_SQUARED) denominator = sum + param;
        }

        // Pass 3, folded into the product: out_i (Dv) = (p (S) · v (S,Dv)) / denominator.
        if (cache === null) weightedSum(o, s, v, vHead, vs, Dv, lo, hi);
        else cache.weightedSum(o, s, head, lo, hi);
        const inv = denominator === 0 ? 0 : 1 / denominator;
        for (let c = 0; c < Dv; c++) out[oRow + c] = o[c]! * inv;
        if (weights !== null) {
          for (let j = 0; j < S; j++) weights[row * S + j] = j >= lo && j < hi ? s[j]! * inv : 0;
        }
      }
    }
  }
}
