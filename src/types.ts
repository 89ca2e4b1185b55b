import type { LinearAttentionOptions, LinearState, LinearStateOptions } from './types-linear.js';

/** Where a causal mask is anchored when seqQ ≠ seqK. `true` means `'top-left'` (PyTorch `is_causal`). */
export type CausalMode = boolean | 'top-left' | 'bottom-right';

/**
 * How scores become weights. `'softmax'` is standard attention; the others are the alternatives studied in
 * the literature (see the README's "Beyond softmax" for formulas and what each row sums to).
 */
export type Activation = 'softmax' | 'softmax1' | 'squared' | 'sigmoid' | 'relu' | 'polynomial';

/** The shape of a call, shared by attention, linear attention and (in part) KV caches. Tensors are row-major. */
export interface AttentionShape {
  /** Batch size B (integer ≥ 1). */
  batch: number;
  /** Query heads H (integer ≥ 1). */
  heads: number;
  /** Query length L (integer ≥ 1). */
  seqQ: number;
  /** Key/value length S (integer ≥ 1). */
  seqK: number;
  /** Head dimension D of q and k (integer ≥ 1). */
  headDim: number;
  /** Key/value heads for GQA/MQA; `heads % kvHeads === 0`. Query head h reads kv head ⌊h / (heads / kvHeads)⌋. Default `heads`. */
  kvHeads?: number;
  /** Head dimension of v and of the output. Default `headDim`. */
  headDimV?: number;
  /**
   * `false` (default): no causal mask. `true` or `'top-left'`: query i sees keys j ≤ i (PyTorch `is_causal`).
   * `'bottom-right'`: query i sees keys j ≤ i + seqK − seqQ (FlashAttention ≥ 2.1, KV-cache decode).
   * Combined with `mask`, both apply.
   */
  causal?: CausalMode;
  /**
   * Destination of length batch·heads·seqQ·headDimV; returned as the result. May alias an input. Attention (not
   * linear attention) also writes 16-bit destinations ({@link HalfTensor}), rounding to nearest even.
   */
  out?: TensorInput | HalfTensor;
}

/** Memory order of q, k, v and the output: `'bhsd'` = [batch, heads, seq, dim], `'bshd'` = [batch, seq, heads, dim]. */
export type Layout = 'bhsd' | 'bshd';

/**
 * Rotary position embedding of q and k before their product (RoFormer; Llama, Qwen, Phi, NeoX, GPT-J).
 * Pair t of a row at position p is rotated by the angle p·f_t: (x, y) → (x cos − y sin, x sin + y cos).
 */
export interface RopeOptions {
  /** Channels rotated, even, ≤ headDim; the rest pass through (partial rotary). Default headDim. */
  dims?: number;
  /** f_t = base^(−2t/dims). Finite, > 0; default 10000. */
  base?: number;
  /** The dims/2 frequencies f_t themselves (Llama 3 / YaRN scaling), instead of `base`. */
  frequencies?: Float32Array | Float64Array | readonly number[];
  /** Pairs (2t, 2t+1) (GPT-J) instead of the default half-split pairs (t, t + dims/2) (Llama, NeoX). */
  interleaved?: boolean;
  /** Position of query row 0 (integer ≥ 0); row i is at positionQ + i. Default 0. */
  positionQ?: number;
  /** Position of key row 0 (integer ≥ 0); row j is at positionK + j. Default 0. */
  positionK?: number;
}

/**
 * Options of attention that real models need beyond the textbook formula. Every key position rule is aligned
 * bottom-right, as in FlashAttention 2: with off_b = keyLengths[b] − seqQ (or seqK − seqQ), query i sits at key
 * position i + off_b.
 */
export interface ModelOptions {
  /**
   * Sliding window [left, right]: key j is admissible for query i iff i + off_b − left ≤ j ≤ i + off_b + right.
   * Integers ≥ 0 or Infinity. Mistral: [4095, 0] with causal. Combines with causal and masks: all apply.
   */
  window?: readonly [number, number];
  /** ALiBi (BLOOM, MPT): adds −slope_h·|i + off_b − j| to the scaled, soft-capped score. Length `heads`, finite. */
  alibiSlopes?: Float32Array;
  /**
   * Attention sinks (gpt-oss), softmax only: w_j = e^(s_j) / (e^(sink_h) + Σ e^(s)). Length `heads`, finite.
   * A row with no admissible key outputs zeros.
   */
  sinks?: Float32Array;
  /** Rotary embedding of q and k; see {@link RopeOptions}. */
  rope?: RopeOptions;
  /** Memory order of q, k, v, `out` (not of `mask` or the returned weights). Default `'bhsd'`. */
  layout?: Layout;
  /**
   * Keys used per batch row (ragged batches): batch row b attends to keys j < keyLengths[b] only (0 allowed: zero
   * rows), and bottom-right alignment uses keyLengths[b] in place of seqK. Length `batch`, integers in [0, seqK].
   */
  keyLengths?: Int32Array | readonly number[];
}

