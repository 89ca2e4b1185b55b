// Types of linear attention: its options and its recurrent state (README "Linear attention").
import type { AttentionShape } from './types.js';

/** φ of linear attention: `'elu+1'` (elu(x) + 1, always positive; Katharopoulos et al.) or `'identity'` (RetNet, Mamba-2). */
export type FeatureMap = 'elu+1' | 'identity';

/**
 * Options of {@link AttentionEngine.linearAttention}: the shape options and the recurrence's. With d_t = γ_h·e^(a_t):
 * S_t = d_t·S_{t−1} + φ(k_t)v_tᵀ, z_t = d_t·z_{t−1} + φ(k_t); query i (at key i' = i + seqK − seqQ bottom-right,
 * i' = i top-left) outputs φ(q_i)ᵀS_{i'} / (φ(q_i)ᵀz_{i'} + ε), or φ(q_i)ᵀS_{i'} with `normalize: false`.
 * Non-causal: every query sees S and z over all keys (no decay, gates or state).
 */
export interface LinearAttentionOptions extends AttentionShape {
  /** φ applied to q and k. Default `'elu+1'`. */
  featureMap?: FeatureMap;
  /** Divide by φ(q)ᵀz + ε (default true); false gives φ(q)ᵀS (RetNet, Mamba-2). */
  normalize?: boolean;
  /** ε in the denominator. A finite float32 ≥ 0 (used rounded to float32); default 1e-6. Only with `normalize` (the default). */
  epsilon?: number;
  /** γ_h per query head, in (0, 1]: RetNet's per-head decay. Length `heads`. Causal only. */
  decay?: Float32Array;
  /** Per-token log-decay a ≤ 0 (Mamba-2 / GLA scalar gate), finite. Length `batch·heads·seqK`, [batch, heads, seqK]. Causal only. */
  gates?: Float32Array;
  /**
   * Recurrent state from {@link AttentionEngine.createLinearState} of the same engine and shape. The call starts
   * from it (instead of zero) and leaves the state after its last key in it. Causal only.
   */
  state?: LinearState;
}

/** Options of {@link AttentionEngine.createLinearState}. */
export interface LinearStateOptions {
  batch: number;
  /** Query heads (the state is per query head: decay and gates are). */
  heads: number;
  headDim: number;
  /** Default `headDim`. */
  headDimV?: number;
}

/**
 * The recurrent state (S, z) of causal linear attention for every (batch, query head), held by an engine: a causal
 * call given it starts from it and leaves the updated state in it, so a sequence can be fed in chunks, or one
 * token at a time as an RNN, with the same result as one call over the whole sequence.
 */
export interface LinearState {
  readonly batch: number;
  readonly heads: number;
  readonly headDim: number;
  readonly headDimV: number;
  /** Keys folded in since creation or the last reset. */
  readonly length: number;
  /** Back to the empty state (S = 0, z = 0). */
  reset(): void;
  /** Releases the state's memory; later use throws `DISPOSED`. Idempotent. */
  dispose(): void;
}
