// Validation of one call: every check runs before any backend touches memory, and its result (the plan) is
// all a backend needs.
import { AttentionError } from './errors.js';
import { planModel } from './plan-model.js';
import type { ModelPlan } from './plan-model.js';
import { describe, dimension, elementsOf, float32, isFloat32Array, isUint8Array, optionsObject, readOptions, tensor } from './plan-util.js';
import {
  ACT_POLYNOMIAL, ACT_RELU, ACT_SIGMOID, ACT_SOFTMAX, ACT_SQUARED, ACTIVATION_NAMES, DTYPE_FLOAT16, DTYPE_FLOAT32, MASK_ADDITIVE_F32,
  MASK_BOOL_U8, MASK_NONE,
} from './params.generated.js';
import { isHalfTensor } from './half.js';
import { viewBuffer, viewByteLength, viewByteOffset, viewLength } from './views.js';
import type { Activation, AttentionOptions, KVAttendOptions, KVCacheOptions, LinearAttentionOptions } from './types.js';

export { dimension, isFloat32Array, isUint8Array, tensor } from './plan-util.js';

// Mask kinds and activation codes come from the kernel schema (scripts/schema.mjs), shared with the wasm kernels.
export {
  ACT_POLYNOMIAL, ACT_RELU, ACT_SIGMOID, ACT_SOFTMAX, ACT_SOFTMAX1, ACT_SQUARED, MASK_ADDITIVE_F32, MASK_BOOL_U8, MASK_NONE,
} from './params.generated.js';

/** Every activation, in the order of their kernel codes. */
export const ACTIVATIONS: readonly Activation[] = ACTIVATION_NAMES;

/** The shape of a call: dimensions with defaults resolved, causal alignment, output size. */
export interface ShapePlan {
  readonly batch: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly seqQ: number;
  readonly seqK: number;
  readonly headDim: number;
  readonly headDimV: number;
  readonly causal: boolean;
  /** Causal aligned bottom-right (to each batch row's key length when `keyLengths` is given). */
  readonly bottomRight: boolean;
  /** Query i admits key j iff j ≤ i + causalOffset (when causal; per batch row with key lengths). */
  readonly causalOffset: number;
  readonly outLength: number;
}

/** A validated call: dimensions, resolved defaults and the mask's element strides over [B, H, L, S]. */
export interface AttentionPlan extends ShapePlan, ModelPlan {
  readonly scale: number;
  readonly mask: Float32Array | Uint8Array | null;
  readonly maskKind: number;
  /** Element strides of the mask along batch, heads, seqQ, seqK; 0 where the mask broadcasts. */
  readonly maskStrides: readonly [number, number, number, number];
  /** The mask's validated element count (0 without one). */
  readonly maskLength: number;
  /** Index into {@link ACTIVATIONS}. */
  readonly activation: number;
  /** 0 = no soft-capping. */
  readonly softcap: number;
  /** The activation's constant: ε (squared), bias (sigmoid), 1/seqK (relu), 1/√seqK (polynomial), else 0. */
  readonly param: number;
  /**
   * With key lengths, the seqK-derived constants (sigmoid's default bias, relu, polynomial) per batch row, from that
   * row's own key count, so a ragged row gets what a call over its keys alone would; null where `param` serves all.
   */
  readonly rowParams: Float32Array | null;
  /** Polynomial exponent (0 for other activations). */
  readonly power: number;
  readonly returnWeights: boolean;
  /** DTYPE_* codes of the tensors: float32, or float16 for 16-bit ones (out: float32 when not given). */
  readonly types: { readonly q: number; readonly k: number; readonly v: number; readonly out: number };
}

const SHAPE_OPTIONS = ['batch', 'heads', 'seqQ', 'seqK', 'headDim', 'kvHeads', 'headDimV', 'causal', 'out'];

/**
 * An attention snapshot with every option undefined (readOptions fills in those given), written out as one object
 * literal so every snapshot has the same shape and later reads of it are monomorphic. The option names are its keys.
 */
