// Linear attention (Katharopoulos et al. 2020): out_i = φ(q_i)ᵀ S / (φ(q_i)ᵀ z + ε) with
// S = Σ_j φ(k_j) v_jᵀ and z = Σ_j φ(k_j) over the keys query i admits, φ(x) = elu(x) + 1.
// Keys are folded into the running state in order, so causal and non-causal cost the same O((L + S)·D·Dv),
// never O(L·S). z rides along as one extra column of v (v' = [v | 1]), so one update serves both sums.
import { CAUSAL_BOTTOM_RIGHT, CAUSAL_NONE, Params } from "./params.generated";
import { TANH_TABLE, vexp, vmadd } from "./vmath";

/** Width of the state rows: Dv values, the z column, padded to the 4-lane vector. */
// @ts-ignore: decorator
@inline function stateWidth(Dv: i32): i32 {
  return (Dv + 1 + 3) & ~3;
}

export function linearScratchBytes(params: usize): f64 {
  const p = changetype<Params>(params);
  const D = p.D, Dv = p.Dv;
  const w = <f64>stateWidth(Dv);
  return 4.0 * (<f64>D * w + 2.0 * w + <f64>((D + 3) & ~3));
}

/** φ(x) = x + 1 for x > 0, e^x otherwise: positive and smooth, so φ(q)·φ(k) is a valid weight. */
// @ts-ignore: decorator
@inline function phi(x: f32): f32 {
  const v = f32x4.splat(x);
  const zero = f32x4.splat(0);
  const one = v128.load32_splat(TANH_TABLE, 24);
  const r = v128.bitselect(f32x4.add(v, one), vexp(f32x4.pmin(v, zero)), f32x4.gt(v, zero));
  return f32x4.extract_lane(r, 0);
}

/**
 * out (B,H,L,Dv) from q (B,H,L,D), k (B,KVH,S,D), v (B,KVH,S,Dv) of the call at `params` (ε is `param`).
 * Causal top-left admits keys j ≤ i, bottom-right j ≤ i + S − L. A query that admits no key gets 0 / ε = 0.
 */
export function linearAttention(params: usize, scratch: usize): void {
  const p = changetype<Params>(params);
  const q = p.q, k = p.k, v = p.v, out = p.out;
  const B = p.B, H = p.H, KVH = p.KVH, L = p.L, S = p.S, D = p.D, Dv = p.Dv;
  const causal = p.causal != CAUSAL_NONE, causalOffset = p.causal == CAUSAL_BOTTOM_RIGHT ? S - L : 0, eps = p.param;
  const W = stateWidth(Dv);
  const rowBytes = <usize>W << 2;
  const state = scratch;
  const vRow = state + <usize>D * rowBytes;
  const num = vRow + rowBytes;
  const phiRow = num + rowBytes;
  const group = H / KVH;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvIndex = <usize>(b * KVH + h / group);
      const kHead = k + kvIndex * <usize>S * <usize>D * 4;
      const vHead = v + kvIndex * <usize>S * <usize>Dv * 4;
      const headIndex = <usize>(b * H + h);
      memory.fill(state, 0, <usize>D * rowBytes);
      // v' = [v_j | 1 | 0…]: the padding and the z column are set once, v_j is copied per key.
      memory.fill(vRow, 0, rowBytes);
      store<f32>(vRow + (<usize>Dv << 2), 1);
      let added = 0;
      for (let i = 0; i < L; i++) {
        const limit = causal ? max(0, min(S, i + causalOffset + 1)) : S;
        for (; added < limit; added++) {
          memory.copy(vRow, vHead + (<usize>added * <usize>Dv << 2), <usize>Dv << 2);
          const kRow = kHead + (<usize>added * <usize>D << 2);
          // S (D, W) += φ(k_j) (D) ⊗ v'_j (W)
          let st = state;
          for (let d = 0; d < D; d++) {
            const f = f32x4.splat(phi(load<f32>(kRow + (<usize>d << 2))));
            for (let c = 0; c < W; c += 4) {
              const p = st + (<usize>c << 2);
              v128.store(p, vmadd(f, v128.load(vRow + (<usize>c << 2)), v128.load(p)));
            }
            st += rowBytes;
          }
        }
        // num (W) = φ(q_i) (D) · S (D, W); the last used column is φ(q_i)·z.
        memory.fill(num, 0, rowBytes);
        const qRow = q + ((headIndex * <usize>L + <usize>i) * <usize>D << 2);
        let st = state;
        for (let d = 0; d < D; d++) {
          const f = f32x4.splat(phi(load<f32>(qRow + (<usize>d << 2))));
          for (let c = 0; c < W; c += 4) {
            const p = num + (<usize>c << 2);
            v128.store(p, vmadd(f, v128.load(st + (<usize>c << 2)), v128.load(p)));
          }
          st += rowBytes;
        }
        const inv: f32 = <f32>1 / (load<f32>(num + (<usize>Dv << 2)) + eps);
        const oRow = out + ((headIndex * <usize>L + <usize>i) * <usize>Dv << 2);
        for (let c = 0; c < Dv; c++) store<f32>(oRow + (<usize>c << 2), load<f32>(num + (<usize>c << 2)) * inv);
      }
    }
  }
}
