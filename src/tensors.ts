// Engine-owned tensors and the rules for taking a call's arguments: a tensor of this engine, or a view inside one, is
// used in place; anything else is an ordinary array (copied, or rejected by validation).
import { AttentionError } from './errors.js';
import { isHalfTensor } from './half.js';
import { isFloat32Array } from './plan.js';
import type { WasmTensor } from './types.js';
import { viewLength } from './views.js';

/** A tensor inside some engine's memory. `viewOf` makes the (possibly re-created) view. */
export class EngineTensor implements WasmTensor {
  #freed = false;
  #view: Float32Array | null = null;

  constructor(
    readonly owner: object,
    readonly byteOffset: number,
    readonly length: number,
    private readonly viewOf: (t: EngineTensor) => Float32Array,
    private readonly onFree: (t: EngineTensor) => void,
  ) {
    // Frozen: its owner, offset and length say where a call reads and writes it in place, so no caller may redefine them.
    Object.freeze(this);
  }

  get freed(): boolean {
    return this.#freed;
  }

  /**
   * True for a tensor this package made, by its private field: unlike `instanceof`, a brand check runs no user code
   * (a Proxy's getPrototypeOf trap) and is not fooled by an object made from EngineTensor.prototype.
   */
  static is(x: unknown): x is EngineTensor {
    return typeof x === 'object' && x !== null && #freed in x;
  }

  get array(): Float32Array {
    if (this.#freed) throw new AttentionError('DISPOSED', 'this tensor was freed');
    if (this.#view === null || viewLength(this.#view) !== this.length) this.#view = this.viewOf(this);
    return this.#view;
  }

  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.#view = null;
    this.onFree(this);
  }

  /** Marks the tensor freed without returning memory (its engine is gone). */
  invalidate(): void {
    this.#freed = true;
    this.#view = null;
  }
}

/** A call argument after resolving tensors: the array to validate, and its offset when already in place. */
export interface Resolved {
  readonly array: unknown;
  readonly inPlace: number | null;
}

/**
 * Resolves q/k/v/out arguments for the engine `owner`. `locate` gives the byte offset of a view of the engine's own
 * memory (any view inside a live tensor: `tensor.array`, a subarray of it, a 16-bit view over its bytes) so it is
 * used in place by offset — the view itself would be detached if the call grows memory — or null for an ordinary
 * array; it throws INVALID_TYPE for a view of engine memory outside every live tensor. Every array type a call
 * accepts goes through it (float32 and 16-bit alike): one that skipped it would be copied from, or written to,
 * memory the engine reuses.
 */
export function resolveArgument(
  value: unknown, name: string, owner: object, locate: (view: ArrayBufferView, name: string) => number | null,
): Resolved {
  if (EngineTensor.is(value)) {
    if (value.freed) throw new AttentionError('DISPOSED', 'this tensor was freed', name);
    return { array: value.array, inPlace: value.owner === owner ? value.byteOffset : null };
  }
  if (isFloat32Array(value) || isHalfTensor(value)) return { array: value, inPlace: locate(value as ArrayBufferView, name) };
  return { array: value, inPlace: null };
}
