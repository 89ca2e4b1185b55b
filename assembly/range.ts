// Keeping the float32 kernels' intermediates in range, so that every score and output representable in float32
// comes out as the JS backend's float64 computes it (README "NaN and Infinity"):
// - q·k: a float32 term or partial sum can overflow (to ±∞, or NaN from ∞ − ∞) although the dot does not, only if
//   D·max|q|·max|k| > FLT_MAX. A block past that bound computes its scores with f32_qk_1x1_f64 instead of the tiles.
// - p·v: the accumulator holds Σ p·v with p ≤ 1, up to keys·max|v| although the output is ≤ max|v|. An overflow
//   there leaves a non-finite output, so a block whose output is not all finite runs again with every weight
//   times 2^−shift (exact: a power of two) and its output times 2^shift (weightShift).
// Both paths cost nothing where values are ordinary: one max|x| pass over the packed q and k, one finiteness test
// per output vector. NaN or ∞ inputs take them too, and give the same NaN/∞ answers.

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

/** Whether float32 q·k products and partial sums over D terms stay finite: D·max|q|·max|k| ≤ FLT_MAX (false for NaN). */
// @ts-ignore: decorator
@inline export function dotsInRange(D: i32, qmax: f32, kmax: f32): bool {
  return <f64>D * <f64>qmax * <f64>kmax <= <f64>F32.MAX_VALUE;
}

/**
 * f32-qk-1x1-f64: s (rows, cols8) = q (rows, D) · kᵀ (D, cols8), each dot summed in float64 (d = 0, 1, …: the
 * JS backend's order, so the same sums) and rounded once to float32. q: its first rows4 rows packed [D][4] at
 * qpack, the others rows `qStride` bytes apart from q; k: the key panels [cols8/8][D][8] at kPanel.
 */
export function f32_qk_1x1_f64(
  rows: i32, rows4: i32, qpack: usize, q: usize, qStride: usize, D: i32, kPanel: usize, cols8: i32, s: usize, sStride: usize,
): void {
  for (let r = 0; r < rows; r++) {
    const packed = r < rows4;
    const q0 = packed ? qpack + (<usize>(r & ~3) * <usize>D << 2) + (<usize>(r & 3) << 2) : q + <usize>r * qStride;
    const qStep: usize = packed ? 16 : 4;
    for (let j = 0; j < cols8; j++) {
      let qa = q0;
      let kb = kPanel + (<usize>(j >> 3) * <usize>D << 5) + (<usize>(j & 7) << 2);
      let dot: f64 = 0;
      for (let d = 0; d < D; d++) {
        dot += <f64>load<f32>(qa) * <f64>load<f32>(kb);
        qa += qStep;
        kb += 32;
      }
      store<f32>(s + <usize>r * sStride + (<usize>j << 2), <f32>dot);
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
