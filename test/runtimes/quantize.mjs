// What a float16 or int8 KV cache stores, written from the README's definitions independently of src/: a plain ES
// module (no imports), so vitest and the runtime smoke suite can compare every backend with the float64
// reference on exactly the values a cache holds (tight), as well as on the values given (the accuracy bounds).

/** x rounded to binary16, nearest even, as a number (subnormals in steps of 2^−24; ±Infinity from 65520 on). */
export function toHalf(x) {
  x = Math.fround(x);
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity;
  let e = 0;
  while (2 ** (e + 1) <= a) e++;
  while (2 ** e > a) e--;
  const ulp = 2 ** (Math.max(e, -14) - 10); // spacing of binary16 values around a
  const n = a / ulp; // exact: a has 24 significant bits
  let r = Math.floor(n);
  const frac = n - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r += 1;
  return Math.sign(x) * r * ulp;
}

/** The float16 cache's rounding: toHalf with magnitudes beyond 65504 saturating to ±65504. */
export function toCacheHalf(x) {
  const f = Math.fround(x);
  return toHalf(Math.max(-65504, Math.min(65504, f)));
}

/** binary16 bits of a value toHalf returns (or any exactly representable one). */
export function halfBitsOf(h) {
  if (Number.isNaN(h)) return 0x7e00;
  const sign = h < 0 || Object.is(h, -0) ? 0x8000 : 0;
  const a = Math.abs(h);
  if (a === Infinity) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | (a / 2 ** -24);
  let e = 0;
  while (2 ** (e + 1) <= a) e++;
  while (2 ** e > a) e--;
  return sign | ((e + 15) << 10) | (a / 2 ** e - 1) * 1024;
}

/** Rows of `width` values as an int8 cache stores them: per row, blocks of 32 with scale max|x| / 127 (float32). */
export function toInt8Rows(x, width) {
  const out = new Float64Array(x.length);
  for (let row = 0; row < x.length; row += width) {
    for (let from = row; from < row + width; from += 32) {
      const to = Math.min(row + width, from + 32);
      let amax = 0;
      for (let i = from; i < to; i++) amax = Math.max(amax, Math.abs(Math.fround(x[i])));
      const scale = Math.fround(amax / 127);
      for (let i = from; i < to; i++) {
        if (scale === 0) continue;
        const t = Math.fround(Math.fround(x[i]) / scale);
        let r = Math.floor(t);
        const frac = t - r;
        if (frac > 0.5 || (frac === 0.5 && r % 2 !== 0)) r += 1;
        out[i] = Math.max(-127, Math.min(127, r)) * scale;
      }
    }
  }
  return out;
}

/**
 * Keys or values [.., width] as a cache of `dtype` stores them ('float32' | 'float16' | 'int8'), float64. Rows are
 * the last dimension (width = headDim or headDimV), in either layout.
 */
export function storedAs(x, dtype, width) {
  if (dtype === 'float16') return Float64Array.from(x, toCacheHalf);
  if (dtype === 'int8') return toInt8Rows(x, width);
  return Float64Array.from(x);
}
