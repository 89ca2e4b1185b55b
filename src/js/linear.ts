// Linear attention in plain JS, as the recurrence itself (O((L + S)·D·Dv)): the state S, z of each (batch, query
// head) takes one key at a time, and each query reads it at its key position. Same maths as the chunkwise wasm
// kernel (assembly/linear.ts), float64 throughout, magnitudes as logs:
//   S = e^σ·Ŝ, z = e^σ·ẑ; φ(x) = e^λ·φ̂(x) with max φ̂ = 1 per key or query row; ε scaled by e^(−λ_q − σ).
import type { LinearPlan } from '../plan-linear.js';

/** A state's storage on the JS backend: per (batch, query head) Ŝ (D × Dv), ẑ (D) and σ (−∞ = empty). */
export interface JsLinearState {
  readonly s: Float64Array;
  readonly z: Float64Array;
  readonly sigma: Float64Array;
}

export function jsLinearState(batch: number, heads: number, headDim: number, headDimV: number): JsLinearState {
  const sigma = new Float64Array(batch * heads).fill(-Infinity);
  return { s: new Float64Array(batch * heads * headDim * headDimV), z: new Float64Array(batch * heads * headDim), sigma };
}

export function resetJsLinearState(st: JsLinearState): void {
  st.s.fill(0);
  st.z.fill(0);
  st.sigma.fill(-Infinity);
}

/**
 * φ̂ of x[at … at + D) into f, returning λ = ln max φ over the finite entries (0 when none is finite and non-zero).
 * elu+1: φ(x) = x + 1 above 0, e^x below. identity: φ(x) = x, scaled by max |x|.
 */
function features(x: Float32Array, at: number, D: number, identity: boolean, f: Float64Array): number {
  let m = -Infinity;
  for (let d = 0; d < D; d++) {
    const a = identity ? Math.abs(x[at + d]!) : x[at + d]!;
    if (Number.isFinite(a) && a > m) m = a;
  }
  if (identity) {
    const scale = m > 0 ? m : 1;
    for (let d = 0; d < D; d++) f[d] = x[at + d]! / scale;
    return m > 0 ? Math.log(m) : 0;
  }
  const base = m > 0 || m === -Infinity ? 0 : m;
  const r = m > 0 ? 1 + m : 1;
  for (let d = 0; d < D; d++) {
    const a = x[at + d]!;
    f[d] = (a > 0 ? a + 1 : Math.exp(Math.min(a, 0) - base)) / r;
  }
  return m > 0 ? Math.log1p(m) : m === -Infinity ? 0 : m;
}

/** out_i per the plan; `state` (of the plan's shape) is read and left updated when given. */
export function linearRows(
  out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, plan: LinearPlan, state: JsLinearState | null,
): void {
  const { batch: B, heads: H, kvHeads: KVH, seqQ: L, seqK: S, headDim: D, headDimV: Dv, causal, causalOffset } = plan;
  const { epsilon, normalize, decay, gates } = plan;
  const identity = plan.featureMap === 1;
  const logEps = epsilon > 0 ? Math.log(epsilon) : -Infinity;
  const group = H / KVH;
  const own = state ?? jsLinearState(1, 1, D, Dv);
  const f = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kv = b * KVH + Math.floor(h / group);
      const head = b * H + h;
      const at = state === null ? 0 : head;
      const s = own.s.subarray(at * D * Dv, (at + 1) * D * Dv);
      const z = own.z.subarray(at * D, (at + 1) * D);
      let sigma = state === null ? -Infinity : own.sigma[at]!;
      if (state === null) {
        s.fill(0);
        z.fill(0);
      }
      const lnGamma = decay === null ? 0 : Math.log(decay[h]!);

      // S ← d_t·S + φ(k_t) v_tᵀ, z ← d_t·z + φ(k_t), in the scaled form: σ' = max(σ + ln d_t, λ_k).
      let added = 0;
      const addKey = (t: number) => {
        const logDecay = lnGamma + (gates === null ? 0 : gates[head * S + t]!);
        const kappa = features(k, (kv * S + t) * D, D, identity, f);
        const next = sigma === -Infinity ? kappa : Math.max(sigma + logDecay, kappa);
        const keep = sigma === -Infinity ? 0 : Math.exp(sigma + logDecay - next);
        const w = Math.exp(kappa - next);
        if (keep !== 1) {
          for (let i = 0; i < s.length; i++) s[i] = s[i]! * keep;
          for (let d = 0; d < D; d++) z[d] = z[d]! * keep;
        }
        const vRow = (kv * S + t) * Dv;
        for (let d = 0; d < D; d++) {
          const fw = f[d]! * w;
          z[d] = z[d]! + fw;
          for (let c = 0; c < Dv; c++) s[d * Dv + c] = s[d * Dv + c]! + fw * v[vRow + c]!;
        }
        sigma = next;
      };

      for (let i = 0; i < L; i++) {
        // Keys enter in order; a causal query stops at its key position i + causalOffset.
        const limit = causal ? Math.max(0, Math.min(S, i + causalOffset + 1)) : S;
        for (; added < limit; added++) addKey(added);
        const row = head * L + i;
        const mu = features(q, row * D, D, identity, f);
        const rho = sigma === -Infinity ? 0 : sigma;
        let den = logEps === -Infinity ? 0 : Math.exp(logEps - mu - rho);
        for (let d = 0; d < D; d++) den += f[d]! * z[d]!;
        const scale = Math.exp(mu + rho);
        for (let c = 0; c < Dv; c++) {
          let num = 0;
          for (let d = 0; d < D; d++) num += f[d]! * s[d * Dv + c]!;
          // A denominator of exactly 0 (ε = 0, nothing seen) gives a zero row, never 0/0.
          out[row * Dv + c] = !normalize ? num * scale : den === 0 ? 0 : num / den;
        }
      }
      if (state !== null) {
        for (; added < S; added++) addKey(added);
        own.sigma[at] = sigma;
      }
    }
  }
}
