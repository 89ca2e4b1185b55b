// Micro-kernels over a float16 cache (kvcache.ts layout): the shapes of gemm.ts, converting 8 cache codes per
// load in registers (convert.ts halfEven / halfOdd: 5 integer ops per 8 values, no shuffle). The codes decode
// to value × 2^−112; the kernels put the 2^112 back where it costs least:
// - one query row (decode): the caller prescales q by 2^t and the 1×N qk kernels multiply their sums by
//   `post` = 2^(112 − t) once (t chosen so that neither q·2^t overflows nor the partial sums go subnormal);
//   the caller multiplies a row of weights by 2^112 once for the 1×N pv kernels (weights ≤ 1), or with `exact`
//   (activations whose weights may exceed 2^16) the kernels multiply each decoded vector instead.
// - 4-row tiles (grouped decode, prefill chunks): the same, with the 4 rows' q prescaled and their 4 post
//   factors applied at the store; the weight rows prescaled (or, with `exact`, each decoded vector).
// Every product of a decoded value and a rescaled operand is then the product of the true values, exactly as
// in float32 arithmetic on the decoded cache.
import { vmadd } from "./vmath";
import { halfEven, halfMask, halfOdd, halfScale } from "./convert";

/**
 * f16-qk-1x32: s (1,32) = post · q (1,D) · kᵀ (D,32) over one super-panel [D][32] at kp (64 bytes a channel).
 */
export function f16_qk_1x32(q0: usize, kp: usize, D: i32, s: usize, post: f32): void {
  const m = halfMask();
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  let c4 = f32x4.splat(0), c5 = f32x4.splat(0), c6 = f32x4.splat(0), c7 = f32x4.splat(0);
  let d = D;
  do {
    const a = v128.load32_splat(q0);
    q0 += 4;
    let w = v128.load(kp);
    c0 = vmadd(a, halfEven(w, m), c0); c1 = vmadd(a, halfOdd(w, m), c1);
    w = v128.load(kp, 16);
    c2 = vmadd(a, halfEven(w, m), c2); c3 = vmadd(a, halfOdd(w, m), c3);
    w = v128.load(kp, 32);
    c4 = vmadd(a, halfEven(w, m), c4); c5 = vmadd(a, halfOdd(w, m), c5);
    w = v128.load(kp, 48);
    c6 = vmadd(a, halfEven(w, m), c6); c7 = vmadd(a, halfOdd(w, m), c7);
    kp += 64;
  } while (--d);
  const r = f32x4.splat(post);
  v128.store(s, f32x4.mul(c0, r)); v128.store(s, f32x4.mul(c1, r), 16);
  v128.store(s, f32x4.mul(c2, r), 32); v128.store(s, f32x4.mul(c3, r), 48);
  v128.store(s, f32x4.mul(c4, r), 64); v128.store(s, f32x4.mul(c5, r), 80);
  v128.store(s, f32x4.mul(c6, r), 96); v128.store(s, f32x4.mul(c7, r), 112);
}

/** f16-qk-1x8: s (1,8) = post · q (1,D) · kᵀ (D,8), one 8-key group of a super-panel (64 bytes a channel). */
export function f16_qk_1x8(q0: usize, kp: usize, D: i32, s: usize, post: f32): void {
  const m = halfMask();
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0);
  let d = D;
  do {
    const a = v128.load32_splat(q0);
    q0 += 4;
    const w = v128.load(kp);
    c0 = vmadd(a, halfEven(w, m), c0);
    c1 = vmadd(a, halfOdd(w, m), c1);
    kp += 64;
  } while (--d);
  const r = f32x4.splat(post);
  v128.store(s, f32x4.mul(c0, r));
  v128.store(s, f32x4.mul(c1, r), 16);
}

/**
 * f16-qk-4x8-packed: s (4,8) = post · q (4,D) · kᵀ (D,8) for one 8-key group of a super-panel, q packed [D][4]
 * with row r prescaled by 2^t_r (typedScores) and post = the 4 floats 2^(112 − t_r).
 */
