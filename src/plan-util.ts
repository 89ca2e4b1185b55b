// The checks every validation step uses: types (across realms), dimensions, finite numbers, option names.
import { AttentionError } from './errors.js';
import { isHalfTensor } from './half.js';

/**
 * Typed-array checks that also accept arrays made in another realm (an iframe, a worker's vm context, jsdom),
 * where `instanceof Float32Array` is false for a genuine Float32Array.
 */
export const isFloat32Array = (x: unknown): x is Float32Array =>
  ArrayBuffer.isView(x) && Object.prototype.toString.call(x) === '[object Float32Array]';
export const isUint8Array = (x: unknown): x is Uint8Array =>
  ArrayBuffer.isView(x) && Object.prototype.toString.call(x) === '[object Uint8Array]';

export function dimension(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new AttentionError('INVALID_DIMENSION', `must be an integer ≥ 1, got ${describe(value)}`, name);
  }
  return value;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'bigint') return `${value}n (a BigInt)`;
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

/**
 * A tensor argument of `expected` elements (any length when negative): a Float32Array, or with `half` also a
 * 16-bit tensor (Float16Array, or Uint16Array of binary16 bits).
 */
export function tensor(value: unknown, name: string, expected: number, shape: string, half = false): Float32Array {
  if (!isFloat32Array(value) && !(half && isHalfTensor(value))) {
    throw new AttentionError('INVALID_TYPE', `must be a Float32Array${half ? ', Float16Array or Uint16Array (binary16 bits)' : ''}, got ${describe(value)}`, name);
  }
  const array = value as Float32Array; // or a 16-bit tensor: only its length is read here
  if (expected >= 0 && array.length !== expected) {
    if (array.buffer.byteLength === 0 && expected > 0) {
      throw new AttentionError('SHAPE_MISMATCH',
        'is a detached view: its ArrayBuffer was transferred, or wasm memory grew after this view of it was taken ' +
        '(read `tensor.array` again)', name);
    }
    throw new AttentionError(
      'SHAPE_MISMATCH', `length ${array.length} does not match ${shape} = ${expected} elements`, name);
  }
  return array;
}

/**
 * The options as one plain snapshot: every known option read exactly once (through getters and the prototype
 * chain, as a caller's object means it), and any other property name anywhere on its prototype chain (own or
 * inherited, enumerable or not: a class getter `casual` too) rejected as unknown. Everything after this reads the
 * snapshot, so no user code runs later in the call: a getter cannot change an input, dispose the engine or
 * shrink a buffer once validation has started.
 */
export function readOptions<T extends object>(options: unknown, known: ReadonlySet<string>, name = 'options'): T {
  if (typeof options !== 'object' || options === null || Array.isArray(options) || ArrayBuffer.isView(options)) {
    throw new AttentionError('INVALID_TYPE', `must be an options object, got ${describe(options)}`, name);
  }
  for (let o: object | null = options; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const key of Object.getOwnPropertyNames(o)) {
      if (!known.has(key) && !(key === 'constructor' && o !== options)) {
        throw new AttentionError('INVALID_OPTION', 'unknown option', `${name}.${key}`);
      }
    }
  }
  const snapshot: Record<string, unknown> = {};
  for (const key of known) {
    const value = (options as Record<string, unknown>)[key];
    if (value !== undefined) snapshot[key] = value;
  }
  return snapshot as T;
}

/** Validates an options object (see {@link readOptions}) without keeping the snapshot. */
export function optionsObject(options: unknown, known: ReadonlySet<string>, name = 'options'): void {
  readOptions(options, known, name);
}

/**
 * A finite number rounded to float32, the precision every backend computes in, so all of them use the same
 * value. A number finite in float64 but not in float32 (|x| > 3.4028235e38) is rejected, not turned into ±∞.
 */
export function float32(value: unknown, name: string, min = -Infinity): number {
  const x = Math.fround(finite(value, name, min));
  if (!Number.isFinite(x)) {
    throw new AttentionError('INVALID_OPTION', `must be a finite float32 (|x| ≤ 3.4028235e38), got ${describe(value)}`, name);
  }
  return x;
}

export function finite(value: unknown, name: string, min = -Infinity): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    const what = min === -Infinity ? 'a finite number' : min === 0 ? 'a finite number ≥ 0' : `a finite number ≥ ${min}`;
    throw new AttentionError('INVALID_OPTION', `must be ${what}, got ${describe(value)}`, name);
  }
  return value;
}