const emptyAttentionOptions = (): AttentionOptions => ({
  batch: undefined, heads: undefined, seqQ: undefined, seqK: undefined, headDim: undefined, kvHeads: undefined,
  headDimV: undefined, causal: undefined, out: undefined, scale: undefined, mask: undefined, maskShape: undefined,
  activation: undefined, epsilon: undefined, bias: undefined, power: undefined, softcap: undefined,
  returnWeights: undefined, window: undefined, alibiSlopes: undefined, sinks: undefined, rope: undefined,
  layout: undefined, keyLengths: undefined,
}) as unknown as AttentionOptions;
export const ATTENTION_OPTIONS: ReadonlySet<string> = new Set(Object.keys(emptyAttentionOptions()));

/** The snapshot of a caller's attention options (readOptions). */
export const attentionOptions = (raw: unknown): AttentionOptions =>
  readOptions(raw, ATTENTION_OPTIONS, 'options', emptyAttentionOptions);

/** A tensor's shape in words, built only for an error message: [batch, heads, seq, dim], or [batch, seq, heads, dim] with 'bshd'. */
function shapeWords(bshd: boolean, batch: number, h: string, hv: number, seq: string, sv: number, d: string, dv: number): string {
  return bshd
    ? `[batch, ${seq}, ${h}, ${d}] = [${batch}, ${sv}, ${hv}, ${dv}] ('bshd')`
    : `[batch, ${h}, ${seq}, ${d}] = [${batch}, ${hv}, ${sv}, ${dv}]`;
}

/** Dimensions, tensors, causal mode and `out`: what attention and linear attention share. k and v are not
 * checked when `resident` (they live in a KV cache whose shape is known). */
export function planShape(
  q: unknown, k: unknown, v: unknown, options: AttentionOptions | LinearAttentionOptions, resident = false, bshd = false,
  half = false,
): ShapePlan {
  const batch = dimension(options.batch, 'options.batch');
  const heads = dimension(options.heads, 'options.heads');
  const seqQ = dimension(options.seqQ, 'options.seqQ');
  const seqK = dimension(options.seqK, 'options.seqK');
  const headDim = dimension(options.headDim, 'options.headDim');
  const kvHeads = options.kvHeads === undefined ? heads : dimension(options.kvHeads, 'options.kvHeads');
  const headDimV = options.headDimV === undefined ? headDim : dimension(options.headDimV, 'options.headDimV');
  if (heads % kvHeads !== 0) {
    throw new AttentionError('SHAPE_MISMATCH', `heads (${heads}) must be a multiple of kvHeads (${kvHeads})`,
      'options.kvHeads');
  }

  const qLength = batch * heads * seqQ * headDim;
  if (!isFloat32Array(q) || viewLength(q) !== qLength) tensor(q, 'q', qLength, shapeWords(bshd, batch, 'heads', heads, 'seqQ', seqQ, 'headDim', headDim), half);
  if (!resident) {
    const kLength = batch * kvHeads * seqK * headDim, vLength = batch * kvHeads * seqK * headDimV;
    if (!isFloat32Array(k) || viewLength(k) !== kLength) tensor(k, 'k', kLength, shapeWords(bshd, batch, 'kvHeads', kvHeads, 'seqK', seqK, 'headDim', headDim), half);
    if (!isFloat32Array(v) || viewLength(v) !== vLength) tensor(v, 'v', vLength, shapeWords(bshd, batch, 'kvHeads', kvHeads, 'seqK', seqK, 'headDimV', headDimV), half);
  }

  let causal = false;
  let bottomRight = false;
  let causalOffset = 0;
  const mode = options.causal;
  if (mode === true || mode === 'top-left') {
    causal = true;
  } else if (mode === 'bottom-right') {
    causal = true;
    bottomRight = true;
    causalOffset = seqK - seqQ;
  } else if (mode !== undefined && mode !== false) {
    throw new AttentionError('INVALID_OPTION',
      `must be false, true, 'top-left' or 'bottom-right', got ${describe(mode)}`, 'options.causal');
  }

  const outLength = batch * heads * seqQ * headDimV;
  const out = options.out;
  if (out !== undefined && (!isFloat32Array(out) || viewLength(out) !== outLength)) {
    tensor(out, 'options.out', outLength, shapeWords(bshd, batch, 'heads', heads, 'seqQ', seqQ, 'headDimV', headDimV), half);
  }
  return { batch, heads, kvHeads, seqQ, seqK, headDim, headDimV, causal, bottomRight, causalOffset, outLength };
}