/** Options of one attention call; see {@link AttentionEngine.attention}. */
export interface AttentionOptions extends AttentionShape, ModelOptions {
  /** Multiplier of q·kᵀ; a finite float32 (|scale| ≤ 3.4028235e38; used rounded to float32). Default `1 / Math.sqrt(headDim)`. */
  scale?: number;
  /**
   * Float32Array: added to the scaled scores (−Infinity excludes a key).
   * Uint8Array: 1 (any non-zero) = the key takes part, 0 = excluded (PyTorch bool-mask semantics).
   */
  mask?: Float32Array | Uint8Array;
  /** Shape of `mask`, broadcastable (right-aligned, size-1 dims broadcast) to [batch, heads, seqQ, seqK]. Default [seqQ, seqK]. */
  maskShape?: readonly number[];
  /** Score normalisation. Default `'softmax'`. */
  activation?: Activation;
  /** `'squared'` only: ε in pᵢ² / (Σⱼ pⱼ² + ε). Finite, ≥ 0; default 1e-6. */
  epsilon?: number;
  /** `'sigmoid'` only: b in σ(sᵢ + b). Finite; default −ln(seqK), seqK being each batch row's own key count (keyLengths[b]). */
  bias?: number;
  /** `'polynomial'` only: integer p in sᵢᵖ / √seqK (seqK: the batch row's key count), 1 ≤ p ≤ 64; default 3. */
  power?: number;
  /** Gemma-2 soft-capping: scores ← softcap·tanh(scores / softcap) before ALiBi and the mask. A float32 from 1.18e-38 to 3.4e38; default off. */
  softcap?: number;
  /**
   * Also return the weight matrix [batch, heads, seqQ, seqK] (this materialises it: O(seqQ·seqK) memory).
   * The call then returns `{ output, weights }`.
   */
  returnWeights?: boolean;
}

/** Result of a call with `returnWeights: true`. */
export interface AttentionWithWeights {
  /** [batch, heads, seqQ, headDimV] */
  output: Float32Array;
  /** [batch, heads, seqQ, seqK]; inadmissible (masked, causal) positions are exactly 0. */
  weights: Float32Array;
}

export type { FeatureMap, LinearAttentionOptions, LinearState, LinearStateOptions } from './types-linear.js';

/**
 * A Float32 tensor that lives inside an engine's memory (see {@link AttentionEngine.alloc}). Passing it as q, k,
 * v or `out` skips the copy into (or out of) wasm memory.
 */
export interface WasmTensor {
  readonly length: number;
  /**
   * A view of the tensor. When wasm memory grows (a larger call, a new allocation or KV cache), earlier views
   * are detached by the runtime (length 0): read this property again after any engine call instead of keeping
   * the array. A detached or freed tensor passed to a call throws `AttentionError`; it never reads stale memory.
   */
  readonly array: Float32Array;
  /** Whether {@link WasmTensor.free} was called (or the engine disposed). */
  readonly freed: boolean;
  /** Returns the memory to the engine. Idempotent. */
  free(): void;
}

/** A tensor argument: a Float32Array (copied in) or a tensor allocated in the engine (used in place). */
export type TensorInput = Float32Array | WasmTensor;

/**
 * A Float16Array, typed by shape so that these declarations need no `lib.esnext.float16` (Node 20 has no
 * Float16Array; Node ≥ 24, Deno, Bun and current browsers do).
 */
export interface Float16ArrayLike extends ArrayBufferView {
  readonly length: number;
  readonly [Symbol.toStringTag]: 'Float16Array';
  [index: number]: number;
}

/**
 * A 16-bit tensor: a Float16Array, or a Uint16Array holding IEEE binary16 bits (where there is no Float16Array).
 * Accepted as q, k, v and `out` of attention and KV-cache calls and as the tokens of `append`; the kernels decode
 * it while packing (no separate conversion pass). Results are float32 unless `out` is 16-bit.
 */
export type HalfTensor = Uint16Array | Float16ArrayLike;

/** Any tensor attention takes: float32 (array or engine tensor) or 16-bit. */
export type AttentionTensor = TensorInput | HalfTensor;

/**
 * How a KV cache stores keys and values. `'float32'`: as given. `'float16'`: IEEE binary16, rounded to nearest even
 * (finite magnitudes beyond 65504 saturate to ±65504; below 2^−14 ≈ 6.1e-5 subnormals keep an absolute precision of
 * 2^−24 ≈ 6e-8). `'int8'`: symmetric blocks of 32 channels of one (token, kv head) row with one float32 scale each,
 * max|x| / 127 (q8_0-style; a shorter last block when the head dimension is not a multiple of 32). Half-size and
 * int8 caches refuse NaN and ±Infinity.
 */
