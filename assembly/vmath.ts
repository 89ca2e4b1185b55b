// Vector maths shared by every kernel. One source, two builds: ASC_FEATURE_RELAXED_SIMD is a compile-time
// constant, so the plain-SIMD build contains no relaxed instruction and validates on runtimes without it.

// Constants live in a data segment and are loaded with v128.load32_splat: V8 rematerialises v128.const inside
// loops (several instructions each), while a splat load from L1 is one instruction.
// Layout (f32): 0 log2(e), 1 magic bias 1.5·2^23 + 127, 2 −ln2 (high bits), 3 −ln2 (low bits),
// 4..8 degree-5 minimax coefficients c5..c1 of exp on [−ln2/2, ln2/2], 9 cutoff below which exp flushes to 0.
// Coefficients and the two-step Cody–Waite reduction are XNNPACK's "rr2-p5" (f32-vexp), hex floats rounded here.
export const EXP_TABLE: usize = memory.data<f32>([
  1.442695022, 12583039.0, -0.693145752, -0.000001428606765,
  0.008289290592, 0.04189782217, 0.1666765213, 0.4999915063, 0.999999702,
  -87.33654022,
]);

// Lane index table for building "j < limit" lane masks: (0, 1, 2, 3) and the step 4.
export const LANE_TABLE: usize = memory.data<i32>([0, 1, 2, 3, 4, 4, 4, 4]);

/** a·b + c; one fused, singly rounded instruction in the relaxed build, two rounded ones otherwise. */
// @ts-ignore: decorator
@inline export function vmadd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.relaxed_madd(a, b, c);
  } else {
    return f32x4.add(f32x4.mul(a, b), c);
  }
}

/**
 * e^x on four lanes, for x ≤ 0 (attention only ever exponentiates score − running max).
 * Max relative error 1.77e-7 (plain SIMD) / 1.62e-7 (relaxed, fused) on [−87.3, 0] against float64 Math.exp,
 * measured by test/exp.test.ts over 2^20 points; below −87.34 the result flushes to +0 (the true value is
 * subnormal, < 1.2e-38), −∞ gives exactly 0, exp(0) is exactly 1 and NaN propagates.
 */
// @ts-ignore: decorator
@inline export function vexp(x: v128): v128 {
  // n = round(x / ln2) via the magic-bias trick; the bias also carries the exponent bias 127, so shifting the
  // float's bits left by 23 yields the float 2^n directly (valid while n ≥ −126, guaranteed by the cutoff).
  let n = vmadd(x, v128.load32_splat(EXP_TABLE, 0), v128.load32_splat(EXP_TABLE, 4));
  const s = i32x4.shl(n, 23);
  n = f32x4.sub(n, v128.load32_splat(EXP_TABLE, 4));
  // r = x − n·ln2 in two steps so that r keeps ~8 more bits than a single product would.
  let t = vmadd(n, v128.load32_splat(EXP_TABLE, 8), x);
  t = vmadd(n, v128.load32_splat(EXP_TABLE, 12), t);
  let p = vmadd(v128.load32_splat(EXP_TABLE, 16), t, v128.load32_splat(EXP_TABLE, 20));
  p = vmadd(p, t, v128.load32_splat(EXP_TABLE, 24));
  p = vmadd(p, t, v128.load32_splat(EXP_TABLE, 28));
  p = vmadd(p, t, v128.load32_splat(EXP_TABLE, 32));
  // e^x = s·(1 + t·p) = s + (t·s)·p, which is exact for t = 0.
  t = f32x4.mul(t, s);
  const f = vmadd(t, p, s);
  return v128.andnot(f, f32x4.lt(x, v128.load32_splat(EXP_TABLE, 36)));
}

// tanh: 0..3 Taylor coefficients of tanh(x)/x − 1 in x² (−1/3, 2/15, −17/315, 62/2835), 4 the switch point
// between the series and (1 − e^(−2|x|)) / (1 + e^(−2|x|)), 5 the sign mask, 6 one, 7 minus two.
export const TANH_TABLE: usize = memory.data<f32>([
  -0.3333333433, 0.1333333403, -0.05396825448, 0.02186948806, 0.3125, -0.0, 1.0, -2.0,
]);

