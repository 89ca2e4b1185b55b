// Types of quantize.mjs.
export type CacheDtype = 'float32' | 'float16' | 'int8';
export function toHalf(x: number): number;
export function toCacheHalf(x: number): number;
export function halfBitsOf(h: number): number;
export function toInt8Rows(x: ArrayLike<number>, width: number): Float64Array;
export function storedAs(x: ArrayLike<number>, dtype: CacheDtype, width: number): Float64Array;
