// IEEE binary16 on the host: 16-bit tensors (Float16Array where the runtime has one, else Uint16Array holding the
// bits), and the conversions the JS backend and validation use. Rounding is to nearest even, as in the kernels.
import { typedArrayKind, viewBuffer, viewByteOffset, viewLength } from './views.js';

/** True for a Float16Array (any realm), by its internal slot: an own or inherited Symbol.toStringTag is not read. */
export const isFloat16Array = (x: unknown): boolean => typedArrayKind(x) === 'Float16Array';

/** True for a Uint16Array (any realm): binary16 bits. */
export const isUint16Array = (x: unknown): x is Uint16Array => typedArrayKind(x) === 'Uint16Array';

/** A 16-bit tensor: Float16Array or Uint16Array of binary16 bits. (Not a type guard: callers hold it as Float32Array.) */
export const isHalfTensor = (x: unknown): boolean => isFloat16Array(x) || isUint16Array(x);

/**
 * The binary16 bits of a 16-bit tensor, as a Uint16Array over the same memory (a Uint16Array itself: read its
 * length with viewLength, never `.length`).
 */
export function halfBits(x: unknown): Uint16Array {
  if (isUint16Array(x)) return x;
  const f = x as ArrayBufferView;
  return new Uint16Array(viewBuffer(f), viewByteOffset(f), viewLength(f));
}

let table: Float32Array | null = null;

/** Every binary16 value as float32, indexed by its bits (built once, 256 KiB). */
function decodeTable(): Float32Array {
  if (table !== null) return table;
  table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 31, m = h & 1023;
    table[h] = e === 0 ? sign * m * 2 ** -24 : e === 31 ? (m === 0 ? sign * Infinity : NaN) : sign * (1024 + m) * 2 ** (e - 25);
  }
  return table;
}

/** One binary16 value (bits) as a number. */
export const halfToNumber = (h: number): number => decodeTable()[h & 0xffff]!;

/** binary16 bits → float32 (a new array, or `into`). */
export function decodeHalves(bits: Uint16Array, into = new Float32Array(viewLength(bits))): Float32Array {
  const t = decodeTable();
  const n = viewLength(bits);
  for (let i = 0; i < n; i++) into[i] = t[bits[i]!]!;
  return into;
}

/**
 * x rounded to binary16 bits, to nearest even: subnormals below 2^−14 keep their absolute precision 2^−24, values
 * from 65520 on become ±∞, NaN a quiet NaN. x is first rounded to float32, as the kernels see it.
 */
export function numberToHalf(x: number): number {
  x = Math.fround(x);
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (Number.isNaN(a)) return 0x7e00;
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundEven(a * 2 ** 24); // subnormal (2^−24 units); 1024 rounds up to the first normal
  const e = Math.floor(Math.log2(a));
  const exp = a >= 2 ** (e + 1) ? e + 1 : a < 2 ** e ? e - 1 : e; // log2 rounding at powers of two
  const m = roundEven((a / 2 ** exp - 1) * 1024); // 1024 carries into the exponent, which is what rounding wants
  return sign | (((exp + 15) << 10) + m);
}

/** Round half to even. */
export function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The cache's float16 rounding: binary16, magnitudes beyond 65504 saturating to ±65504. */
export function numberToCacheHalf(x: number): number {
  const f = Math.fround(x);
  return numberToHalf(Math.max(-65504, Math.min(65504, f)));
}

/** float32 → binary16 bits into `into`. */
export function encodeHalves(values: ArrayLike<number>, into: Uint16Array): Uint16Array {
  for (let i = 0; i < values.length; i++) into[i] = numberToHalf(values[i]!);
  return into;
}
