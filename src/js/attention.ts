// The pure-JS kernels: the same maths as the wasm kernels, two query rows at a time (the products: gemm.ts).
// Scores are accumulated in float64 (JS numbers), so this path is slightly *more* accurate than float32 wasm.
import type { AttentionPlan } from '../plan.js';
import {
  ACT_POLYNOMIAL, ACT_RELU, ACT_SIGMOID, ACT_SOFTMAX, ACT_SOFTMAX1, ACT_SQUARED, MASK_ADDITIVE_F32, MASK_BOOL_U8, MASK_NONE,
} from '../plan.js';

import { rotated } from '../rope.js';
import { expNonPositive } from './exp.js';
import { dots, dots2, weightedSum, weightedSum2 } from './gemm.js';
import type { CacheView } from './kvcache.js';

const f32 = Math.fround;

/** dst = n rows of `width` floats from src (rows `stride` apart from `at`), as float64: converted once, not at every read. */
function rowsAsFloat64(dst: Float64Array, src: Float32Array, at: number, stride: number, n: number, width: number): void {
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < width; c++) dst[r * width + c] = src[at + r * stride + c]!;
  }
}

/**
 * A score from its float64 q·k: float32(float32(q·k) · scale), the wasm kernels' rounding (their tiles sum q·k in
 * float32, then scale it), unless q·k itself is beyond float32: then float32(q·k · scale), as their float64 path
 * gives (assembly/range.ts), so a q·k of 1e39 at scale 1/8 is the score 1.25e38, not ∞.
 */
function scoreOf(dot: number, scale: number): number {
  const d = f32(dot);
  return d - d === 0 ? f32(d * scale) : f32(dot * scale); // d − d: 0 where d is finite, NaN for ±∞ and NaN
}

