// Micro-kernels over an int8 cache (kvcache.ts layout). The cache is widened in registers by the load itself
// (v128.load8x8_s: 8 int8 → 8 int16) and multiplied with i32x4.dot_i16x8_s (pmaddwd: two products summed per
// lane), so a lane does 2 multiply-adds per instruction and no value is converted to float:
// - scores: the query row is quantized to int16 per block of 32 channels (quantizeQuery; relative error
//   ≤ 2^−16 of the block's largest |q|), each block's integer dot products are exact in i32 (≤ 16 pairs of
//   products ≤ 32767·127), then s += float(dot) · (key scale · query scale).
// - values: per block of 32 channels and group of ≤ 256 keys, the weights p_j · vscale_j are quantized to int16
//   (quantizeWeights, same bound), integer sums (≤ 128 pairs: < 2^31) are flushed into the float32 accumulator
//   with the group's scale.
import { vmadd } from "./vmath";

/** Keys per weight group of the value kernels: 128 pairs of products ≤ 2·32767·127 stay below 2^31. */
export const WEIGHT_GROUP = 256;

/** Largest lane, NaN if any lane is NaN (f32x4.max propagates NaN; hmax's pmax need not). */
// @ts-ignore: decorator
@inline function maxLane(v: v128): f32 {
  v = f32x4.max(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  v = f32x4.max(v, v128.shuffle<f32>(v, v, 1, 0, 3, 2));
  return f32x4.extract_lane(v, 0);
}

/** Largest |x| of x[0, n), NaN if any is NaN (so a NaN row stays NaN through the integer path). */
function absMax(x: usize, n: i32): f32 {
  let m = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) m = f32x4.max(m, f32x4.abs(v128.load(x + (<usize>i << 2))));
  let s = maxLane(m);
  for (; i < n; i++) {
    const a = abs(load<f32>(x + (<usize>i << 2)));
    s = a > s || a != a ? a : s;
  }
  return s;
}

/**
 * q (D float32) → q16: int16 per channel, zero-padded to an even count, and sq: per block of 32 channels its
 * scale max|q| / 32767.
 */
export function quantizeQuery(q: usize, D: i32, q16: usize, sq: usize): void {
  const round = v128.load32_splat(ROUNDING), bias = v128.load32_splat(ROUNDING, 4);
  for (let from = 0, b = 0; from < D; from += 32, b++) {
    const to = min(D, from + 32);
    const amax = absMax(q + (<usize>from << 2), to - from);
    store<f32>(sq + (<usize>b << 2), amax / 32767);
    const vinv = f32x4.splat(amax > 0 ? min(<f32>32767 / amax, load<f32>(ROUNDING, 8)) : 0);
    let d = from;
    // 8 at a time, rounded to nearest even by the magic constant (|q·inv| ≤ 32767; NaN gives garbage, and the
    // block's NaN scale makes the scores NaN anyway).
    for (; d + 8 <= to; d += 8) {
      const x = q + (<usize>d << 2);
      const i0 = i32x4.sub(f32x4.add(f32x4.mul(v128.load(x), vinv), round), bias);
      const i1 = i32x4.sub(f32x4.add(f32x4.mul(v128.load(x, 16), vinv), round), bias);
      v128.store(q16 + (<usize>d << 1), i16x8.narrow_i32x4_s(i0, i1));
    }
    for (; d < to; d++) {
      const x = i32x4.sub(f32x4.add(f32x4.splat(load<f32>(q + (<usize>d << 2)) * f32x4.extract_lane(vinv, 0)), round), bias);
      store<i16>(q16 + (<usize>d << 1), <i16>i32x4.extract_lane(x, 0));
    }
  }
  if (D & 1) store<i16>(q16 + (<usize>D << 1), 0);
}

/**
 * 1.5·2^23 (adding it rounds a float of magnitude < 2^22 to an integer, nearest even, in its low bits), its bit
 * pattern, and the cap 2^126 on the quantization factor. Loaded, not v128.const: V8 rematerialises constants in loops.
 */
const ROUNDING: usize = memory.data<i32>([0x4b400000, 0x4b400000, 0x7e800000]);

/**
 * w_j = p_j · scale_j for j < ceil8(n) (p: weights, zero past n; scales: the value scales of these keys, finite),
 * quantized to int16 pairs at w16 (`tmp` holds the products); returns the group's scale max|w| / 32767 (NaN when
 * a weight is: the group's sums then come out NaN).
 */
