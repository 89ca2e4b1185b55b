// Validation of the options real models need (window, ALiBi, sinks, RoPE, layout, key lengths). Every array is
// copied here, so what the kernels read is exactly what was validated, whatever the caller does later.
import { AttentionError } from './errors.js';
import { copyFloat32, describe, elementsOf, isFloat32Array, isInt32Array, readOptions } from './plan-util.js';
import type { Layout, ModelOptions, RopeOptions } from './types.js';
import { typedArrayKind } from './views.js';

/** A validated rotary embedding: the dims/2 frequencies in float64 and the positions of row 0. */
export interface RopePlan {
  readonly dims: number;
  readonly interleaved: boolean;
  readonly frequencies: Float64Array;
  readonly positionQ: number;
  readonly positionK: number;
}

export interface ModelPlan {
  /** [left, right], each clamped to seqQ + seqK (which admits every key, like Infinity); null = no window. */
  readonly window: readonly [number, number] | null;
  readonly alibiSlopes: Float32Array | null;
  readonly sinks: Float32Array | null;
  readonly rope: RopePlan | null;
  readonly layout: Layout;
  /** Keys per batch row; null = seqK for every row. */
  readonly keyLengths: Int32Array | null;
}

const ROPE_OPTIONS = new Set(['dims', 'base', 'frequencies', 'interleaved', 'positionQ', 'positionK']);

/** A per-head Float32Array of finite values, copied. */
function perHead(value: unknown, name: string, heads: number): Float32Array {
  if (!isFloat32Array(value)) throw new AttentionError('INVALID_TYPE', `must be a Float32Array, got ${describe(value)}`, name);
  const copy = copyFloat32(value, name);
  if (copy.length !== heads) {
    throw new AttentionError('SHAPE_MISMATCH', `length ${copy.length} does not match heads = ${heads}`, name);
  }
  const bad = copy.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw new AttentionError('INVALID_OPTION', `must be finite, element ${bad} is ${copy[bad]}`, name);
  return copy;
}

function windowOf(value: unknown, reach: number): readonly [number, number] {
  const name = 'options.window';
  const pair = Array.isArray(value) ? elementsOf(value, name) : null;
  if (pair === null || pair.length !== 2) {
    throw new AttentionError('INVALID_OPTION', `must be a pair [left, right], got ${describe(value)}`, name);
  }
  return pair.map((x, i) => {
    if (x !== Infinity && (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0)) {
      throw new AttentionError('INVALID_OPTION', `must be an integer ≥ 0 or Infinity, got ${describe(x)}`, `${name}[${i}]`);
    }
    return Math.min(x, reach);
  }) as unknown as readonly [number, number];
}

function position(value: unknown, name: string): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new AttentionError('INVALID_OPTION', `must be an integer ≥ 0, got ${describe(value)}`, name);
  }
  return value;
}

/** Validates `rope` against headDim (`name` is where it was given: options.rope). */
export function planRope(value: unknown, headDim: number, name = 'options.rope'): RopePlan {
  const r = readOptions<RopeOptions>(value, ROPE_OPTIONS, name);
  const dims = r.dims === undefined ? headDim : r.dims;
  if (typeof dims !== 'number' || !Number.isSafeInteger(dims) || dims < 2 || dims % 2 !== 0 || dims > headDim) {
    throw new AttentionError('INVALID_OPTION', `must be an even integer from 2 to headDim = ${headDim}, got ${describe(r.dims)}`, `${name}.dims`);
  }
  const interleaved = r.interleaved === undefined ? false : r.interleaved;
  if (typeof interleaved !== 'boolean') {
    throw new AttentionError('INVALID_OPTION', `must be a boolean, got ${describe(interleaved)}`, `${name}.interleaved`);
  }
  const half = dims / 2;
  let frequencies: Float64Array;
  if (r.frequencies !== undefined) {
    if (r.base !== undefined) throw new AttentionError('INVALID_OPTION', 'give base or frequencies, not both', `${name}.base`);
    const f = r.frequencies as unknown;
    if (!(Array.isArray(f) || typedArrayKind(f) !== undefined)) {
      throw new AttentionError('INVALID_TYPE', `must be a Float32Array, Float64Array or number[], got ${describe(f)}`, `${name}.frequencies`);
    }
    const list = elementsOf(f, `${name}.frequencies`);
    if (list.length !== half) {
      throw new AttentionError('SHAPE_MISMATCH', `length ${list.length} does not match dims / 2 = ${half}`, `${name}.frequencies`);
    }
    const bad = list.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x));
    if (bad >= 0) throw new AttentionError('INVALID_OPTION', `must be finite numbers, element ${bad} is ${describe(list[bad])}`, `${name}.frequencies`);
    frequencies = Float64Array.from(list as number[]);
  } else {
    const base = r.base === undefined ? 10000 : r.base;
    if (typeof base !== 'number' || !Number.isFinite(base) || base <= 0) {
      throw new AttentionError('INVALID_OPTION', `must be a finite number > 0, got ${describe(r.base)}`, `${name}.base`);
    }
    frequencies = Float64Array.from({ length: half }, (_, t) => base ** ((-2 * t) / dims));
  }
  return {
    dims, interleaved, frequencies,
    positionQ: position(r.positionQ, `${name}.positionQ`),
    positionK: position(r.positionK, `${name}.positionK`),
  };
}

/** Validates the model options of a call of shape [batch, heads, seqQ, seqK, headDim]. */
export function planModel(
  options: ModelOptions, batch: number, heads: number, seqQ: number, seqK: number, headDim: number, softmax: boolean,
): ModelPlan {
  const window = options.window === undefined ? null : windowOf(options.window, seqQ + seqK);
  const alibiSlopes = options.alibiSlopes === undefined ? null : perHead(options.alibiSlopes, 'options.alibiSlopes', heads);
  let sinks: Float32Array | null = null;
  if (options.sinks !== undefined) {
    if (!softmax) throw new AttentionError('INVALID_OPTION', "only applies to activation 'softmax'", 'options.sinks');
    sinks = perHead(options.sinks, 'options.sinks', heads);
  }
  const rope = options.rope === undefined ? null : planRope(options.rope, headDim);
  const layout = options.layout === undefined ? 'bhsd' : options.layout;
  if (layout !== 'bhsd' && layout !== 'bshd') {
    throw new AttentionError('INVALID_OPTION', `must be 'bhsd' or 'bshd', got ${describe(layout)}`, 'options.layout');
  }
  let keyLengths: Int32Array | null = null;
  if (options.keyLengths !== undefined) {
    const k = options.keyLengths as unknown;
    const name = 'options.keyLengths';
    if (!Array.isArray(k) && !isInt32Array(k)) {
      throw new AttentionError('INVALID_TYPE', `must be an Int32Array or number[], got ${describe(k)}`, name);
    }
    const list = elementsOf(k, name);
    if (list.length !== batch) throw new AttentionError('SHAPE_MISMATCH', `length ${list.length} does not match batch = ${batch}`, name);
    const bad = list.findIndex((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > seqK);
    if (bad >= 0) {
      throw new AttentionError('INVALID_OPTION', `must be integers from 0 to seqK = ${seqK}, element ${bad} is ${describe(list[bad])}`, name);
    }
    keyLengths = Int32Array.from(list as number[]);
  }
  return { window, alibiSlopes, sinks, rope, layout, keyLengths };
}
