// Keeping the float32 kernels' intermediates in range, so that every score and output representable in float32
// comes out as the JS backend's float64 computes it (README "NaN and Infinity"):
// - q·k: a float32 term or partial sum can overflow (to ±∞, or NaN from ∞ − ∞) although the dot does not — or the
//   dot itself although scale·q·k does not — only if D·max|q|·max|k| > FLT_MAX. A block past that bound computes
//   its scaled scores with f32_qk_1x1_f64 (kvtypes.ts typedScoresF64) instead of the tiles.
// - p·v: the accumulator holds Σ p·v with p ≤ 1, up to keys·max|v| although the output is ≤ max|v|. An overflow
//   there leaves a non-finite output, so a block whose output is not all finite runs again with every weight
//   times 2^−shift (exact: a power of two) and its output times 2^shift (weightShift), rewriting only the rows
//   that were not finite.
// Both paths cost nothing where values are ordinary: the packing routines return max|x|, and there is one
// finiteness test per output vector. NaN and ±∞ inputs do not count in the bounds (maxFinite): beside finite
// values that cannot overflow, float32 and float64 give them the same NaN/±∞.
import { ACT_SIGMOID } from "./params.generated";

/**
 * The bits of |x| (sign cleared) as unsigned integers order like the values, with NaN above +∞: a running
 * i32x4.max_u of them is max |x| in two one-cycle instructions per vector (f32x4.max is a long NaN-handling
 * sequence in V8, and its latency made a max over the packed keys cost 6 % of a BERT call).
 */
// @ts-ignore: decorator
@inline export function absBits(x: v128): v128 {
  return v128.and(x, i32x4.splat(0x7fffffff));
}

/** The largest of four lanes of absBits maxima, as a float: max |x|, or NaN if any x is NaN. */
// @ts-ignore: decorator
@inline export function maxOfBits(m: v128): f32 {
  m = i32x4.max_u(m, v128.shuffle<i32>(m, m, 2, 3, 0, 1));
  m = i32x4.max_u(m, v128.shuffle<i32>(m, m, 1, 0, 3, 2));
  return reinterpret<f32>(i32x4.extract_lane(m, 0));
}

/** max |x| over n floats at ptr (NaN if any is NaN). */
export function maxAbs(ptr: usize, n: i32): f32 {
  let m = i32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) m = i32x4.max_u(m, absBits(v128.load(ptr + (<usize>i << 2))));
  for (; i < n; i++) m = i32x4.max_u(m, absBits(v128.load32_splat(ptr + (<usize>i << 2))));
  return maxOfBits(m);
}

/** max |x| over the finite floats at ptr (NaN and ±∞ skipped): the bound where maxAbs found a non-finite value. */
export function maxFinite(ptr: usize, n: i32): f32 {
  const inf = i32x4.splat(0x7f800000);
  let m = i32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const a = absBits(v128.load(ptr + (<usize>i << 2)));
    m = i32x4.max_u(m, v128.and(a, i32x4.lt_s(a, inf)));
  }
  for (; i < n; i++) {
    const a = absBits(v128.load32_splat(ptr + (<usize>i << 2)));
    m = i32x4.max_u(m, v128.and(a, i32x4.lt_s(a, inf)));
  }
  return maxOfBits(m);
}

/** maxAbs's result, or where it is not finite the max over the finite values only (maxFinite). */
// @ts-ignore: decorator
@inline export function finiteBound(m: f32, ptr: usize, n: i32): f32 {
  return isFinite<f32>(m) ? m : maxFinite(ptr, n);
}

/**
 * Whether Σ p·v over `keys` keys cannot overflow: weights ≤ 1 (the softmax family, squared, sigmoid) and
 * 2·keys·max|v| ≤ FLT_MAX (vmax: max |v| over the finite values, +∞ when not known). Then a non-finite output is
 * the inputs' own NaN/±∞ and needs no second pass.
 */
// @ts-ignore: decorator
@inline export function sumsInRange(activation: i32, keys: i32, vmax: f32): bool {
  return activation <= ACT_SIGMOID && 2.0 * <f64>keys * <f64>vmax <= <f64>F32.MAX_VALUE;
}

