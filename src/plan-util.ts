// The checks every validation step uses: types (across realms), dimensions, finite numbers, option names.
import { AttentionError } from './errors.js';
import { isHalfTensor } from './half.js';
import { isDetachedView, refuseStaleView, typedArrayKind, viewLength } from './views.js';

// Types come from the typed array's internal slot (src/views.ts: no user code runs, any realm).
export const isFloat32Array = (x: unknown): x is Float32Array => typedArrayKind(x) === 'Float32Array';
export const isUint8Array = (x: unknown): x is Uint8Array => typedArrayKind(x) === 'Uint8Array';
export const isInt32Array = (x: unknown): x is Int32Array => typedArrayKind(x) === 'Int32Array';

/**
 * The elements of an option that is an array (a Proxy's included) or a typed array, read once: the length once,
 * then each index once. No iterator, `map` or other method of the value runs, so what a plan checks is exactly
 * what the kernels get, however the value behaves.
 */
export function elementsOf(value: unknown, name: string): unknown[] {
  const typed = typedArrayKind(value) !== undefined;
  if (typed) refuseStaleView(value as ArrayBufferView, name);
  const n: unknown = typed ? viewLength(value as ArrayBufferView) : (value as { length: unknown }).length;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > 2 ** 32 - 1) {
    throw new AttentionError('INVALID_OPTION', `has no valid length (got ${describe(n)})`, name);
  }
  const list = new Array<unknown>(n);
  for (let i = 0; i < n; i++) list[i] = (value as ArrayLike<unknown>)[i];
  return list;
}

/**
 * A Float32Array option copied through its internal slots (its length and elements; no species, no iterator). A
 * detached one, or one out of bounds of a shrunk resizable buffer, is SHAPE_MISMATCH; a view of engine memory
 * outside every live tensor INVALID_TYPE.
 */
export function copyFloat32(value: Float32Array, name: string): Float32Array {
  refuseStaleView(value, name);
  try {
    return new Float32Array(value);
  } catch {
    throw new AttentionError('SHAPE_MISMATCH', 'is detached or out of bounds of its buffer: its elements cannot be read', name);
  }
}

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
 * 16-bit tensor (Float16Array, or Uint16Array of binary16 bits). Its length is the real one (src/views.ts): an own
 * or subclass `length`, `buffer`, `byteOffset` or `byteLength` is never read, here or by any backend.
 */
export function tensor(value: unknown, name: string, expected: number, shape: string, half = false): Float32Array {
  if (!isFloat32Array(value) && !(half && isHalfTensor(value))) {
    throw new AttentionError('INVALID_TYPE', `must be a Float32Array${half ? ', Float16Array or Uint16Array (binary16 bits)' : ''}, got ${describe(value)}`, name);
  }
  const array = value as Float32Array; // or a 16-bit tensor: only its length is read here
  const length = viewLength(array);
  if (expected >= 0 && length !== expected) {
    if (expected > 0 && isDetachedView(array)) {
      throw new AttentionError('SHAPE_MISMATCH',
        'is a detached view: its ArrayBuffer was transferred, or wasm memory grew after this view of it was taken ' +
        '(read `tensor.array` again)', name);
    }
    throw new AttentionError(
      'SHAPE_MISMATCH', `length ${length} does not match ${shape} = ${expected} elements`, name);
  }
  return array;
}

/**
 * The options as one plain snapshot: every known option on the object's prototype chain (own or inherited, as
 * Object.getOwnPropertyNames reports them, getters included) read exactly once, through the object as a caller's
 * object means it, and any other property name anywhere on the chain (enumerable or not: a class getter `casual`
 * too) rejected as unknown. Everything after this reads the snapshot, so no user code runs later in the call: a
 * getter cannot change an input, dispose the engine or shrink a buffer once validation has started.
 * Only the names present are read: an absent option costs nothing, whatever the object's hidden class (an object
 * made by a spread per call reads like a literal). `empty`, when given, makes the snapshot with every known name
 * undefined, so snapshots of one kind share one shape (see plan.ts).
 */
export function readOptions<T extends object>(
  options: unknown, known: ReadonlySet<string>, name = 'options', empty?: () => T,
): T {
  if (typeof options !== 'object' || options === null || Array.isArray(options) || ArrayBuffer.isView(options)) {
    throw new AttentionError('INVALID_TYPE', `must be an options object, got ${describe(options)}`, name);
  }
  const snapshot = (empty === undefined ? {} : empty()) as Record<string, unknown>;
  const read: string[] = [];
  for (let o: object | null = options; o !== null && !isObjectPrototype(o); o = Object.getPrototypeOf(o) as object | null) {
    const keys = Object.getOwnPropertyNames(o);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (!known.has(key)) {
        if (key === 'constructor' && o !== options) continue;
        throw new AttentionError('INVALID_OPTION', 'unknown option', `${name}.${key}`);
      }
      if (read.includes(key)) continue; // shadowed further down the chain: read once, from the object
      read.push(key);
    }
  }
  for (let i = 0; i < read.length; i++) {
    const key = read[i]!;
    const value = (options as Record<string, unknown>)[key];
    if (value !== undefined || empty !== undefined) snapshot[key] = value;
  }
  return snapshot as T;
}

/**
 * Whether `o` is some realm's Object.prototype (where the walk of an options object's chain stops): this realm's, or
 * one of another realm (an iframe, a vm context), which ends its chain and is its own constructor's prototype.
 * Reads descriptors only, so no getter runs.
 */
function isObjectPrototype(o: object): boolean {
  if (o === Object.prototype) return true;
  if (Object.getPrototypeOf(o) !== null) return false;
  const constructor = Object.getOwnPropertyDescriptor(o, 'constructor')?.value as { name?: unknown } | undefined;
  if (typeof constructor !== 'function') return false;
  const prototype = Object.getOwnPropertyDescriptor(constructor, 'prototype')?.value;
  return prototype === o && Object.getOwnPropertyDescriptor(constructor, 'name')?.value === 'Object';
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

