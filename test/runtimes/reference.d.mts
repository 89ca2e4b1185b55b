// Types of reference.mjs (a plain ES module, so the smoke suite runs it unchanged in every runtime).

export interface RopeOptions {
  /** Channels rotated (even, ≤ headDim); default headDim. */
  dims?: number;
  /** f_t = base^(−2t/dims); default 10000. */
  base?: number;
  /** f_t given directly, dims/2 of them. */
  frequencies?: ArrayLike<number>;
  /** Pairs (2t, 2t+1) instead of (t, t + dims/2). */
  interleaved?: boolean;
  /** Position of query row 0 / key row 0; default 0. */
  positionQ?: number;
  positionK?: number;
}

export interface RefOptions {
  batch: number; heads: number; seqQ: number; seqK: number; headDim: number;
  kvHeads?: number; headDimV?: number; scale?: number;
  causal?: boolean | 'top-left' | 'bottom-right';
  mask?: Float32Array | Uint8Array; maskShape?: readonly number[];
  activation?: 'softmax' | 'softmax1' | 'squared' | 'sigmoid' | 'relu' | 'polynomial';
  epsilon?: number; bias?: number; power?: number; softcap?: number;
  /** Key j admissible for query i iff i + off − left ≤ j ≤ i + off + right. */
  window?: readonly [number, number];
  alibiSlopes?: ArrayLike<number>;
  sinks?: ArrayLike<number>;
  rope?: RopeOptions;
  layout?: 'bhsd' | 'bshd';
  keyLengths?: ArrayLike<number>;
}

export type LinearRefOptions = Omit<RefOptions, 'mask' | 'maskShape' | 'activation' | 'scale' | 'softcap' |
  'window' | 'alibiSlopes' | 'sinks' | 'rope' | 'layout' | 'keyLengths'> & {
  featureMap?: 'elu+1' | 'identity';
  normalize?: boolean;
  /** γ per query head, in (0, 1]. */
  decay?: ArrayLike<number>;
  /** Log-decay per [batch, heads, seqK], ≤ 0. */
  gates?: ArrayLike<number>;
};

export function referenceWithWeights(q: Float32Array, k: Float32Array, v: Float32Array, o: RefOptions): { output: Float64Array; weights: Float64Array };
/** With the float32 score-rounding bound per output and weight element (O(S²) per row). */
export function referenceWithWeights(q: Float32Array, k: Float32Array, v: Float32Array, o: RefOptions, how: { bound: true }): { output: Float64Array; weights: Float64Array; outputBound: Float64Array; weightsBound: Float64Array };
export function referenceAttention(q: Float32Array, k: Float32Array, v: Float32Array, o: RefOptions): Float64Array;
export function referenceLinear(q: Float32Array, k: Float32Array, v: Float32Array, o: LinearRefOptions): Float64Array;
export function maxAbsError(got: ArrayLike<number>, want: ArrayLike<number>): number;
export function tolerance(want: ArrayLike<number>): number;
export function closeTo(got: ArrayLike<number>, want: ArrayLike<number>, bound?: ArrayLike<number>): { err: number; tol: number; ok: boolean };
export function relativeError(got: ArrayLike<number>, ref: ArrayLike<number>): number;
