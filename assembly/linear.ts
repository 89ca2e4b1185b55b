// Linear attention as an RNN (Katharopoulos et al. 2020; RetNet, GLA and Mamba-2's scalar-decay form). Per batch
// row b and query head h (kv head ⌊h / (H / KVH)⌋), key step t with decay d_t = γ_h · e^(a_t):
//
//   S_t = d_t·S_{t−1} + φ(k_t) v_tᵀ,   z_t = d_t·z_{t−1} + φ(k_t)       (S_{−1}, z_{−1}: the state, else 0)
//   out_i = φ(q_i)ᵀ S_{i'} / (φ(q_i)ᵀ z_{i'} + ε)   (or without the denominator),   i' = i + off
//
// computed chunkwise (linear-chunk.ts): LC keys at a time, a masked matmul inside the chunk and the state across
// chunks, so the work is matmuls on the 4×8 register tiles. Non-causal calls fold every key into the state, then
// read it once per query (shared by the query heads of a kv head). Queries with i' < 0 see the prior state only,
// those with i' ≥ S the final one.
import { chunk, setup, stateRows } from "./linear-chunk";
import { chunkScratchFloats, resetState, stateFloats } from "./linear-layout";
import { CAUSAL_BOTTOM_RIGHT, CAUSAL_NONE, LC, Params } from "./params.generated";

/** Scratch bytes of the linear-attention call at `params` (f64: huge shapes report instead of wrapping). */
export function linearScratchBytes(params: usize): f64 {
  const p = changetype<Params>(params);
  return 4 * chunkScratchFloats(p.D, p.Dv);
}

/** Bytes of a state for every (batch, query head) of B, H, D, Dv at `params`. */
export function linearStateBytes(params: usize): f64 {
  const p = changetype<Params>(params);
  return 4 * <f64>p.B * <f64>p.H * stateFloats(p.D, p.Dv);
}

/** Empties the state at params.linearState (B, H, D, Dv from `params`). */
export function linearStateReset(params: usize): void {
  const p = changetype<Params>(params);
  const bytes = <usize>stateFloats(p.D, p.Dv) << 2;
  for (let i = 0; i < p.B * p.H; i++) resetState(p.linearState + <usize>i * bytes, p.D, p.Dv);
}

/** Output rows i0 … i1 − 1 of one head from its state only, LC rows at a time. */
function rowsFromState(st: usize, q: usize, out: usize, i0: i32, i1: i32, D: i32, Dv: i32): void {
  for (let i = i0; i < i1; i += LC) {
    stateRows(st, q + (<usize>i * <usize>D << 2), out + (<usize>i * <usize>Dv << 2), min(LC, i1 - i));
  }
}

/** out (B,H,L,Dv) from q (B,H,L,D), k (B,KVH,S,D), v (B,KVH,S,Dv) and the options of the call at `params`. */
export function linearAttention(params: usize, scratch: usize): void {
  const p = changetype<Params>(params);
  const own = setup(p, scratch);
  const B = p.B, H = p.H, KVH = p.KVH, L = p.L, S = p.S, D = p.D, Dv = p.Dv;
  const group = H / KVH;
  const causal = p.causal != CAUSAL_NONE;
  const off = p.causal == CAUSAL_BOTTOM_RIGHT ? S - L : 0;
  const kept = p.linearState != 0;
  const stateBytes = <usize>stateFloats(D, Dv) << 2;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvIndex = <usize>(b * KVH + h / group);
      const headIndex = <usize>(b * H + h);
      const k = p.k + kvIndex * <usize>S * (<usize>D << 2);
      const v = p.v + kvIndex * <usize>S * (<usize>Dv << 2);
      const q = p.q + headIndex * <usize>L * (<usize>D << 2);
      const out = p.out + headIndex * <usize>L * (<usize>Dv << 2);
      const st = kept ? p.linearState + headIndex * stateBytes : own;

      if (!causal) {
        // Every query sees every key: one state per kv head, folded once, read by each of its query heads.
        if (h % group == 0) {
          resetState(st, D, Dv);
          for (let t0 = 0; t0 < S; t0 += LC) {
            const n = min(LC, S - t0);
            chunk(st, k + (<usize>t0 * <usize>D << 2), v + (<usize>t0 * <usize>Dv << 2), n, 0, 0, 0, 0, 0, 0, true);
          }
        }
        rowsFromState(st, q, out, 0, L, D, Dv);
        continue;
      }

      if (!kept) resetState(st, D, Dv);
      const lnGamma: f64 = p.logDecay != 0 ? <f64>load<f32>(p.logDecay + (<usize>h << 2)) : 0;
      const gates = p.gates != 0 ? p.gates + headIndex * (<usize>S << 2) : 0;
      // Queries before the first key see the prior state only.
      const before = min(L, max(0, -off));
      rowsFromState(st, q, out, 0, before, D, Dv);
      // Keys any query needs, or all of them when the state is kept; queries after the last key read the final state.
      const after = max(before, min(L, S - off));
      const last = kept || after < L ? S : min(S, L + off);
      for (let t0 = 0; t0 < last; t0 += LC) {
        const n = min(LC, last - t0);
        const i0 = max(0, t0 - off);
        const i1 = min(L, t0 + n - off);
        chunk(
          st, k + (<usize>t0 * <usize>D << 2), v + (<usize>t0 * <usize>Dv << 2), n, gates != 0 ? gates + (<usize>t0 << 2) : 0,
          lnGamma, q + (<usize>i0 * <usize>D << 2), out + (<usize>i0 * <usize>Dv << 2), max(0, i1 - i0), i0 + off - t0,
          kept || t0 + n < last || after < L,
        );
      }
      rowsFromState(st, q, out, after, L, D, Dv);
    }
  }
}
