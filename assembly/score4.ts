// The score stage's fast path four rows at a time: a block with nothing to mask, bias or cap. Per row it does
// exactly what weighRow's unmasked path does (the same operations in the same order, so the same bits), but the four
// rows' running max, sum and correction are consecutive floats that move as one vector, and the per-row latency
// chain (max → reference → exponents → sum, and the correction's e^x) is paid once per four rows: a profile of
// S3 put 15 % of the time in weighRow, much of it in that per-row fixed work for 128-key rows.
// Also the softmax family's exponent pass for the general path (softmaxExponents, finishSoftmaxRow), so the
// one-op exponent argument and its per-row ε (fusedRef) live in one file.
import { EXP2_TABLE, FUSED_MADD, LOG2E, hmax, hsum, sexp2, vexp2, vexp2k, vmadd } from "./vmath";

const NEG_INF: f32 = -Infinity;

/** [max a, max b, max c, max d], each reduced in hmax's order (pmax of lanes 0/2 and 1/3, then of those). */
// @ts-ignore: decorator
@inline function hmax4(a: v128, b: v128, c: v128, d: v128): v128 {
  const x = f32x4.pmax(v128.shuffle<f32>(a, b, 0, 1, 4, 5), v128.shuffle<f32>(a, b, 2, 3, 6, 7));
  const y = f32x4.pmax(v128.shuffle<f32>(c, d, 0, 1, 4, 5), v128.shuffle<f32>(c, d, 2, 3, 6, 7));
  return f32x4.pmax(v128.shuffle<f32>(x, y, 0, 2, 4, 6), v128.shuffle<f32>(x, y, 1, 3, 5, 7));
}

/**
 * One row's exponents, s ← 2^x, returns the row's lane sums. fused: x = s·c − m2 in one fused op (c = scale·log2 e,
 * `ref` = −m2, see fusedRef); else x = (s·scale − ref)·log2 e (rounded product, then subtraction: the row's max then
 * gets exactly 2^0 = 1). The exp constants are loaded once, before the loop (vexp2k): one row per loop keeps them
 * all in registers, where two rows per loop made V8 spill (8.8 against 10 cycles per vector).
 */
// @ts-ignore: decorator
@inline function exponents(a: usize, cols: i32, vscale: v128, ref: v128, fused: bool): v128 {
  const vlog2e = f32x4.splat(LOG2E);
  const magic = v128.load32_splat(EXP2_TABLE, 0), b5 = v128.load32_splat(EXP2_TABLE, 4), b4 = v128.load32_splat(EXP2_TABLE, 8);
  const b3 = v128.load32_splat(EXP2_TABLE, 12), b2 = v128.load32_splat(EXP2_TABLE, 16), b1 = v128.load32_splat(EXP2_TABLE, 20);
  const cutoff = v128.load32_splat(EXP2_TABLE, 24);
  let sum = f32x4.splat(0);
  if (fused) {
    for (let j = 0; j < cols; j += 4) {
      const o = <usize>j << 2;
      const e = vexp2k(vmadd(v128.load(a + o), vscale, ref), magic, b5, b4, b3, b2, b1, cutoff);
      v128.store(a + o, e);
      sum = f32x4.add(sum, e);
    }
    return sum;
  }
  for (let j = 0; j < cols; j += 4) {
    const o = <usize>j << 2;
    const e = vexp2k(f32x4.mul(f32x4.sub(f32x4.mul(v128.load(a + o), vscale), ref), vlog2e), magic, b5, b4, b3, b2, b1, cutoff);
    v128.store(a + o, e);
    sum = f32x4.add(sum, e);
  }
  return sum;
}

/** One row's exponents in the one-op form, s ← 2^(s·c + n2) (n2 = −m2, fusedRef); returns the row's lane sums. */
// @ts-ignore: decorator
@inline export function fusedExponents(s: usize, cols: i32, c: v128, n2: v128): v128 {
  let vsum = f32x4.splat(0);
  for (let j = 0; j < cols; j += 4) {
    const ptr = s + (<usize>j << 2);
    const e = vexp2(vmadd(v128.load(ptr), c, n2));
    v128.store(ptr, e);
    vsum = f32x4.add(vsum, e);
  }
  return vsum;
}

