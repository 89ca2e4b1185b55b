// The recurrent state of causal linear attention, as every backend hands it out: a shape, the engine it belongs
// to and the backend's own storage (`data`), with the lifecycle checks in one place.
import { AttentionError } from './errors.js';
import { dimension, readOptions } from './plan-util.js';
import type { LinearState, LinearStateOptions } from './types-linear.js';

/** The validated shape of a state. */
export interface LinearStateShape {
  readonly batch: number;
  readonly heads: number;
  readonly headDim: number;
  readonly headDimV: number;
}

const STATE_OPTIONS = new Set(['batch', 'heads', 'headDim', 'headDimV']);

/** Validates the options of createLinearState. */
export function planLinearState(raw: LinearStateOptions): LinearStateShape {
  const options = readOptions<LinearStateOptions>(raw, STATE_OPTIONS);
  const batch = dimension(options.batch, 'options.batch');
  const heads = dimension(options.heads, 'options.heads');
  const headDim = dimension(options.headDim, 'options.headDim');
  const headDimV = options.headDimV === undefined ? headDim : dimension(options.headDimV, 'options.headDimV');
  return { batch, heads, headDim, headDimV };
}

/** What a backend does when its state is reset or disposed; `alive` throws when the engine is gone. */
export interface StateHooks {
  alive(): void;
  reset(): void;
  release(): void;
}

/** A state of engine `owner`, with the backend's storage `data`. */
export class LinearStateHandle<T = unknown> implements LinearState {
  readonly batch: number;
  readonly heads: number;
  readonly headDim: number;
  readonly headDimV: number;
  #length = 0;
  #disposed = false;

  constructor(readonly owner: object, shape: LinearStateShape, readonly data: T, private readonly hooks: StateHooks) {
    ({ batch: this.batch, heads: this.heads, headDim: this.headDim, headDimV: this.headDimV } = shape);
  }

  get length(): number {
    return this.#length;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** True for a state this package made, by its private field (no user code runs, unlike `instanceof` on a Proxy). */
  static is(x: unknown): x is LinearStateHandle {
    return typeof x === 'object' && x !== null && #disposed in x;
  }

  /** Throws DISPOSED when this state (or its engine) is gone. */
  check(name = 'state'): void {
    if (this.#disposed) throw new AttentionError('DISPOSED', 'this linear-attention state was disposed', name);
    this.hooks.alive();
  }

  /** Records n more keys folded in by a call. */
  advance(n: number): void {
    this.#length += n;
  }

  reset(): void {
    this.check();
    this.hooks.reset();
    this.#length = 0;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.hooks.release();
  }

  /** Marks the state disposed without releasing anything (its engine is gone). */
  invalidate(): void {
    this.#disposed = true;
  }
}
