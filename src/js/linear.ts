// Linear attention in plain JS: the running-sum form, O((L + S)·D·Dv), as in assembly/linear.ts.
import type { LinearPlan } from '../plan.js';

/** φ(x) = elu(x) + 1: x + 1 above 0, e^x below; always positive. */
const phi = (x: number) => (x > 0 ? x + 1 : Math.exp(x));

/**
 * out_i (Dv) = φ(q_i)ᵀ S / (φ(q_i)ᵀ z + ε), S (D,Dv) = Σ_j φ(k_j) v_jᵀ, z (D) = Σ_j φ(k_j) over admitted keys.
 */
export function linearRows(out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, plan: LinearPlan): void {
  const { batch: B, heads: H, kvHeads: KVH, seqQ: L, seqK: S, headDim: D, headDimV: Dv, causal, causalOffset, epsilon } = plan;
  const group = H / KVH;
  const state = new Float64Array(D * Dv);
  const z = new Float64Array(D);
  const fq = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kv = b * KVH + Math.floor(h / group);
      state.fill(0);
      z.fill(0);
      let added = 0;
      for (let i = 0; i < L; i++) {
        // Keys enter the running sums in order; causal rows simply stop earlier.
        const limit = causal ? Math.max(0, Math.min(S, i + causalOffset + 1)) : S;
        for (; added < limit; added++) {
          const kRow = (kv * S + added) * D;
          const vRow = (kv * S + added) * Dv;
          for (let d = 0; d < D; d++) {
            const f = phi(k[kRow + d]!);
            z[d] = z[d]! + f;
            for (let c = 0; c < Dv; c++) state[d * Dv + c] = state[d * Dv + c]! + f * v[vRow + c]!;
          }
        }
        const row = (b * H + h) * L + i;
        let den = epsilon;
        for (let d = 0; d < D; d++) {
          fq[d] = phi(q[row * D + d]!);
          den += fq[d]! * z[d]!;
        }
        for (let c = 0; c < Dv; c++) {
          let num = 0;
          for (let d = 0; d < D; d++) num += fq[d]! * state[d * Dv + c]!;
          out[row * Dv + c] = num / den;
        }
      }
    }
  }
}