/** σ(x) without overflow: e^(−|x|) ≤ 1 in both branches. */
function sigmoid(x: number): number {
  const e = expNonPositive(-Math.abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/**
 * out (B,H,L,Dv) = act(q̃ (B,H,L,D) · k̃ᵀ (B,KVH,D,S) · scale [softcapped] + ALiBi + mask) · v (B,KVH,S,Dv), q̃ and
 * k̃ rotated by RoPE when asked, and, when `weights` is given, the weights (B,H,L,S). With `layout: 'bshd'` the
 * tensors are (B,L,H,·) and (B,S,KVH,·). Memory beyond the outputs: one head's q, k and v in float64 and two
 * rows of S scores (and rotated copies of q and k with RoPE). `cache` ≠ null: k and v are unused, the keys and
 * values are read from a KV cache (kvcache.ts) whose head (row · KVH + kv head) holds key j in slot j mod its slots,
 * keys already rotated; rows then go one at a time through the cache's own dots and weightedSum.
 */
export function attentionRows(
  out: Float32Array, weights: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, plan: AttentionPlan,
  cache: CacheView | null = null,
): void {
  const { batch: B, heads: H, kvHeads: KVH, seqQ: L, seqK: S, headDim: D, headDimV: Dv, scale } = plan;
  const { causal, bottomRight, mask, maskKind, activation, softcap, power, window, alibiSlopes, sinks, keyLengths, rope } = plan;
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
  // One head's q rows and one kv head's k and v rows as float64 (rows D or Dv apart), converted once per head.
  // Decoding (L = 1): k and v are read as they are. A float64 copy costs as much as the products when a key
  // serves one row (2.7× slower at H32 S4096 D128), and still more than it saves with GQA groups of 4 (1.4×).
  const direct = cache === null && L === 1;
  const qh = new Float64Array(cache === null ? L * D : 0);
  const kh = new Float64Array(cache === null && !direct ? S * D : 0), vh = new Float64Array(cache === null && !direct ? S * Dv : 0);
  let loaded = -1; // which (batch, kv head) kh and vh hold
  // Two rows at a time: a for query i, b for query i + 1.
  const sa = new Float64Array(S), sb = new Float64Array(S);
  const oa = new Float64Array(Dv), ob = new Float64Array(Dv);

  for (let b = 0; b < B; b++) {
    const keys = keyLengths === null ? S : keyLengths[b]!; // keys this batch row uses
    const param = plan.rowParams === null ? plan.param : plan.rowParams[b]!; // its activation constant
    const off = keys - L; // query i sits at key position i + off (bottom-right alignment)
    // Admissible keys of query i: lo ≤ j < hi (key lengths, causal, window); keys outside are never read.
    const hiOf = (i: number) => {
      let hi = keys;
      if (causal) hi = Math.min(hi, i + (bottomRight ? off : 0) + 1);
      if (window !== null) hi = Math.min(hi, i + off + window[1] + 1);
      return Math.max(hi, loOf(i));
    };
    const loOf = (i: number) => window === null ? 0 : Math.max(0, i + off - window[0]);
    for (let h = 0; h < H; h++) {
      const kv = Math.floor(h / group);
      const kHead = kvBshd ? (b * S * KVH + kv) * D : (b * KVH + kv) * S * D;
      const vHead = kvBshd ? (b * S * KVH + kv) * Dv : (b * KVH + kv) * S * Dv;
      const slope = alibiSlopes === null ? 0 : alibiSlopes[h]!;
      const plain = !(softcap > 0) && slope === 0 && maskKind === MASK_NONE;
      const sink = activation === ACT_SOFTMAX1 ? 0 : sinks === null ? -Infinity : sinks[h]!;
      if (cache === null && !direct && b * KVH + kv !== loaded) {
        rowsAsFloat64(kh, k, kHead, ks, S, D);
        rowsAsFloat64(vh, v, vHead, vs, S, Dv);
        loaded = b * KVH + kv;
      }
      if (cache === null) rowsAsFloat64(qh, q, bshd ? (b * L * H + h) * D : (b * H + h) * L * D, qs, L, D);

      /** Scores of query i (s over lo ≤ j < hi) → its weights in place; returns the row's denominator. */
      const weigh = (s: Float64Array, i: number, lo: number, hi: number): number => {
        const mRow = b * msB + h * msH + i * msL;
        // s = q_i · kᵀ · scale, softcapped, + ALiBi + mask; a bool-mask 0 gives −∞
        let max = -Infinity;
        // No cap, bias or mask (most calls): the same scores from a loop with nothing to test per key.
        if (plain) {
          for (let j = lo; j < hi; j++) {
            const score = scoreOf(s[j]!, scale);
            s[j] = score;
            if (score > max) max = score;
          }
        }
        for (let j = plain ? hi : lo; j < hi; j++) {
          // The wasm kernels' score (scoreOf): a score beyond float32 (> 3.4e38) is ±∞ here too and every backend
          // gives the same NaN/∞ answers.
          let score = scoreOf(s[j]!, scale);
          if (softcap > 0) score = softcap * Math.tanh(score / softcap);
          if (slope !== 0) score = f32(score - slope * Math.abs(i + off - j));
          if (maskKind === MASK_ADDITIVE_F32) { // a −∞ entry excludes the key whatever the score (NaN + −∞ is NaN)
            const m = mask![mRow + j * msS]!;
            score = m === -Infinity ? -Infinity : f32(score + m);
          }
          else if (maskKind === MASK_BOOL_U8 && mask![mRow + j * msS] === 0) score = -Infinity;
          s[j] = score;
          // Softmax pass 1: the max. Subtracting it makes every exponent ≤ 0, so e^x cannot overflow even for
          // logits of 1e4. `>` skips NaN, which then poisons the sum below, so a NaN score gives a NaN row.
          if (score > max) max = score;
        }
        // Pass 2: weights p_j and the row's denominator.
        if (activation === ACT_SOFTMAX || activation === ACT_SOFTMAX1) {
          // A sink (softmax1: the sink 0) is one more logit in the denominator only: with ref = max(sink, max),
          // it adds e^(sink − ref) ≤ 1. With no admissible key and no sink, max is −∞; exponentiate against 0 so
          // every p_j is e^(−∞) = 0 instead of e^(−∞ + ∞) = NaN, and the row comes out as zeros.
          const top = Math.max(sink, max);
          const ref = top === -Infinity ? 0 : top;
          let sum = expNonPositive(sink - ref);
          for (let j = lo; j < hi; j++) {
            const p = expNonPositive(s[j]! - ref);
            s[j] = p;
            sum += p;
          }
          return sum;
        }
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
        return activation === ACT_SQUARED ? sum + param : 1;
      };

      /** out_i (Dv) = o / denominator, and the row's weights when asked. */
      const store = (o: Float64Array, s: Float64Array, i: number, lo: number, hi: number, denominator: number) => {
        const row = (b * H + h) * L + i; // row of the weights, always (B,H,L,S)
        const oRow = bshd ? ((b * L + i) * H + h) * Dv : row * Dv;
        const inv = denominator === 0 ? 0 : 1 / denominator;
        for (let c = 0; c < Dv; c++) out[oRow + c] = o[c]! * inv;
        if (weights !== null) {
          for (let j = 0; j < S; j++) weights[row * S + j] = j >= lo && j < hi ? s[j]! * inv : 0;
        }
      };

      if (cache !== null) {
        // A KV cache (any dtype, ragged rows, rolling slots): one row at a time through the cache's kernels.
        const head = (cache.rows === null ? b : cache.rows[b]!) * KVH + kv; // the cache's head
        for (let i = 0; i < L; i++) {
          const lo = loOf(i), hi = hiOf(i);
          cache.dots(sa, q, bshd ? ((b * L + i) * H + h) * D : ((b * H + h) * L + i) * D, head, lo, hi);
          const denominator = weigh(sa, i, lo, hi);
          cache.weightedSum(oa, sa, head, lo, hi);
          store(oa, sa, i, lo, hi, denominator);
        }
        continue;
      }
      for (let i = 0; i < L; i += 2) {
        const loA = loOf(i), hiA = hiOf(i);
        oa.fill(0);
        if (i + 1 === L) { // the last row of an odd count, alone
          if (direct) dots(sa, qh, i * D, k, kHead, ks, D, loA, hiA);
          else dots(sa, qh, i * D, kh, 0, D, D, loA, hiA);
          const denominator = weigh(sa, i, loA, hiA);
          if (direct) weightedSum(oa, sa, v, vHead, vs, Dv, loA, hiA);
          else weightedSum(oa, sa, vh, 0, Dv, Dv, loA, hiA);
          store(oa, sa, i, loA, hiA, denominator);
          break;
        }
        // s (2, S) = [q_i; q_i+1] (2, D) · kᵀ (D, S) over the keys either row admits (adjacent rows differ by a
        // key or so at each end); each row then weighs only its own keys.
        const loB = loOf(i + 1), hiB = hiOf(i + 1);
        dots2(sa, sb, qh, i * D, (i + 1) * D, kh, 0, D, D, Math.min(loA, loB), Math.max(hiA, hiB));
        const denA = weigh(sa, i, loA, hiA);
        const denB = weigh(sb, i + 1, loB, hiB);
        // o = p · v: keys both rows admit in one pass, then each row's own keys at either end.
        ob.fill(0);
        const lo = Math.max(loA, loB), hi = Math.max(lo, Math.min(hiA, hiB));
        weightedSum2(oa, ob, sa, sb, vh, 0, Dv, Dv, lo, hi);
        weightedSum(oa, sa, vh, 0, Dv, Dv, loA, Math.min(lo, hiA));
        weightedSum(oa, sa, vh, 0, Dv, Dv, Math.max(hi, loA), hiA);
        weightedSum(ob, sb, vh, 0, Dv, Dv, loB, Math.min(lo, hiB));
        weightedSum(ob, sb, vh, 0, Dv, Dv, Math.max(hi, loB), hiB);
        store(oa, sa, i, loA, hiA, denA);
        store(ob, sb, i + 1, loB, hiB, denB);
      }
    }
  }
}