export type KVCacheDtype = 'float32' | 'float16' | 'int8';

/** Options of {@link AttentionEngine.createKVCache}. */
export interface KVCacheOptions {
  /** Rows: sequences kept side by side, each with its own length (continuous batching). */
  batch: number;
  kvHeads: number;
  headDim: number;
  /** Default `headDim`. */
  headDimV?: number;
  /**
   * Tokens each row can hold. With `window`: how many of the latest tokens are kept (default `window`, rounded up
   * to a multiple of 8); an attend of seqQ queries needs capacity ≥ window − 1 + seqQ.
   */
  capacity?: number;
  /** Element type of the stored keys and values. Default `'float32'`. */
  dtype?: KVCacheDtype;
  /**
   * Rolling cache for sliding-window layers (Mistral, Gemma local layers): keeps only the latest `capacity` tokens
   * of each row in a ring (memory O(window) however long the generation), and `attend` lets a query see the last
   * `window` positions up to its own (window `[window − 1, ·]` joined with the call's own). Positions keep counting,
   * for RoPE and the bottom-right alignment.
   */
  window?: number;
  /**
   * Rotary embedding applied by the cache: appended keys are stored rotated at their own positions
   * (positionK + their index in the cache), and `attend` rotates query row i at positionQ + length − seqQ + i.
   * `positionQ` / `positionK` default 0. `attend` then takes no `rope` of its own.
   */
  rope?: RopeOptions;
  /** Memory order of the k and v that `append` takes: `'bhsd'` [batch, kvHeads, n, dim] (default) or `'bshd'`. */
  layout?: Layout;
}

/**
 * Options of {@link KVCache.attend}: those of attention minus what the cache fixes (batch, kvHeads, seqK, head
 * dims, rope, key lengths). `layout` is that of q and the output.
 */
export type KVAttendOptions = Omit<AttentionOptions, 'batch' | 'kvHeads' | 'seqK' | 'headDim' | 'headDimV' | 'rope' | 'keyLengths'> & {
  /**
   * The cache row each batch entry of q reads (FlashAttention's cache_batch_idx), default 0 … batch − 1. Entry i
   * attends over row rows[i]'s own tokens, aligned bottom-right to that row's length (its cache_seqlens).
   */
  rows?: ArrayLike<number>;
};

/** Options of {@link KVCache.append}. */
export interface KVAppendOptions {
  /** The cache rows the tokens go to (distinct), default every row; each row appends at its own length. */
  rows?: ArrayLike<number>;
}

/**
 * Keys and values kept resident in engine memory across calls, for autoregressive decoding: each step appends
 * the new tokens (copying only them) and attends over everything cached.
 */
export interface KVCache {
  readonly batch: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly headDimV: number;
  /** Tokens a row holds (a rolling cache: the latest `capacity`). */
  readonly capacity: number;
  readonly dtype: KVCacheDtype;
  /** The rolling window, or null. */
  readonly window: number | null;
  /** Bytes of memory the cache holds: keys, values and int8 scales. */
  readonly bytes: number;
  /** Tokens appended to each row so far (a copy); a rolling cache keeps only the latest `capacity` of them. */
  readonly lengths: Int32Array;
  /** The longest row's length (seqK of an attend over every row). */
  readonly length: number;
  /**
   * Appends n tokens to each row of `options.rows` (default every row), each at its own length: k
   * [rows, kvHeads, n, headDim], v [rows, kvHeads, n, headDimV] ([rows, n, kvHeads, ·] with layout 'bshd');
   * n is inferred from k. Float32 or 16-bit.
   */
  append(k: AttentionTensor, v: AttentionTensor, options?: KVAppendOptions): void;
  /**
   * Attention of q [batch, heads, seqQ, headDim] (batch = rows.length with `options.rows`) over the cached
   * tokens; `'bottom-right'` causal suits decoding.
   */
  attend(q: AttentionTensor, options: KVAttendOptions & { returnWeights: true }): AttentionWithWeights;
  attend<O extends HalfTensor>(q: AttentionTensor, options: KVAttendOptions & { out: O }): O;
  attend(q: AttentionTensor, options: KVAttendOptions): Float32Array;
  /** Forgets every token of `row` (length 0), or of every row when omitted, keeping the memory. */
  reset(row?: number): void;
  /** Releases the cache's memory; later use throws `DISPOSED`. Idempotent. */
  dispose(): void;
}

/** What an engine actually runs. */
export type BackendName = 'wasm-relaxed-simd' | 'wasm-simd' | 'js';