const NO_MASK = { mask: null, maskKind: MASK_NONE, maskStrides: Object.freeze([0, 0, 0, 0] as const), maskLength: 0 } as const;

/**
 * Validates q, k, v and options (a snapshot: attentionOptions); throws {@link AttentionError} naming the first
 * offending argument. A call without array-valued options allocates its shape and plan and nothing else.
 */
export function planAttention(q: unknown, k: unknown, v: unknown, options: AttentionOptions, resident = false): AttentionPlan {
  const shape = planShape(q, k, v, options, resident, options.layout === 'bshd', true);
  const out = options.out;
  const types = isFloat32Array(q) && (resident || (isFloat32Array(k) && isFloat32Array(v))) && (out === undefined || isFloat32Array(out))
    ? FLOAT32_TYPES : { q: typeOf(q), k: typeOf(k), v: typeOf(v), out: typeOf(out) };

  let scale = Math.fround(1 / Math.sqrt(shape.headDim));
  if (options.scale !== undefined) scale = float32(options.scale, 'options.scale');

  const { mask, maskKind, maskStrides, maskLength } = options.mask === undefined && options.maskShape === undefined
    ? NO_MASK : planMask(options, [shape.batch, shape.heads, shape.seqQ, shape.seqK]);

  const name = options.activation === undefined ? 'softmax' : options.activation;
  const activation = ACTIVATIONS.indexOf(name);
  if (activation < 0) {
    throw new AttentionError('INVALID_OPTION',
      `must be one of ${ACTIVATIONS.map((a) => `'${a}'`).join(', ')}, got ${describe(name)}`, 'options.activation');
  }
  // Options that belong to one activation only: passing them with another is a mistake worth reporting.
  if (options.epsilon !== undefined && name !== 'squared') throw onlyFor('epsilon', 'squared', name);
  if (options.bias !== undefined && name !== 'sigmoid') throw onlyFor('bias', 'sigmoid', name);
  if (options.power !== undefined && name !== 'polynomial') throw onlyFor('power', 'polynomial', name);
  let param = 0;
  let power = 0;
  if (activation === ACT_SQUARED) param = options.epsilon === undefined ? Math.fround(1e-6) : float32(options.epsilon, 'options.epsilon', 0);
  if (activation === ACT_SIGMOID && options.bias !== undefined) param = float32(options.bias, 'options.bias');
  if (activation === ACT_POLYNOMIAL) {
    power = options.power === undefined ? 3 : options.power;
    if (typeof power !== 'number' || !Number.isInteger(power) || power < 1 || power > 64) {
      throw new AttentionError('INVALID_OPTION', `must be an integer from 1 to 64, got ${describe(options.power)}`, 'options.power');
    }
  }
  // Sigmoid's default bias, relu's and polynomial's divisors come from the key count (per row: rowParams below).
  const fromKeys = activation === ACT_RELU || activation === ACT_POLYNOMIAL || (activation === ACT_SIGMOID && options.bias === undefined);
  if (fromKeys) param = keyParam(activation, shape.seqK);
  let softcap = 0;
  if (options.softcap !== undefined) {
    softcap = float32(options.softcap, 'options.softcap', 0);
    if (softcap === 0) throw new AttentionError('INVALID_OPTION', 'must be > 0 (omit it to disable soft-capping)', 'options.softcap');
    // Its reciprocal must be finite too: below the smallest normal float32 1/softcap overflows.
    if (softcap < 2 ** -126) {
      throw new AttentionError('INVALID_OPTION', `must be ≥ 1.1754944e-38 (the smallest normal float32), got ${describe(options.softcap)}`, 'options.softcap');
    }
  }
  const returnWeights = options.returnWeights === undefined ? false : options.returnWeights;
  if (typeof returnWeights !== 'boolean') {
    throw new AttentionError('INVALID_OPTION', `must be a boolean, got ${describe(returnWeights)}`, 'options.returnWeights');
  }
  const model = planModel(options, shape.batch, shape.heads, shape.seqQ, shape.seqK, shape.headDim, activation === ACT_SOFTMAX);
  const keyLengths = model.keyLengths;
  const rowParams = fromKeys && keyLengths !== null ? Float32Array.from(keyLengths, (n) => keyParam(activation, n)) : null;
  return {
    batch: shape.batch, heads: shape.heads, kvHeads: shape.kvHeads, seqQ: shape.seqQ, seqK: shape.seqK,
    headDim: shape.headDim, headDimV: shape.headDimV, causal: shape.causal, bottomRight: shape.bottomRight,
    causalOffset: shape.causalOffset, outLength: shape.outLength,
    scale, mask, maskKind, maskStrides, maskLength, activation, softcap, param, rowParams, power, returnWeights,
    window: model.window, alibiSlopes: model.alibiSlopes, sinks: model.sinks, rope: model.rope, layout: model.layout,
    keyLengths, types,
  };
}