export function f16_qk_4x8p(qp: usize, kp: usize, D: i32, s: usize, sStride: usize, post: usize): void {
  const m = halfMask();
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const end = kp + (<usize>D << 6);
  do {
    const w = v128.load(kp);
    const b0 = halfEven(w, m);
    const b1 = halfOdd(w, m);
    const a0 = v128.load32_splat(qp);
    const a1 = v128.load32_splat(qp, 4);
    const a2 = v128.load32_splat(qp, 8);
    const a3 = v128.load32_splat(qp, 12);
    c00 = vmadd(a0, b0, c00); c01 = vmadd(a0, b1, c01);
    c10 = vmadd(a1, b0, c10); c11 = vmadd(a1, b1, c11);
    c20 = vmadd(a2, b0, c20); c21 = vmadd(a2, b1, c21);
    c30 = vmadd(a3, b0, c30); c31 = vmadd(a3, b1, c31);
    kp += 64;
    qp += 16;
  } while (kp != end);
  let r = v128.load32_splat(post);
  v128.store(s, f32x4.mul(c00, r)); v128.store(s, f32x4.mul(c01, r), 16); s += sStride;
  r = v128.load32_splat(post, 4);
  v128.store(s, f32x4.mul(c10, r)); v128.store(s, f32x4.mul(c11, r), 16); s += sStride;
  r = v128.load32_splat(post, 8);
  v128.store(s, f32x4.mul(c20, r)); v128.store(s, f32x4.mul(c21, r), 16); s += sStride;
  r = v128.load32_splat(post, 12);
  v128.store(s, f32x4.mul(c30, r)); v128.store(s, f32x4.mul(c31, r), 16);
}

// The 1×N pv kernels come in two instantiations, chosen at compile time by the marker type E: Folded (i32) reads
// weights the caller has multiplied by 2^112, Exact (f32) multiplies each decoded vector by 2^112.
type Folded = i32;
type Exact = f32;

// @ts-ignore: decorator
@inline function decode<E>(v: v128, m: v128, g: v128): v128 {
  return isFloat<E>() ? f32x4.mul(v, g) : v;
}

function pv1x16<E>(p0: usize, v: usize, vStride: usize, J: i32, acc: usize, corr: usize): void {
  const r = v128.load32_splat(corr);
  const m = halfMask(), g = halfScale();
  let c0 = f32x4.mul(v128.load(acc), r), c1 = f32x4.mul(v128.load(acc, 16), r);
  let c2 = f32x4.mul(v128.load(acc, 32), r), c3 = f32x4.mul(v128.load(acc, 48), r);
  const v2 = vStride << 1;
  let j = J >> 1;
  if (j) {
    do {
      const a = v128.load32_splat(p0);
      const b = v128.load32_splat(p0, 4);
      p0 += 8;
      let w = v128.load(v);
      c0 = vmadd(a, decode<E>(halfEven(w, m), m, g), c0); c1 = vmadd(a, decode<E>(halfOdd(w, m), m, g), c1);
      w = v128.load(v, 16);
      c2 = vmadd(a, decode<E>(halfEven(w, m), m, g), c2); c3 = vmadd(a, decode<E>(halfOdd(w, m), m, g), c3);
      w = v128.load(v + vStride);
      c0 = vmadd(b, decode<E>(halfEven(w, m), m, g), c0); c1 = vmadd(b, decode<E>(halfOdd(w, m), m, g), c1);
      w = v128.load(v + vStride, 16);
      c2 = vmadd(b, decode<E>(halfEven(w, m), m, g), c2); c3 = vmadd(b, decode<E>(halfOdd(w, m), m, g), c3);
      v += v2;
    } while (--j);
  }
  if (J & 1) {
    const a = v128.load32_splat(p0);
    let w = v128.load(v);
    c0 = vmadd(a, decode<E>(halfEven(w, m), m, g), c0); c1 = vmadd(a, decode<E>(halfOdd(w, m), m, g), c1);
    w = v128.load(v, 16);
    c2 = vmadd(a, decode<E>(halfEven(w, m), m, g), c2); c3 = vmadd(a, decode<E>(halfOdd(w, m), m, g), c3);
  }
  v128.store(acc, c0); v128.store(acc, c1, 16); v128.store(acc, c2, 32); v128.store(acc, c3, 48);
}

function pv1x8<E>(p0: usize, v: usize, vStride: usize, J: i32, acc: usize, corr: usize): void {
  const r = v128.load32_splat(corr);
  const m = halfMask(), g = halfScale();
  let c0 = f32x4.mul(v128.load(acc), r), c1 = f32x4.mul(v128.load(acc, 16), r);
  let j = J;
  do {
    const a = v128.load32_splat(p0);
    p0 += 4;
    const w = v128.load(v);
    c0 = vmadd(a, decode<E>(halfEven(w, m), m, g), c0);
    c1 = vmadd(a, decode<E>(halfOdd(w, m), m, g), c1);
    v += vStride;
  } while (--j);
  v128.store(acc, c0);
  v128.store(acc, c1, 16);
}

