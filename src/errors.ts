/** Machine-readable reason carried by every {@link AttentionError}. */
export type AttentionErrorCode =
  /** A tensor, mask or option has the wrong JavaScript type (e.g. a Float64Array where a Float32Array is required). */
  | 'INVALID_TYPE'
  /** A dimension is not a safe integer ≥ 1. */
  | 'INVALID_DIMENSION'
  /** Lengths or shapes disagree: a tensor's length, heads vs kvHeads, a mask shape that does not broadcast. */
  | 'SHAPE_MISMATCH'
  /** An option has an unsupported value (unknown key, non-finite scale, unknown causal mode or backend). */
  | 'INVALID_OPTION'
  /** The call needs more memory than the backend can provide (wasm32's 4 GiB, `maxMemoryBytes`, or typed-array limits). */
  | 'OUT_OF_MEMORY'
  /** The requested backend cannot run in this runtime (e.g. `backend: 'wasm'` without WebAssembly SIMD). */
  | 'BACKEND_UNAVAILABLE'
  /** A KV cache append would exceed the cache's capacity. */
  | 'CAPACITY_EXCEEDED'
  /** The engine, KV cache or tensor was disposed / freed. */
  | 'DISPOSED';

/**
 * The only error type the package throws for bad input or unavailable resources. It is always thrown before
 * any engine memory is written, so the engine stays usable afterwards.
 */
export class AttentionError extends Error {
  /** Why the call was rejected. */
  readonly code: AttentionErrorCode;
  /** The argument or option at fault (`'q'`, `'options.mask'`, …), when there is one. */
  readonly argument: string | undefined;

  constructor(code: AttentionErrorCode, message: string, argument?: string) {
    super(argument === undefined ? message : `${argument}: ${message}`);
    this.name = 'AttentionError';
    this.code = code;
    this.argument = argument;
  }
}
