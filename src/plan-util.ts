// The checks every validation step uses: types (across realms), dimensions, finite numbers, option names.
import { AttentionError } from './errors.js';

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
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

export function tensor(value: unknown, name: string, expected: number, shape: string): Float32Array {
  if (!isFloat32Array(value)) {
    throw new AttentionError('INVALID_TYPE', `must be a Float32Array, got ${describe(value)}`, name);
  }
  if (value.length !== expected) {
    if (value.buffer.byteLength === 0 && expected > 0) {
      throw new AttentionError('SHAPE_MISMATCH',
        'is a detached view: its ArrayBuffer was transferred, or wasm memory grew after this view of it was taken ' +
        '(read `tensor.array` again)', name);
    }
    throw new AttentionError(
      'SHAPE_MISMATCH', `length ${value.length} does not match ${shape} = ${expected} elements`, name);
  }
  return value;
}

export function optionsObject(options: unknown, known: ReadonlySet<string>, name = 'options'): void {
  if (typeof options !== 'object' || options === null) {
    throw new AttentionError('INVALID_TYPE', `must be an options object, got ${describe(options)}`, name);
  }
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new AttentionError('INVALID_OPTION', 'unknown option', `${name}.${key}`);
  }
}

export function finite(value: unknown, name: string, min = -Infinity): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    const what = min === -Infinity ? 'a finite number' : min === 0 ? 'a finite number ≥ 0' : `a finite number ≥ ${min}`;
    throw new AttentionError('INVALID_OPTION', `must be ${what}, got ${describe(value)}`, name);
  }
  return value;
}