/**
 * f16-pv-1x16: acc (1,16) = acc · corr + p (1,J) · v (J,16), two keys per step (four accumulators: V8 keeps
 * about ten vectors in registers, and a 1×32 tile spills: 9 → 14 GMAC/s in L1); weights already multiplied by 2^112 (weights ≤ 1: every activation but relu and polynomial), or with `exact` plain weights and
 * the decoded values multiplied.
 */
export function f16_pv_1x16(p0: usize, v: usize, vStride: usize, J: i32, acc: usize, corr: usize, exact: bool): void {
  if (exact) pv1x16<Exact>(p0, v, vStride, J, acc, corr);
  else pv1x16<Folded>(p0, v, vStride, J, acc, corr);
}

/** f16-pv-1x8: acc (1,8) = acc · corr + p (1,J) · v (J,8), as f16_pv_1x16. */
export function f16_pv_1x8(p0: usize, v: usize, vStride: usize, J: i32, acc: usize, corr: usize, exact: bool): void {
  if (exact) pv1x8<Exact>(p0, v, vStride, J, acc, corr);
  else pv1x8<Folded>(p0, v, vStride, J, acc, corr);
}

function pv4x8<E>(
  p0: usize, pStride: usize, v: usize, vStride: usize, J: i32, acc: usize, accStride: usize, corr: usize,
): void {
  const m = halfMask(), g = halfScale();
  let p1 = p0 + pStride;
  let p2 = p1 + pStride;
  let p3 = p2 + pStride;
  const a1p = acc + accStride;
  const a2p = a1p + accStride;
  const a3p = a2p + accStride;
  let r = v128.load32_splat(corr);
  let c00 = f32x4.mul(v128.load(acc), r), c01 = f32x4.mul(v128.load(acc, 16), r);
  r = v128.load32_splat(corr, 4);
  let c10 = f32x4.mul(v128.load(a1p), r), c11 = f32x4.mul(v128.load(a1p, 16), r);
  r = v128.load32_splat(corr, 8);
  let c20 = f32x4.mul(v128.load(a2p), r), c21 = f32x4.mul(v128.load(a2p, 16), r);
  r = v128.load32_splat(corr, 12);
  let c30 = f32x4.mul(v128.load(a3p), r), c31 = f32x4.mul(v128.load(a3p, 16), r);
  let j = J;
  do {
    const w = v128.load(v);
    const b0 = decode<E>(halfEven(w, m), m, g);
    const b1 = decode<E>(halfOdd(w, m), m, g);
    v += vStride;
    const a0 = v128.load32_splat(p0); p0 += 4;
    const a1 = v128.load32_splat(p1); p1 += 4;
    const a2 = v128.load32_splat(p2); p2 += 4;
    const a3 = v128.load32_splat(p3); p3 += 4;
    c00 = vmadd(a0, b0, c00); c01 = vmadd(a0, b1, c01);
    c10 = vmadd(a1, b0, c10); c11 = vmadd(a1, b1, c11);
    c20 = vmadd(a2, b0, c20); c21 = vmadd(a2, b1, c21);
    c30 = vmadd(a3, b0, c30); c31 = vmadd(a3, b1, c31);
  } while (--j);
  v128.store(acc, c00); v128.store(acc, c01, 16);
  v128.store(a1p, c10); v128.store(a1p, c11, 16);
  v128.store(a2p, c20); v128.store(a2p, c21, 16);
  v128.store(a3p, c30); v128.store(a3p, c31, 16);
}


/**
 * f16-pv-4x8: acc (4,8) = acc · diag(corr) + p (4,J) · v (J,8), weight rows pStride apart, already multiplied by
 * 2^112 (weights ≤ 1), or with `exact` plain weights and the decoded values multiplied.
 */
export function f16_pv_4x8(
  p0: usize, pStride: usize, v: usize, vStride: usize, J: i32, acc: usize, accStride: usize, corr: usize, exact: bool,
): void {
  if (exact) pv4x8<Exact>(p0, pStride, v, vStride, J, acc, accStride, corr);
  else pv4x8<Folded>(p0, pStride, v, vStride, J, acc, accStride, corr);
}