/**
 * tanh on four lanes. Below |x| = 0.3125 an odd Taylor polynomial to x⁹ (truncation ≤ 2.5e-8 absolute);
 * above, (1 − t)/(1 + t) with t = e^(−2|x|) ≤ 0.54, where the subtraction loses at most 2 bits.
 * Max relative error 2.2e-7 (plain) / 2.3e-7 (relaxed) on [−20, 20], measured by test/exp.test.ts;
 * ±∞ → ±1, ±0 and tiny values pass through exactly, NaN propagates.
 */
// @ts-ignore: decorator
@inline export function vtanh(x: v128): v128 {
  const sign = v128.load32_splat(TANH_TABLE, 20);
  const one = v128.load32_splat(TANH_TABLE, 24);
  const a = v128.andnot(x, sign);
  const t = vexp(f32x4.mul(a, v128.load32_splat(TANH_TABLE, 28)));
  const large = f32x4.div(f32x4.sub(one, t), f32x4.add(one, t));
  const a2 = f32x4.mul(a, a);
  let p = vmadd(v128.load32_splat(TANH_TABLE, 12), a2, v128.load32_splat(TANH_TABLE, 8));
  p = vmadd(p, a2, v128.load32_splat(TANH_TABLE, 4));
  p = vmadd(p, a2, v128.load32_splat(TANH_TABLE, 0));
  const small = vmadd(f32x4.mul(p, a2), a, a);
  const magnitude = v128.bitselect(small, large, f32x4.lt(a, v128.load32_splat(TANH_TABLE, 16)));
  return v128.or(magnitude, v128.and(x, sign));
}

/**
 * Soft-capping cap·tanh(x/cap) on four lanes (`invcap` = 1/cap), as accurate as vtanh. Where |x/cap| < 0.3125
 * it is x·(1 + P(y²)·y²) with y = x/cap — the same series as vtanh multiplied out by cap — so a small score
 * under a huge cap (x = 4e-21, cap = 3e38: y underflows) is still x, not 0.
 */
// @ts-ignore: decorator
@inline export function vsoftcap(x: v128, cap: v128, invcap: v128): v128 {
  const sign = v128.load32_splat(TANH_TABLE, 20);
  const one = v128.load32_splat(TANH_TABLE, 24);
  const y = f32x4.mul(x, invcap);
  const a = v128.andnot(y, sign);
  const t = vexp(f32x4.mul(a, v128.load32_splat(TANH_TABLE, 28)));
  const large = v128.or(f32x4.mul(cap, f32x4.div(f32x4.sub(one, t), f32x4.add(one, t))), v128.and(x, sign));
  const a2 = f32x4.mul(a, a);
  let p = vmadd(v128.load32_splat(TANH_TABLE, 12), a2, v128.load32_splat(TANH_TABLE, 8));
  p = vmadd(p, a2, v128.load32_splat(TANH_TABLE, 4));
  p = vmadd(p, a2, v128.load32_splat(TANH_TABLE, 0));
  const small = vmadd(f32x4.mul(p, a2), x, x);
  return v128.bitselect(small, large, f32x4.lt(a, v128.load32_splat(TANH_TABLE, 16)));
}

// exp2: 0 magic bias 1.5·2^23 + 127, 1..5 the rr2-p5 coefficients above rescaled to base 2 (c_i·ln2^i:
// b5..b1), 6 the cutoff −126, 7 log2(e) for callers that fold it into their scale.
export const EXP2_TABLE: usize = memory.data<f32>([
  12583039.0, 0.001326308819, 0.009671487845, 0.05550739169, 0.2402224243, 0.6931470037, -126.0, 1.442695041,
]);
export const LOG2E: f32 = 1.442695041;