/**
 * The activation constant that depends on the number of keys n a row uses (float32): sigmoid's default bias −ln n,
 * relu's 1/n, polynomial's 1/√n. A row with no key admits nothing, so n = 0 counts as 1 (a finite constant).
 */
function keyParam(activation: number, n: number): number {
  const keys = Math.max(n, 1);
  if (activation === ACT_SIGMOID) return Math.fround(-Math.log(keys));
  return Math.fround(activation === ACT_RELU ? 1 / keys : 1 / Math.sqrt(keys));
}

/** A tensor's DTYPE_* code: float16 for a 16-bit tensor, else float32. */
const typeOf = (x: unknown) => (isHalfTensor(x) ? DTYPE_FLOAT16 : DTYPE_FLOAT32);
/** The types of a call whose tensors are all float32 (shared: no object per call). */
const FLOAT32_TYPES = Object.freeze({ q: DTYPE_FLOAT32, k: DTYPE_FLOAT32, v: DTYPE_FLOAT32, out: DTYPE_FLOAT32 });

const onlyFor = (option: string, owner: Activation, name: string) =>
  new AttentionError('INVALID_OPTION', `only applies to activation '${owner}', not '${name}'`, `options.${option}`);

function planMask(options: AttentionOptions, target: readonly [number, number, number, number]) {
  const mask = options.mask;
  if (mask === undefined) {
    if (options.maskShape !== undefined) {
      throw new AttentionError('INVALID_OPTION', 'given without options.mask', 'options.maskShape');
    }
    return { mask: null, maskKind: MASK_NONE, maskStrides: [0, 0, 0, 0] as const, maskLength: 0 };
  }
  let maskKind: number;
  if (isFloat32Array(mask)) maskKind = MASK_ADDITIVE_F32;
  else if (isUint8Array(mask)) maskKind = MASK_BOOL_U8;
  else {
    throw new AttentionError('INVALID_TYPE',
      `must be a Float32Array (additive) or Uint8Array (boolean), got ${describe(mask)}`, 'options.mask');
  }
  const given = options.maskShape ?? [target[2], target[3]];
  const shape = Array.isArray(given) ? elementsOf(given, 'options.maskShape') : null;
  if (shape === null || shape.length < 1 || shape.length > 4) {
    throw new AttentionError('INVALID_OPTION', 'must be an array of 1 to 4 dimensions', 'options.maskShape');
  }
  const dims = shape.map((d, i) => dimension(d, `options.maskShape[${i}]`));
  // Right-align against [B, H, L, S]; a missing or size-1 dimension broadcasts.
  const full = [1, 1, 1, 1];
  for (let i = 0; i < dims.length; i++) full[4 - dims.length + i] = dims[i]!;
  const names = ['batch', 'heads', 'seqQ', 'seqK'];
  for (let i = 0; i < 4; i++) {
    if (full[i] !== 1 && full[i] !== target[i]) {
      throw new AttentionError('SHAPE_MISMATCH',
        `[${dims.join(', ')}] does not broadcast to [batch, heads, seqQ, seqK] = [${target.join(', ')}]: ` +
        `dimension ${names[i]} is ${full[i]}`, 'options.maskShape');
    }
  }
  const expected = full[0]! * full[1]! * full[2]! * full[3]!;
  const length = viewLength(mask); // the real length (src/views.ts)
  if (length !== expected) {
    throw new AttentionError('SHAPE_MISMATCH',
      `length ${length} does not match maskShape [${dims.join(', ')}] = ${expected} elements`, 'options.mask');
  }
  const strides: [number, number, number, number] = [0, 0, 0, 0];
  let stride = 1;
  for (let i = 3; i >= 0; i--) {
    strides[i] = full[i] === 1 ? 0 : stride;
    stride *= full[i]!;
  }
  return { mask, maskKind, maskStrides: strides, maskLength: expected };
}

