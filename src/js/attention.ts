// The pure-JS kernel: the same maths as the wasm kernels, one query row at a time, written to be read.
// Scores are accumulated in float64 (JS numbers), so this path is slightly *more* accurate than float32 wasm.
import type { AttentionPlan } from '../plan.js';
import { MASK_ADDITIVE_F32, MASK_BOOL_U8 } from '../plan.js';

/**
 * out (B,H,L,Dv) = softmax(q (B,H,L,D) · kᵀ (B,KVH,D,S) · scale + mask) · v (B,KVH,S,Dv).
 * Memory beyond the output: one row of S scores.
 */
export function attentionRows(out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, plan: AttentionPlan): void {
  const { batch: B, heads: H, kvHeads: KVH, seqQ: L, seqK: S, headDim: D, headDimV: Dv, scale } = plan;
  const { causal, causalOffset, mask, maskKind } = plan;
  const [msB, msH, msL, msS] = plan.maskStrides;
  const group = H / KVH;
  const s = new Float64Array(S);
  const o = new Float64Array(Dv);

  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kv = b * KVH + Math.floor(h / group);
      const kHead = kv * S * D;
      const vHead = kv * S * Dv;
      for (let i = 0; i < L; i++) {
        const qRow = ((b * H + h) * L + i) * D;
        const oRow = ((b * H + h) * L + i) * Dv;
        const mRow = b * msB + h * msH + i * msL;
        // Keys past the causal limit are never read.
        const limit = causal ? Math.max(0, Math.min(S, i + causalOffset + 1)) : S;

        // s (S) = q_i (D) · kᵀ (D,S) · scale + mask; inadmissible keys get −∞
        let max = -Infinity;
        for (let j = 0; j < limit; j++) {
          const kRow = kHead + j * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qRow + d]! * k[kRow + d]!;
          let score = dot * scale;
          if (maskKind === MASK_ADDITIVE_F32) score += mask![mRow + j * msS]!;
          else if (maskKind === MASK_BOOL_U8 && mask![mRow + j * msS] === 0) score = -Infinity;
          s[j] = score;
          // Softmax pass 1: the max. Subtracting it makes every exponent ≤ 0, so e^x cannot overflow even for
          // logits of 1e4. `>` skips NaN, which then poisons the sum below, so a NaN score gives a NaN row.
          if (score > max) max = score;
        }

        // Softmax pass 2: p_j = e^(s_j − max) and their sum. With no admissible key max is −∞; exponentiate
        // against 0 so every p_j is e^(−∞) = 0 instead of e^(−∞ + ∞) = NaN, and the row comes out as zeros.
        const ref = max === -Infinity ? 0 : max;
        let sum = 0;
        for (let j = 0; j < limit; j++) {
          const p = Math.exp(s[j]! - ref);
          s[j] = p;
          sum += p;
        }

        // Softmax pass 3, folded into the product: out_i (Dv) = (p (S) · v (S,Dv)) / sum.
        o.fill(0);
        for (let j = 0; j < limit; j++) {
          const p = s[j]!;
          const vRow = vHead + j * Dv;
          for (let c = 0; c < Dv; c++) o[c] = o[c]! + p * v[vRow + c]!;
        }
        const inv = sum === 0 ? 0 : 1 / sum;
        for (let c = 0; c < Dv; c++) out[oRow + c] = o[c]! * inv;
      }
    }
  }
}