/**
 * Whether float32 q·k products and partial sums over D terms stay finite: D·max|q|·max|k| ≤ FLT_MAX, with 1 %
 * to spare for a cache's binary16 or int8 rounding of the keys its max |k| was taken from (kvcache.ts writeKey).
 */
// @ts-ignore: decorator
@inline export function dotsInRange(D: i32, qmax: f32, kmax: f32): bool {
  return 1.01 * <f64>D * <f64>qmax * <f64>kmax <= <f64>F32.MAX_VALUE;
}

/**
 * The score of a float64 q·k: float32(float32(q·k)·scale), what the tiles give (their sums are float32, then
 * scaled), unless q·k is beyond float32: then float32(q·k·scale), in range where the scaled score is. The JS
 * backend's scoreOf is the same.
 */
// @ts-ignore: decorator
@inline export function scoreOf(dot: f64, scale: f32): f32 {
  const d = <f32>dot;
  return isFinite<f32>(d) ? d * scale : <f32>(dot * <f64>scale);
}

/** Query row r's element 0 and the bytes between its elements: packed [D][4] for r < rows4, else a row. */
// @ts-ignore: decorator
@inline export function queryAt(r: i32, rows4: i32, qpack: usize, q: usize, qStride: usize, D: i32): usize {
  return r < rows4 ? qpack + (<usize>(r & ~3) * <usize>D << 2) + (<usize>(r & 3) << 2) : q + <usize>r * qStride;
}

/**
 * f32-qk-1x1-f64: s (rows, cols8) = scale · q (rows, D) · kᵀ (D, cols8), each dot summed in float64 (d = 0, 1,
 * …: the JS backend's order, so the same sums), scored by scoreOf as the JS backend does. q: its first rows4 rows packed [D][4] at
 * qpack, the others rows `qStride` bytes apart from q (queryAt); k: the key panels [cols8/8][D][8] at kPanel.
 * kvtypes.ts typedScoresF64 is the same for float16 and int8 caches.
 */
export function f32_qk_1x1_f64(
  rows: i32, rows4: i32, qpack: usize, q: usize, qStride: usize, D: i32, kPanel: usize, cols8: i32, s: usize, sStride: usize,
  scale: f32,
): void {
  for (let r = 0; r < rows; r++) {
    const q0 = queryAt(r, rows4, qpack, q, qStride, D);
    const qStep: usize = r < rows4 ? 16 : 4;
    for (let j = 0; j < cols8; j++) {
      let qa = q0;
      let kb = kPanel + (<usize>(j >> 3) * <usize>D << 5) + (<usize>(j & 7) << 2);
      let dot: f64 = 0;
      for (let d = 0; d < D; d++) {
        dot += <f64>load<f32>(qa) * <f64>load<f32>(kb);
        qa += qStep;
        kb += 32;
      }
      store<f32>(s + <usize>r * sStride + (<usize>j << 2), scoreOf(dot, scale));
    }
  }
}

/** The weight shift of a block's second pass over `keys` keys: Σp ≤ keys·(1 + 2^−7) stays ≤ 2^(shift − 1). */
// @ts-ignore: decorator
@inline export function weightShift(keys: i32): i32 {
  return 34 - clz<i32>(max(1, keys));
}

/** Rows of n weights (rows sStride bytes apart) times 2^−shift. */
export function shiftWeights(s: usize, sStride: usize, rows: i32, n: i32, shift: i32): void {
  const down = f32x4.splat(reinterpret<f32>((127 - shift) << 23));
  const n4 = (n + 3) & ~3; // rows are padded to 8 floats: the last vector stays inside the row
  for (let r = 0; r < rows; r++) {
    const row = s + <usize>r * sStride;
    for (let j = 0; j < n4; j += 4) v128.store(row + (<usize>j << 2), f32x4.mul(v128.load(row + (<usize>j << 2)), down));
  }
}

/** Whether the n outputs at `row` (float32, or binary16 when half) are all finite. */
export function rowFinite(row: usize, n: i32, half: bool): bool {
  for (let c = 0; c < n; c++) {
    if (half ? (load<u16>(row + (<usize>c << 1)) & 0x7c00) == 0x7c00 : !isFinite<f32>(load<f32>(row + (<usize>c << 2)))) return false;
  }
  return true;
}