export function quantizeWeights(p: usize, scales: usize, n: i32, tmp: usize, w16: usize): f32 {
  const n8 = (n + 7) & ~7;
  let m = f32x4.splat(0);
  for (let j = 0; j < n8; j += 4) {
    const o = <usize>j << 2;
    const w = f32x4.mul(v128.load(p + o), v128.load(scales + o));
    v128.store(tmp + o, w);
    m = f32x4.max(m, f32x4.abs(w));
  }
  const amax = maxLane(m);
  // Beyond 2^126 the weights are too small to matter; the cap keeps w·inv finite.
  const vinv = f32x4.splat(amax > 0 ? min(<f32>32767 / amax, load<f32>(ROUNDING, 8)) : 0);
  const round = v128.load32_splat(ROUNDING), bias = v128.load32_splat(ROUNDING, 4);
  for (let j = 0; j < n8; j += 8) {
    const o = <usize>j << 2;
    const i0 = i32x4.sub(f32x4.add(f32x4.mul(v128.load(tmp + o), vinv), round), bias);
    const i1 = i32x4.sub(f32x4.add(f32x4.mul(v128.load(tmp + o, 16), vinv), round), bias);
    v128.store(w16 + (<usize>j << 1), i16x8.narrow_i32x4_s(i0, i1));
  }
  return amax / 32767;
}

/**
 * i8-qk-1x32: s (1,32) = q · kᵀ over one super-panel at kp ([pairs][32][2]: 64 bytes a channel pair); ks: its
 * scales [blocks][32], q16/sq from quantizeQuery.
 */
export function i8_qk_1x32(q16: usize, sq: usize, kp: usize, pairs: i32, s: usize, ks: usize): void {
  for (let b = 0, done = 0; done < pairs; b++) {
    let c0 = i32x4.splat(0), c1 = i32x4.splat(0), c2 = i32x4.splat(0), c3 = i32x4.splat(0);
    let c4 = i32x4.splat(0), c5 = i32x4.splat(0), c6 = i32x4.splat(0), c7 = i32x4.splat(0);
    let g = min(16, pairs - done);
    done += g;
    do {
      const a = v128.load32_splat(q16);
      q16 += 4;
      c0 = i32x4.add(c0, i32x4.dot_i16x8_s(v128.load8x8_s(kp), a));
      c1 = i32x4.add(c1, i32x4.dot_i16x8_s(v128.load8x8_s(kp, 8), a));
      c2 = i32x4.add(c2, i32x4.dot_i16x8_s(v128.load8x8_s(kp, 16), a));
      c3 = i32x4.add(c3, i32x4.dot_i16x8_s(v128.load8x8_s(kp, 24), a));
      c4 = i32x4.add(c4, i32x4.dot_i16x8_s(v128.load8x8_s(kp, 32), a));
      c5 = i32x4.add(c5, i32x4.dot_i16x8_s(v128.load8x8_s(kp, 40), a));
      c6 = i32x4.add(c6, i32x4.dot_i16x8_s(v128.load8x8_s(kp, 48), a));
      c7 = i32x4.add(c7, i32x4.dot_i16x8_s(v128.load8x8_s(kp, 56), a));
      kp += 64;
    } while (--g);
    const qs = v128.load32_splat(sq + (<usize>b << 2));
    const sk = ks + (<usize>b << 7);
    const first = b == 0;
    blockScores(s, c0, c1, sk, qs, first);
    blockScores(s + 32, c2, c3, sk + 32, qs, first);
    blockScores(s + 64, c4, c5, sk + 64, qs, first);
    blockScores(s + 96, c6, c7, sk + 96, qs, first);
  }
}

/** s (8) (+)= float(dot) · (key scales · query scale) for one 8-key group's two lanes of 4 keys. */
// @ts-ignore: decorator
@inline function blockScores(s: usize, lo: v128, hi: v128, sk: usize, qs: v128, first: bool): void {
  const x0 = f32x4.mul(f32x4.convert_i32x4_s(lo), f32x4.mul(v128.load(sk), qs));
  const x1 = f32x4.mul(f32x4.convert_i32x4_s(hi), f32x4.mul(v128.load(sk, 16), qs));
  v128.store(s, first ? x0 : f32x4.add(v128.load(s), x0));
  v128.store(s, first ? x1 : f32x4.add(v128.load(s, 16), x1), 16);
}

