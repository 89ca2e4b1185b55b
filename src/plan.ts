// Validation of one call: every check runs before any backend touches memory, and its result (the plan) is
// all a backend needs.
import { AttentionError } from './errors.js';
import type { AttentionOptions } from './types.js';

export const MASK_NONE = 0;
export const MASK_ADDITIVE_F32 = 1;
export const MASK_BOOL_U8 = 2;

/** A validated call: dimensions, resolved defaults and the mask's element strides over [B, H, L, S]. */
export interface AttentionPlan {
  readonly batch: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly seqQ: number;
  readonly seqK: number;
  readonly headDim: number;
  readonly headDimV: number;
  readonly scale: number;
  readonly causal: boolean;
  /** Query i admits key j iff j ≤ i + causalOffset (when causal). */
  readonly causalOffset: number;
  readonly mask: Float32Array | Uint8Array | null;
  readonly maskKind: number;
  /** Element strides of the mask along batch, heads, seqQ, seqK; 0 where the mask broadcasts. */
  readonly maskStrides: readonly [number, number, number, number];
  readonly outLength: number;
}

const KNOWN_OPTIONS = new Set([
  'batch', 'heads', 'seqQ', 'seqK', 'headDim', 'kvHeads', 'headDimV', 'scale', 'causal', 'mask', 'maskShape', 'out',
]);

function dimension(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new AttentionError('INVALID_DIMENSION', `must be an integer ≥ 1, got ${describe(value)}`, name);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

function tensor(value: unknown, name: string, expected: number, shape: string): Float32Array {
  if (!(value instanceof Float32Array)) {
    throw new AttentionError('INVALID_TYPE', `must be a Float32Array, got ${describe(value)}`, name);
  }
  if (value.length !== expected) {
    throw new AttentionError(
      'SHAPE_MISMATCH', `length ${value.length} does not match ${shape} = ${expected} elements`, name);
  }
  return value;
}

/** Validates q, k, v and options; throws {@link AttentionError} naming the first offending argument. */
export function planAttention(q: unknown, k: unknown, v: unknown, options: AttentionOptions): AttentionPlan {
  if (typeof options !== 'object' || options === null) {
    throw new AttentionError('INVALID_TYPE', `must be an options object, got ${describe(options)}`, 'options');
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new AttentionError('INVALID_OPTION', 'unknown option', `options.${key}`);
  }
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

  tensor(q, 'q', batch * heads * seqQ * headDim, `[batch, heads, seqQ, headDim] = [${batch}, ${heads}, ${seqQ}, ${headDim}]`);
  tensor(k, 'k', batch * kvHeads * seqK * headDim, `[batch, kvHeads, seqK, headDim] = [${batch}, ${kvHeads}, ${seqK}, ${headDim}]`);
  tensor(v, 'v', batch * kvHeads * seqK * headDimV, `[batch, kvHeads, seqK, headDimV] = [${batch}, ${kvHeads}, ${seqK}, ${headDimV}]`);

  let scale = 1 / Math.sqrt(headDim);
  if (options.scale !== undefined) {
    if (typeof options.scale !== 'number' || !Number.isFinite(options.scale)) {
      throw new AttentionError('INVALID_OPTION', `must be a finite number, got ${describe(options.scale)}`, 'options.scale');
    }
    scale = options.scale;
  }

  let causal = false;
  let causalOffset = 0;
  const mode = options.causal;
  if (mode === true || mode === 'top-left') {
    causal = true;
  } else if (mode === 'bottom-right') {
    causal = true;
    causalOffset = seqK - seqQ;
  } else if (mode !== undefined && mode !== false) {
    throw new AttentionError('INVALID_OPTION',
      `must be false, true, 'top-left' or 'bottom-right', got ${describe(mode)}`, 'options.causal');
  }

  const { mask, maskKind, maskStrides } = planMask(options, [batch, heads, seqQ, seqK]);

  const outLength = batch * heads * seqQ * headDimV;
  if (options.out !== undefined) {
    tensor(options.out, 'options.out', outLength,
      `[batch, heads, seqQ, headDimV] = [${batch}, ${heads}, ${seqQ}, ${headDimV}]`);
  }
  return {
    batch, heads, kvHeads, seqQ, seqK, headDim, headDimV, scale, causal, causalOffset,
    mask, maskKind, maskStrides, outLength,
  };
}

function planMask(options: AttentionOptions, target: readonly [number, number, number, number]) {
  const mask = options.mask;
  if (mask === undefined) {
    if (options.maskShape !== undefined) {
      throw new AttentionError('INVALID_OPTION', 'given without options.mask', 'options.maskShape');
    }
    return { mask: null, maskKind: MASK_NONE, maskStrides: [0, 0, 0, 0] as const };
  }
  let maskKind: number;
  if (mask instanceof Float32Array) maskKind = MASK_ADDITIVE_F32;
  else if (mask instanceof Uint8Array) maskKind = MASK_BOOL_U8;
  else {
    throw new AttentionError('INVALID_TYPE',
      `must be a Float32Array (additive) or Uint8Array (boolean), got ${describe(mask)}`, 'options.mask');
  }
  const shape = options.maskShape ?? [target[2], target[3]];
  if (!Array.isArray(shape) || shape.length < 1 || shape.length > 4) {
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
  if (mask.length !== expected) {
    throw new AttentionError('SHAPE_MISMATCH',
      `length ${mask.length} does not match maskShape [${dims.join(', ')}] = ${expected} elements`, 'options.mask');
  }
  const strides: [number, number, number, number] = [0, 0, 0, 0];
  let stride = 1;
  for (let i = 3; i >= 0; i--) {
    strides[i] = full[i] === 1 ? 0 : stride;
    stride *= full[i]!;
  }
  return { mask, maskKind, maskStrides: strides };
}

/** True when two typed arrays share bytes. */
export function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/** The result array: `options.out` or a new one, with typed-array size limits reported as AttentionError. */
export function allocateOutput(plan: AttentionPlan, out: Float32Array | undefined): Float32Array {
  if (out !== undefined) return out;
  try {
    return new Float32Array(plan.outLength);
  } catch (cause) {
    throw new AttentionError('OUT_OF_MEMORY',
      `cannot allocate an output of ${plan.outLength} floats (${String(cause)})`, 'options.out');
  }
}
