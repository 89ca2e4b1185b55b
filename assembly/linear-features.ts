// Feature maps of linear attention, scaled so that float32 never overflows or underflows where the maths does
// not: φ̂ = φ(x) · e^(−λ) with λ ≈ ln max φ over the finite entries of a block (one query row, or one chunk of
// keys), so the largest φ̂ is about 1 and λ (a float64 log) carries the magnitude. elu+1 of x = −100 is
// e^−100 (below float32's range), of x = 1e30 is 1e30 (its square overflows); scaled, both are ordinary numbers.
// Features of moderate size are used unscaled (λ = 0), which changes no result and saves the division.
import { FEATURE_IDENTITY } from "./params.generated";
import { hmax, vexp } from "./vmath";

/**
 * φ̂ of n rows of D floats (row j at src + j·srcStride) into dst (n rows of D floats, contiguous); returns λ.
 * elu+1: φ(x) = x + 1 above 0, e^x below. identity: φ(x) = x. With m the largest finite x (elu+1) or |x|
 * (identity), see the cases below. NaN and ±∞ entries do not move λ, so they reach only their own row.
 */
export function scaledFeatures(map: i32, src: usize, srcStride: usize, n: i32, D: i32, dst: usize): f64 {
  const identity = map == FEATURE_IDENTITY;
  const D4 = D & ~3;
  const inf = f32x4.splat(Infinity);
  const ninf = f32x4.splat(-Infinity);
  // m: the largest finite x (elu+1) or |x| (identity); −∞ when there is none.
  let mv = ninf;
  let m: f32 = -Infinity;
  for (let j = 0; j < n; j++) {
    const row = src + <usize>j * srcStride;
    let d = 0;
    for (; d < D4; d += 4) {
      let x = v128.load(row + (<usize>d << 2));
      if (identity) x = f32x4.abs(x);
      mv = f32x4.pmax(mv, v128.bitselect(x, ninf, f32x4.lt(f32x4.abs(x), inf)));
    }
    for (; d < D; d++) {
      let x = load<f32>(row + (<usize>d << 2));
      if (identity) x = abs(x);
      if (abs(x) < Infinity && x > m) m = x;
    }
  }
  m = max(m, hmax(mv));

  if (identity) {
    // Within [2^−20, 2^20] the features are used as they are (λ = 0): nothing they meet can overflow or underflow.
    // Otherwise φ̂ = x · 2^−E with 2^E ≤ m < 2^(E+1): exact, in two steps so that 2^−E of a subnormal m fits.
    if (m >= 9.5367431640625e-7 && m <= 1048576.0 || m <= 0) {
      for (let j = 0; j < n; j++) memory.copy(dst + (<usize>(j * D) << 2), src + <usize>j * srcStride, <usize>D << 2);
      return 0;
    }
    const E = exponentOf(m);
    const h = -E >> 1;
    const s1 = f32x4.splat(pow2(h)), s2 = f32x4.splat(pow2(-E - h));
    for (let j = 0; j < n; j++) {
      const row = src + <usize>j * srcStride;
      const out = dst + (<usize>(j * D) << 2);
      let d = 0;
      for (; d < D4; d += 4) v128.store(out + (<usize>d << 2), f32x4.mul(f32x4.mul(v128.load(row + (<usize>d << 2)), s1), s2));
      for (; d < D; d++) store<f32>(out + (<usize>d << 2), load<f32>(row + (<usize>d << 2)) * pow2(h) * pow2(-E - h));
    }
    return <f64>E * LN2;
  }

  // elu+1 for m in [−16, 2^20] (the usual case): φ̂ = φ, λ = 0; φ ∈ [e^−16, 2^20 + 1] is safe as it is.
  // m > 2^20: φ̂ = φ · 2^−E with 2^E ≤ 1 + m < 2^(E+1), λ = E·ln 2 (exact scaling, in two steps as above).
  // m < −16: every x ≤ m < 0, φ̂ = e^(x − m), λ = m. No finite entry (m = −∞): φ̂ = φ, λ = 0.
  const plain = m >= -16 && m <= 1048576.0 || m == -Infinity;
  const positive = m > 1048576.0;
  const base: f32 = plain || positive ? 0 : m;
  const E = positive ? exponentOf(1 + m) : 0;
  const lambda: f64 = plain ? 0 : positive ? <f64>E * LN2 : <f64>m;
  const vbase = f32x4.splat(base);
  const h = -E >> 1;
  const s1 = f32x4.splat(pow2(h)), s2 = f32x4.splat(pow2(-E - h));
  const zero = f32x4.splat(0);
  const one = f32x4.splat(1);
  for (let j = 0; j < n; j++) {
    const row = src + <usize>j * srcStride;
    const out = dst + (<usize>(j * D) << 2);
    let d = 0;
    for (; d < D4; d += 4) {
      const x = v128.load(row + (<usize>d << 2));
      const below = vexp(f32x4.sub(f32x4.pmin(x, zero), vbase));
      const f = v128.bitselect(f32x4.add(x, one), below, f32x4.gt(x, zero));
      v128.store(out + (<usize>d << 2), positive ? f32x4.mul(f32x4.mul(f, s1), s2) : f);
    }
    for (; d < D; d++) {
      const x = load<f32>(row + (<usize>d << 2));
      const below = sexp(min(x, <f32>0) - base);
      const f = x > 0 ? x + 1 : below;
      store<f32>(out + (<usize>d << 2), positive ? f * pow2(h) * pow2(-E - h) : f);
    }
  }
  return lambda;
}

const LN2: f64 = 0.6931471805599453;

/** E with 2^E ≤ x < 2^(E+1), for a finite x > 0 (subnormals included: read through float64). */
// @ts-ignore: decorator
@inline function exponentOf(x: f32): i32 {
  return <i32>((reinterpret<u64>(<f64>x) >> 52) & 0x7ff) - 1023;
}

/** 2^e as a float32 for e in [−126, 127]. */
// @ts-ignore: decorator
@inline function pow2(e: i32): f32 {
  return reinterpret<f32>((e + 127) << 23);
}

/**
 * e^x in float64 to float32 accuracy (≈ 2e-7 relative) for any x, without libm's tables: 2^n · e^r with
 * r = x − n·ln 2 in [−ln2/2, ln2/2] through vexp. Below −700 it returns 0, above 709 +∞ (NaN stays NaN).
 */
export function expd(x: f64): f64 {
  if (x != x) return x;
  if (x > 709) return Infinity;
  if (x < -700) return 0;
  const n = nearest<f64>(x * 1.4426950408889634);
  const r = <f32>(x - n * LN2);
  return <f64>sexp(r) * reinterpret<f64>(<i64>(<i32>n + 1023) << 52);
}

/** vexp of one scalar; a function of its own (not inlined), since the scalar paths are not hot. */
function sexp(x: f32): f32 {
  return f32x4.extract_lane(vexp(f32x4.splat(x)), 0);
}