/** |m·log2 e| up to which the fused argument (fusedRef) is used: past it, s·c − m2 of the row's max (≈ |m2|·1e-7) could be far from 0. */
export const REF_LIMIT: f32 = 65536;

/**
 * The one-op exponent argument x = s·(scale·log2 e) − m2, m2 = mRef·log2 e rounded (`ref2`, lane-wise): three
 * operations and two roundings fewer per score vector than (s·scale − mRef)·log2 e (2.95 → 2.42 ns per vector in a
 * micro-benchmark). Every weight of the row then carries the factor 2^ε, ε = mRef·log2 e − m2 (refError, exact: one
 * fused op), and the correction swaps ε_old for ε_new, so the factor cancels in acc / sum exactly and m2's rounding
 * costs no precision however large the logits. Used where vmadd is fused, every |m2| ≤ REF_LIMIT and the
 * multiplier `c` (scale·log2 e, or log2 e for scaled logits) is finite; else the two-rounding form with ε = 0.
 */
// @ts-ignore: decorator
@inline export function fusedRef(ref2: v128, c: v128): bool {
  const small = f32x4.le(f32x4.abs(ref2), f32x4.splat(REF_LIMIT));
  return FUSED_MADD && i32x4.all_true(v128.and(small, f32x4.lt(f32x4.abs(c), f32x4.splat(Infinity)))); // scale 3e38: c = ∞
}

/** ε = mRef·log2 e − m2 lane-wise, exact where fusedRef holds (the product's rounding error is a float). */
// @ts-ignore: decorator
@inline export function refError(mRef: v128, ref2: v128): v128 {
  return vmadd(mRef, f32x4.splat(LOG2E), f32x4.neg(ref2));
}

/** The first step of two hsums: [a0 + a2, a1 + a3, b0 + b2, b1 + b3] (softmaxRows4 finishes them in hsum's order). */
// @ts-ignore: decorator
@inline function pairSums(a: v128, b: v128): v128 {
  return f32x4.add(v128.shuffle<f32>(a, b, 0, 1, 4, 5), v128.shuffle<f32>(a, b, 2, 3, 6, 7));
}

/**
 * Rows s, s + sStride, … (four) of raw q·kᵀ products → softmax-family weights p = e^(x − m_new), x = s·scale,
 * updating the rows' running max, sum, correction and weight factor exponent ε (fusedRef) at rowMax / rowSum / rowCorr /
 * rowEps (four floats each). For a block
 * where every key is admissible to all four rows, with no mask, ALiBi or soft-cap, scale > 0, cols % 4 == 0.
 */
