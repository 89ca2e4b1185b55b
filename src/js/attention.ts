// The pure-JS kernels: the same maths as the wasm kernels, one query row at a time, written to be read.
// Scores are accumulated in float64 (JS numbers), so this path is slightly *more* accurate than float32 wasm.
import type { AttentionPlan } from '../plan.js';
import {
  ACT_POLYNOMIAL, ACT_RELU, ACT_SIGMOID, ACT_SOFTMAX, ACT_SOFTMAX1, ACT_SQUARED, MASK_ADDITIVE_F32, MASK_BOOL_U8,
} from '../plan.js';

const f32 = Math.fround;

/**
 * s_j = q_row · k_j for j < n: s (n) = q (D) · kᵀ (D,n). Four keys share each load of q and keep four
 * independent sums in flight, which is most of the plain-JS speed (≈ 3× the one-key loop).
 */
function dots(s: Float64Array, q: Float32Array, qRow: number, k: Float32Array, kHead: number, D: number, n: number): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const k0 = kHead + j * D, k1 = k0 + D, k2 = k1 + D, k3 = k2 + D;
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
  for (; j < n; j++) {
    const kRow = kHead + j * D;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qRow + d]! * k[kRow + d]!;
    s[j] = dot;
  }
}

/** o (Dv) = Σ_{j<n} p_j · v_j: p (n) · v (n,Dv), four value rows per pass over o. */
function weightedSum(o: Float64Array, p: Float64Array, v: Float32Array, vHead: number, Dv: number, n: number): void {
  o.fill(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const v0 = vHead + j * Dv, v1 = v0 + Dv, v2 = v1 + Dv, v3 = v2 + Dv;
    const p0 = p[j]!, p1 = p[j + 1]!, p2 = p[j + 2]!, p3 = p[j + 3]!;
    for (let c = 0; c < Dv; c++) o[c] = o[c]! + p0 * v[v0 + c]! + p1 * v[v1 + c]! + p2 * v[v2 + c]! + p3 * v[v3 + c]!;
  }
  for (; j < n; j++) {
    const pj = p[j]!, vRow = vHead + j * Dv;
    for (let c = 0; c < Dv; c++) o[c] = o[c]! + pj * v[vRow + c]!;
  }
}

/** σ(x) without overflow: e^(−|x|) ≤ 1 in both branches. */
function sigmoid(x: number): number {
  const e = Math.exp(-Math.abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/**
 * out (B,H,L,Dv) = act(q (B,H,L,D) · kᵀ (B,KVH,D,S) · scale [softcapped] + mask) · v (B,KVH,S,Dv),
 * and, when `weights` is given, the weights (B,H,L,S). Memory beyond the outputs: one row of S scores.
 * k and v hold `kvCapacity` ≥ S tokens per (batch, kv head), of which the first S take part (a KV cache).
 */
export function attentionRows(
  out: Float32Array, weights: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, plan: AttentionPlan,
  kvCapacity = plan.seqK,
): void {
  const { batch: B, heads: H, kvHeads: KVH, seqQ: L, seqK: S, headDim: D, headDimV: Dv, scale } = plan;
  const { causal, causalOffset, mask, maskKind, activation, softcap, param, power } = plan;
  const [msB, msH, msL, msS] = plan.maskStrides;
  const group = H / KVH;
  const s = new Float64Array(S);
  const o = new Float64Array(Dv);

  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kv = b * KVH + Math.floor(h / group);
      const kHead = kv * kvCapacity * D;
      const vHead = kv * kvCapacity * Dv;
      for (let i = 0; i < L; i++) {
        const row = (b * H + h) * L + i;
        const qRow = row * D;
        const mRow = b * msB + h * msH + i * msL;
        // Keys past the causal limit are never read.
        const limit = causal ? Math.max(0, Math.min(S, i + causalOffset + 1)) : S;

        // s (S) = q_i (D) · kᵀ (D,S) · scale, softcapped, + mask; inadmissible keys get −∞
        dots(s, q, qRow, k, kHead, D, limit);
        let max = -Infinity;
        for (let j = 0; j < limit; j++) {
          const dot = s[j]!;
          // Rounded to float32 like the wasm kernels' scores, so that a score overflowing float32 (|q·k| > 3.4e38)
          // becomes ±∞ here too and every backend gives the same NaN/∞ answers.
          let score = f32(f32(dot) * scale);
          if (softcap > 0) score = softcap * Math.tanh(score / softcap);
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
          // softmax1 = e^(s_i) / (1 + Σ e^(s_j)): with ref = max(0, max), the "1" becomes e^(−ref) ≤ 1.
          // With no admissible key (softmax) max is −∞; exponentiate against 0 so every p_j is e^(−∞) = 0
          // instead of e^(−∞ + ∞) = NaN, and the row comes out as zeros.
          const ref = activation === ACT_SOFTMAX1 ? Math.max(0, max) : max === -Infinity ? 0 : max;
          let sum = activation === ACT_SOFTMAX1 ? Math.exp(-ref) : 0;
          for (let j = 0; j < limit; j++) {
            const p = Math.exp(s[j]! - ref);
            s[j] = p;
            sum += p;
          }
          denominator = sum;
        } else {
          let sum = 0;
          for (let j = 0; j < limit; j++) {
            const x = s[j]!;
            let p = 0; // masked positions contribute exactly 0, whatever f(−∞) would be
            if (x !== -Infinity) {
              if (activation === ACT_SQUARED) p = f32(x * x);
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
        weightedSum(o, s, v, vHead, Dv, limit);
        const inv = denominator === 0 ? 0 : 1 / denominator;
        for (let c = 0; c < Dv; c++) out[row * Dv + c] = o[c]! * inv;
        if (weights !== null) {
          for (let j = 0; j < S; j++) weights[row * S + j] = j < limit ? s[j]! * inv : 0;
        }
      }
    }
  }
}