/** i8-qk-1x8: s (1,8) = q · kᵀ for one 8-key group of a super-panel (kp and ks at the group). */
export function i8_qk_1x8(q16: usize, sq: usize, kp: usize, pairs: i32, s: usize, ks: usize): void {
  for (let b = 0, done = 0; done < pairs; b++) {
    let c0 = i32x4.splat(0), c1 = i32x4.splat(0);
    let g = min(16, pairs - done);
    done += g;
    do {
      const a = v128.load32_splat(q16);
      q16 += 4;
      c0 = i32x4.add(c0, i32x4.dot_i16x8_s(v128.load8x8_s(kp), a));
      c1 = i32x4.add(c1, i32x4.dot_i16x8_s(v128.load8x8_s(kp, 8), a));
      kp += 64;
    } while (--g);
    blockScores(s, c0, c1, ks + (<usize>b << 7), v128.load32_splat(sq + (<usize>b << 2)), b == 0);
  }
}

/**
 * i8-pv-1x32: acc (1,32) += scale · Σ_pairs w16 · v over `pairs` token pairs (pairStride bytes apart; v at the
 * block's first channel), w16 from quantizeWeights.
 */
export function i8_pv_1x32(w16: usize, v: usize, pairStride: usize, pairs: i32, acc: usize, scale: f32): void {
  let c0 = i32x4.splat(0), c1 = i32x4.splat(0), c2 = i32x4.splat(0), c3 = i32x4.splat(0);
  let c4 = i32x4.splat(0), c5 = i32x4.splat(0), c6 = i32x4.splat(0), c7 = i32x4.splat(0);
  let j = pairs;
  do {
    const a = v128.load32_splat(w16);
    w16 += 4;
    c0 = i32x4.add(c0, i32x4.dot_i16x8_s(v128.load8x8_s(v), a));
    c1 = i32x4.add(c1, i32x4.dot_i16x8_s(v128.load8x8_s(v, 8), a));
    c2 = i32x4.add(c2, i32x4.dot_i16x8_s(v128.load8x8_s(v, 16), a));
    c3 = i32x4.add(c3, i32x4.dot_i16x8_s(v128.load8x8_s(v, 24), a));
    c4 = i32x4.add(c4, i32x4.dot_i16x8_s(v128.load8x8_s(v, 32), a));
    c5 = i32x4.add(c5, i32x4.dot_i16x8_s(v128.load8x8_s(v, 40), a));
    c6 = i32x4.add(c6, i32x4.dot_i16x8_s(v128.load8x8_s(v, 48), a));
    c7 = i32x4.add(c7, i32x4.dot_i16x8_s(v128.load8x8_s(v, 56), a));
    v += pairStride;
  } while (--j);
  const r = f32x4.splat(scale);
  v128.store(acc, vmadd(f32x4.convert_i32x4_s(c0), r, v128.load(acc)));
  v128.store(acc, vmadd(f32x4.convert_i32x4_s(c1), r, v128.load(acc, 16)), 16);
  v128.store(acc, vmadd(f32x4.convert_i32x4_s(c2), r, v128.load(acc, 32)), 32);
  v128.store(acc, vmadd(f32x4.convert_i32x4_s(c3), r, v128.load(acc, 48)), 48);
  v128.store(acc, vmadd(f32x4.convert_i32x4_s(c4), r, v128.load(acc, 64)), 64);
  v128.store(acc, vmadd(f32x4.convert_i32x4_s(c5), r, v128.load(acc, 80)), 80);
  v128.store(acc, vmadd(f32x4.convert_i32x4_s(c6), r, v128.load(acc, 96)), 96);
  v128.store(acc, vmadd(f32x4.convert_i32x4_s(c7), r, v128.load(acc, 112)), 112);
}

/** i8-pv-1x8: acc (1,8) += scale · Σ_pairs w16 · v for 8 channels. */
export function i8_pv_1x8(w16: usize, v: usize, pairStride: usize, pairs: i32, acc: usize, scale: f32): void {
  let c0 = i32x4.splat(0), c1 = i32x4.splat(0);
  let j = pairs;
  do {
    const a = v128.load32_splat(w16);
    w16 += 4;
    c0 = i32x4.add(c0, i32x4.dot_i16x8_s(v128.load8x8_s(v), a));
    c1 = i32x4.add(c1, i32x4.dot_i16x8_s(v128.load8x8_s(v, 8), a));
    v += pairStride;
  } while (--j);
  const r = f32x4.splat(scale);
  v128.store(acc, vmadd(f32x4.convert_i32x4_s(c0), r, v128.load(acc)));
  v128.store(acc, vmadd(f32x4.convert_i32x4_s(c1), r, v128.load(acc, 16)), 16);
}