/** What {@link createAttention} may pick: `'auto'` prefers relaxed SIMD, then SIMD, then JS; `'wasm'` the best wasm variant or an error. */
export type BackendRequest = 'auto' | 'wasm' | BackendName;

/** Options of {@link createAttention}. */
export interface EngineOptions {
  /** Default `'auto'`. */
  backend?: BackendRequest;
  /**
   * Upper bound on the engine's wasm linear memory, in bytes (default and maximum: 4 GiB, the wasm32 limit).
   * A call that would need more throws `AttentionError` with code `'OUT_OF_MEMORY'`. Ignored by the JS backend.
   */
  maxMemoryBytes?: number;
  /**
   * Threads that share each attention call (default 1: no workers, no shared memory, no special headers).
   * More than 1 starts `threads − 1` workers (worker_threads in Node, Deno and Bun; module Web Workers in
   * browsers) on a shared wasm memory; it needs SharedArrayBuffer, which browsers give only to cross-origin
   * isolated pages (COOP + COEP headers), else createAttention throws `'BACKEND_UNAVAILABLE'`. Work is split by
   * (batch, head, block of 64 query rows), so a call with fewer such blocks than threads leaves threads idle.
   * Linear attention and KV-cache appends run on the calling thread. Wasm backends only.
   */
  threads?: number;
  /**
   * With `threads > 1`: how long, in milliseconds, an idle thread spins for the next call (a worker) or for the
   * workers' last items (the caller) before it blocks in `Atomics.wait` (default 0.5, from 0 to 1000). Spinning
   * saves the wake-up system calls between back-to-back calls (tens of µs each on a busy machine) at the price of
   * up to `spinMs` of one core's time per worker after each call; 0 blocks at once (lowest idle CPU, e.g. on
   * battery). A browser's main thread cannot block, so there the caller always spins for the workers. Ignored
   * without threads.
   */
  spinMs?: number;
}

/** An attention engine: one backend, its memory, and the calls that use them. */
export interface AttentionEngine {
  /** The backend that runs the calls. */
  readonly backend: BackendName;
  /** Threads sharing each attention call, the calling thread included (1 unless created with `threads`). */
  readonly threads: number;
  /**
   * Bytes of wasm linear memory the engine holds (0 for the JS backend). It grows to the largest call made so
   * far and never shrinks until `dispose()`, so repeated calls of one shape allocate nothing.
   */
  readonly memoryBytes: number;
  /**
   * out (batch, heads, seqQ, headDimV) = softmax(q·kᵀ·scale + mask) · v for every batch and head.
   *
   * q is [batch, heads, seqQ, headDim], k is [batch, kvHeads, seqK, headDim], v is [batch, kvHeads, seqK, headDimV],
   * all row-major Float32Arrays. A query row with no admissible key yields zeros.
   * @throws AttentionError on invalid input (before any memory is touched) or when the call cannot fit in memory.
   */
  attention(q: AttentionTensor, k: AttentionTensor, v: AttentionTensor, options: AttentionOptions & { returnWeights: true }): AttentionWithWeights;
  attention<O extends HalfTensor>(q: AttentionTensor, k: AttentionTensor, v: AttentionTensor, options: AttentionOptions & { out: O }): O;
  attention(q: AttentionTensor, k: AttentionTensor, v: AttentionTensor, options: AttentionOptions): Float32Array;
  /**
   * Linear attention (Katharopoulos et al. 2020) as an RNN, O((seqQ + seqK)·headDim·headDimV):
   * outᵢ = φ(qᵢ)ᵀ S / (φ(qᵢ)ᵀ z + ε), S = Σⱼ φ(kⱼ) vⱼᵀ, z = Σⱼ φ(kⱼ) over the keys query i admits, with optional
   * decay, gates and a streaming state; see {@link LinearAttentionOptions}. Same GQA and causal modes as
   * {@link attention}; no mask or scale.
   */
  linearAttention(q: TensorInput, k: TensorInput, v: TensorInput, options: LinearAttentionOptions): Float32Array;
  /** A recurrent state for causal {@link linearAttention} calls of this engine; see {@link LinearState}. */
  createLinearState(options: LinearStateOptions): LinearState;
  /**
   * A tensor of `length` floats (zero-filled) inside the engine's memory, for inputs and outputs that are reused
   * across calls without copies. Free it when done; the engine's `dispose()` frees all of them.
   */
  alloc(length: number): WasmTensor;
  /** A KV cache in the engine's memory; see {@link KVCache}. */
  createKVCache(options: KVCacheOptions): KVCache;
  /** Releases the engine's memory; any later call throws `AttentionError` with code `'DISPOSED'`. Idempotent. */
  dispose(): void;
}