export function softmaxRows4(
  s: usize, sStride: usize, cols: i32, scale: f32, rowMax: usize, rowSum: usize, rowCorr: usize, rowEps: usize,
): void {
  const s1 = s + sStride, s2 = s1 + sStride, s3 = s2 + sStride;
  let m0 = f32x4.splat(NEG_INF), m1 = m0, m2 = m0, m3 = m0;
  // The max of the raw scores times the positive scale is the max of the scaled ones.
  for (let j = 0; j < cols; j += 4) {
    const o = <usize>j << 2;
    m0 = f32x4.pmax(m0, v128.load(s + o));
    m1 = f32x4.pmax(m1, v128.load(s1 + o));
    m2 = f32x4.pmax(m2, v128.load(s2 + o));
    m3 = f32x4.pmax(m3, v128.load(s3 + o));
  }
  const vscale = f32x4.splat(scale);
  const mOld = v128.load(rowMax);
  const mNew = f32x4.max(mOld, f32x4.mul(hmax4(m0, m1, m2, m3), vscale)); // f32x4.max is f32.max lane-wise
  // With nothing admissible yet, exponentiate against 0: 2^(−∞ − 0) = 0, never 2^(−∞ + ∞) = NaN.
  const mRef = v128.andnot(mNew, f32x4.eq(mNew, f32x4.splat(NEG_INF)));
  const vlog2e = f32x4.splat(LOG2E);
  const ref2 = f32x4.mul(mRef, vlog2e);
  let eps = f32x4.splat(0);
  const c = f32x4.mul(vscale, vlog2e);
  let e0: v128, e1: v128, e2: v128, e3: v128;
  if (fusedRef(ref2, c)) {
    eps = refError(mRef, ref2);
    const n2 = f32x4.neg(ref2);
    e0 = exponents(s, cols, c, v128.shuffle<f32>(n2, n2, 0, 0, 0, 0), true);
    e1 = exponents(s1, cols, c, v128.shuffle<f32>(n2, n2, 1, 1, 1, 1), true);
    e2 = exponents(s2, cols, c, v128.shuffle<f32>(n2, n2, 2, 2, 2, 2), true);
    e3 = exponents(s3, cols, c, v128.shuffle<f32>(n2, n2, 3, 3, 3, 3), true);
  } else {
    e0 = exponents(s, cols, vscale, v128.shuffle<f32>(mRef, mRef, 0, 0, 0, 0), false);
    e1 = exponents(s1, cols, vscale, v128.shuffle<f32>(mRef, mRef, 1, 1, 1, 1), false);
    e2 = exponents(s2, cols, vscale, v128.shuffle<f32>(mRef, mRef, 2, 2, 2, 2), false);
    e3 = exponents(s3, cols, vscale, v128.shuffle<f32>(mRef, mRef, 3, 3, 3, 3), false);
  }
  const x = pairSums(e0, e1), y = pairSums(e2, e3);
  // The hsums' second step: the four rows' sums, each ((lane 0 + lane 2) + (lane 1 + lane 3)) as hsum adds them.
  const sums = f32x4.add(v128.shuffle<f32>(x, y, 0, 2, 4, 6), v128.shuffle<f32>(x, y, 1, 3, 5, 7));
  // e^(m_old − m_new), and the weights' factor 2^ε swapped: 2^(ε_new − ε_old) (fusedRef).
  const corr = vexp2(f32x4.add(f32x4.mul(f32x4.sub(mOld, mRef), vlog2e), f32x4.sub(eps, v128.load(rowEps))));
  v128.store(rowCorr, corr);
  v128.store(rowSum, f32x4.add(f32x4.mul(v128.load(rowSum), corr), sums));
  v128.store(rowMax, mNew);
  v128.store(rowEps, eps);
}

/** The softmax pass over a row of logits whose max is in vmax: p = e^(x − m_new), running sum and max. */
// @ts-ignore: decorator
@inline export function softmaxExponents(s: usize, cols: i32, vmax: v128, rowMax: usize, rowSum: usize, rowCorr: usize, rowEps: usize): void {
  let vsum = f32x4.splat(0);
  const mOld = load<f32>(rowMax);
  const mNew = max(mOld, hmax(vmax));
  // With nothing admissible yet, exponentiate against 0: 2^(−∞ − 0) = 0, never 2^(−∞ + ∞) = NaN.
  const mRef: f32 = mNew == NEG_INF ? 0 : mNew;
  const vlog2e = f32x4.splat(LOG2E);
  const ref2 = mRef * LOG2E;
  let eps: f32 = 0;
  if (fusedRef(f32x4.splat(ref2), vlog2e)) { // x·log2 e − m2 in one op (score4.ts fusedRef)
    eps = f32x4.extract_lane(refError(f32x4.splat(mRef), f32x4.splat(ref2)), 0);
    vsum = fusedExponents(s, cols, vlog2e, f32x4.splat(-ref2));
  } else {
    const vref = f32x4.splat(mRef);
    for (let j = 0; j < cols; j += 4) {
      const ptr = s + (<usize>j << 2);
      const e = vexp2(f32x4.mul(f32x4.sub(v128.load(ptr), vref), vlog2e));
      v128.store(ptr, e);
      vsum = f32x4.add(vsum, e);
    }
  }
  finishSoftmaxRow(mOld, mNew, mRef, eps, vsum, rowMax, rowSum, rowCorr, rowEps);
}

/** corr = e^(m_old − m_new) with the weights' factor 2^ε swapped (2^(ε − ε_old)), sum ← sum·corr + Σp. */
// @ts-ignore: decorator
@inline export function finishSoftmaxRow(
  mOld: f32, mNew: f32, mRef: f32, eps: f32, vsum: v128, rowMax: usize, rowSum: usize, rowCorr: usize, rowEps: usize,
): void {
  const corr = sexp2((mOld - mRef) * LOG2E + (eps - load<f32>(rowEps)));
  store<f32>(rowCorr, corr);
  store<f32>(rowSum, load<f32>(rowSum) * corr + hsum(vsum));
  store<f32>(rowMax, mNew);
  store<f32>(rowEps, eps);
}