/**
 * Whether vmadd is one fused, singly rounded operation here: relaxed_madd may be either (x64 without FMA3 runs it
 * as a multiply and an add), and the softmax kernels' one-instruction exponent argument (score4.ts fusedRef) is only
 * exact when fused. Decided once per instance: (1 + 2^−12)² − (1 + 2^−11) is 2^−24 fused, 0 rounded twice.
 */
const FMA_PROBE: usize = memory.data<f32>([1.000244140625, -1.00048828125]); // loaded: never folded at compile time
export const FUSED_MADD: bool = ASC_FEATURE_RELAXED_SIMD && f32x4.extract_lane(vmadd(
  v128.load32_splat(FMA_PROBE), v128.load32_splat(FMA_PROBE), v128.load32_splat(FMA_PROBE, 4),
), 0) != 0;

/**
 * 2^x on four lanes, for x ≤ 0: the softmax kernels work in base 2 (log2 e folded into the score scale), which
 * makes the range reduction exact (r = x − round(x) needs no Cody–Waite split) and saves three instructions
 * per vector over vexp. Max relative error 1.89e-7 (plain) / 1.65e-7 (relaxed) on [−126, 0] (test/exp.test.ts); below −126 it flushes to +0,
 * −∞ gives 0, 2^0 = 1 exactly, NaN propagates.
 */
// @ts-ignore: decorator
@inline export function vexp2(x: v128): v128 {
  return vexp2k(
    x, v128.load32_splat(EXP2_TABLE, 0), v128.load32_splat(EXP2_TABLE, 4), v128.load32_splat(EXP2_TABLE, 8),
    v128.load32_splat(EXP2_TABLE, 12), v128.load32_splat(EXP2_TABLE, 16), v128.load32_splat(EXP2_TABLE, 20),
    v128.load32_splat(EXP2_TABLE, 24),
  );
}

/**
 * vexp2 with its constants passed in (EXP2_TABLE 0–6: magic bias, b5 … b1, cutoff), for a loop that loads them
 * once before it: V8 then keeps them in registers instead of reloading seven constants per vector (the softmax
 * exponent loop, score4.ts: 9.98 → 8.8 cycles per vector in a micro-benchmark). Same operations, same bits.
 */
// @ts-ignore: decorator
@inline export function vexp2k(x: v128, magic: v128, b5: v128, b4: v128, b3: v128, b2: v128, b1: v128, cutoff: v128): v128 {
  // n = nearest(x) (one rounding instruction), r = x − n, and 2^n from the bits of n + magic bias (exact): r no
  // longer waits for the bias to be added and subtracted back, two dependent adds shorter for the exponent loops
  // (latency-bound). n is from nearest for both: the bias sum alone rounds ties (x = k + 0.5) the other way.
  const n = f32x4.nearest(x);
  const s = i32x4.shl(f32x4.add(n, magic), 23);
  const r = f32x4.sub(x, n);
  let p = vmadd(b5, r, b4);
  p = vmadd(p, r, b3);
  p = vmadd(p, r, b2);
  p = vmadd(p, r, b1);
  const f = vmadd(f32x4.mul(r, s), p, s);
  return v128.andnot(f, f32x4.lt(x, cutoff));
}

/** 2^x for one scalar, through the vector path. */
// @ts-ignore: decorator
@inline export function sexp2(x: f32): f32 {
  return f32x4.extract_lane(vexp2(f32x4.splat(x)), 0);
}

/** Largest lane (NaN lanes are ignored, as pmax does). */
// @ts-ignore: decorator
@inline export function hmax(v: v128): f32 {
  v = f32x4.pmax(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  v = f32x4.pmax(v, v128.shuffle<f32>(v, v, 1, 0, 3, 2));
  return f32x4.extract_lane(v, 0);
}

/** Sum of the four lanes, pairwise. */
// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  v = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  v = f32x4.add(v, v128.shuffle<f32>(v, v, 1, 0, 3, 2));
  return f32x4.extract_lane(v, 0);
}