/**
 * Refuses an array that option getters detached or resized after it was validated (they run while a call is
 * planned); backends check their arguments with it once no caller code can run any more, before they read them.
 */
export function unchangedLength(array: ArrayBufferView, elements: number, name: string): void {
  const length = viewLength(array);
  if (length !== elements) {
    throw new AttentionError('SHAPE_MISMATCH', `was detached or resized while the call read its options: ${length} elements, not ${elements}`, name);
  }
}

/** The checks of unchangedLength for a call's tensors, out and mask as planned (the JS backend's arguments). */
export function unchangedArguments(plan: AttentionPlan, q: ArrayBufferView, k: ArrayBufferView | null, v: ArrayBufferView | null, out: ArrayBufferView | undefined): void {
  const { batch: B, heads: H, kvHeads: KVH, seqQ: L, seqK: S, headDim: D, headDimV: Dv } = plan;
  unchangedLength(q, B * H * L * D, 'q');
  if (k !== null) unchangedLength(k, B * KVH * S * D, 'k');
  if (v !== null) unchangedLength(v, B * KVH * S * Dv, 'v');
  if (out !== undefined) unchangedLength(out, plan.outLength, 'options.out');
  if (plan.mask !== null) unchangedLength(plan.mask, plan.maskLength, 'options.mask');
}

/** True when two typed arrays share bytes (by their real buffers and offsets). */
export function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (viewBuffer(a) !== viewBuffer(b)) return false;
  const a0 = viewByteOffset(a), b0 = viewByteOffset(b);
  return a0 < b0 + viewByteLength(b) && b0 < a0 + viewByteLength(a);
}

/**
 * The result array: `options.out`, or a new one (a copy of `copyOf` when given), with typed-array size limits
 * reported as AttentionError.
 */
export function allocateOutput(length: number, out: Float32Array | undefined, name = 'options.out', copyOf?: Float32Array): Float32Array {
  if (out !== undefined) return out;
  try {
    return copyOf === undefined ? new Float32Array(length) : new Float32Array(copyOf);
  } catch (cause) {
    throw new AttentionError('OUT_OF_MEMORY', `cannot allocate ${length} floats (${String(cause)})`, name);
  }
}

/** Number of weights a `returnWeights` call returns. */
export const weightsLength = (p: ShapePlan) => p.batch * p.heads * p.seqQ * p.seqK;
