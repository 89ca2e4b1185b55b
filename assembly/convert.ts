// Element conversions between float32 and the 16-bit and 8-bit types, the primitives of the converter table
// (kvtypes.ts). Two float16 decoders:
// - `halfEven`/`halfOdd` decode the cache's own codes in 3 and 2 integer ops per four values, no shuffle: the
//   two halves of each 32-bit word are turned into float32 bit patterns in place (sign to bit 31, exponent and
//   mantissa to bits 27..13), which is the value × 2^−112 exactly (the exponent bias difference 127 − 15 is left
//   out; the kernels fold 2^112 into the other operand). Subnormals decode exactly; the cache never holds ±∞ or
//   NaN (appends refuse them), whose codes would decode as finite numbers. A word holds the value of lane i in
//   its low half and of lane i + 4 in its high half, so 8 values decode to lanes 0–3 and 4–7 in order.
// - `halvesToF32` decodes IEEE binary16 bits of a tensor exactly, ±∞ and NaN included (packing, not hot).
// Encoding rounds to nearest even with gradual underflow; for the cache, magnitudes beyond 65504 saturate.

/** 0x8FFFE000: sign, the 5 exponent bits and 10 mantissa bits of a decoded half; 2^112; 2^−112. */
export const HALF_TABLE: usize = memory.data<i32>([
  0x8fffe000, 0x77800000, 0x07800000, 0x7fff, 0x7bff, 0x70000000, 0x8000, 0,
]);

// @ts-ignore: decorator
@inline export function halfMask(): v128 {
  return v128.load32_splat(HALF_TABLE);
}

/** 2^112 on four lanes: decoded cache values times this are their true values. */
// @ts-ignore: decorator
@inline export function halfScale(): v128 {
  return v128.load32_splat(HALF_TABLE, 4);
}

/** Lanes 0–3 of the 8 cache codes in `w` (their low halves), as value × 2^−112. */
// @ts-ignore: decorator
@inline export function halfEven(w: v128, mask: v128): v128 {
  return v128.and(i32x4.shr_s(i32x4.shl(w, 16), 3), mask);
}

/** Lanes 4–7 of the 8 cache codes in `w` (their high halves), as value × 2^−112. */
// @ts-ignore: decorator
@inline export function halfOdd(w: v128, mask: v128): v128 {
  return v128.and(i32x4.shr_s(w, 3), mask);
}

/** Where lane l (0–7) of an 8-value group is stored among the group's 8 codes: lanes 0–3 low halves, 4–7 high. */
// @ts-ignore: decorator
@inline export function halfSlot(l: i32): i32 {
  return l < 4 ? l << 1 : ((l - 4) << 1) | 1;
}

/** Four IEEE binary16 values (u16 bits zero-extended in i32 lanes) as float32, exactly; ±∞ and NaN kept. */
// @ts-ignore: decorator
@inline export function halvesToF32(h: v128): v128 {
  const em = v128.and(h, v128.load32_splat(HALF_TABLE, 12));
  const sign = i32x4.shl(v128.and(h, v128.load32_splat(HALF_TABLE, 24)), 16);
  const bits = i32x4.shl(em, 13);
  const finite = f32x4.mul(bits, halfScale());
  const special = v128.or(bits, v128.load32_splat(HALF_TABLE, 20)); // exponent 31 -> 255, mantissa kept
  return v128.or(v128.bitselect(special, finite, i32x4.gt_s(em, v128.load32_splat(HALF_TABLE, 16))), sign);
}

/** Four binary16 values at `ptr` (natural order) as float32. */
// @ts-ignore: decorator
@inline export function loadHalves4(ptr: usize): v128 {
  return halvesToF32(v128.load16x4_u(ptr));
}

/** n binary16 values at src (natural order) as float32 at dst. */
export function halfRowToF32(src: usize, n: i32, dst: usize): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), loadHalves4(src + (<usize>i << 1)));
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), halfToF32(load<u16>(src + (<usize>i << 1))));
}

/** One binary16 value as float32, exactly. */
export function halfToF32(h: u32): f32 {
  return f32x4.extract_lane(halvesToF32(i32x4.splat(<i32>h)), 0);
}

/**
 * Four float32 as binary16 bits (in the low halves of i32 lanes), rounded to nearest even: subnormals gradual,
 * beyond 65504 (from 65520 on) ±∞, NaN a quiet NaN.
 */
// @ts-ignore: decorator
@inline export function f32ToHalves(x: v128): v128 {
  const sign = v128.and(x, i32x4.splat(0x80000000));
  const a = v128.xor(x, sign);
  // Normal results: rebias the exponent, round the 13 dropped bits to nearest even, shift.
  const odd = v128.and(i32x4.shr_u(a, 13), i32x4.splat(1));
  const normal = i32x4.shr_u(i32x4.add(i32x4.add(a, i32x4.splat(-0x37fff001)), odd), 13); // (15 − 127) << 23 + 0xfff
  // Subnormal results (|x| < 2^−14): adding 0.5 makes the float unit round the mantissa at the right place.
  const magic = i32x4.splat(0x3f000000); // ((127 − 15) + (23 − 10) + 1) << 23 = 0.5
  const sub = i32x4.sub(f32x4.add(a, magic), magic);
  let h = v128.bitselect(sub, normal, i32x4.lt_s(a, i32x4.splat(0x38800000))); // 2^−14
  h = v128.bitselect(i32x4.splat(0x7c00), h, i32x4.ge_s(a, i32x4.splat(0x47800000))); // ≥ 65536: ∞
  h = v128.bitselect(i32x4.splat(0x7e00), h, i32x4.gt_s(a, i32x4.splat(0x7f800000))); // NaN
  return v128.or(h, i32x4.shr_u(sign, 16));
}

/** Stores four float32 at `ptr` as binary16, rounded to nearest even. */
// @ts-ignore: decorator
@inline export function storeHalves4(ptr: usize, x: v128): void {
  const h = f32ToHalves(x);
  v128.store64_lane(ptr, i16x8.narrow_i32x4_u(h, h), 0);
}

/** One float32 as binary16 bits, rounded to nearest even. */
export function f32ToHalf(x: f32): u16 {
  return <u16>i32x4.extract_lane(f32ToHalves(f32x4.splat(x)), 0);
}

/** The cache's rounding: binary16 to nearest even, magnitudes beyond 65504 saturating to ±65504. */
export function f32ToCacheHalf(x: f32): u16 {
  return f32ToHalf(copysign<f32>(min(abs(x), <f32>65504), x));
}
