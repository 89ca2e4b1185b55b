// Operand packing, done once per (batch, kv head) and shared by every query head that reads it (GQA/MQA).
import { absBits, maxOfBits } from "./range";

/** Rounds n up to a multiple of 8 (the key-panel and value-panel width). */
// @ts-ignore: decorator
@inline export function ceil8(n: i32): i32 {
  return (n + 7) & ~7;
}

/** Rows a, b, c, d of a 4×4 block -> its columns, stored 32 bytes apart from dst (two 4-lane halves of a panel row). */
// @ts-ignore: decorator
@inline function storeTransposed(a: v128, b: v128, c: v128, d: v128, dst: usize, step: usize): void {
  const ab01 = v128.shuffle<f32>(a, b, 0, 4, 1, 5);
  const ab23 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
  const cd01 = v128.shuffle<f32>(c, d, 0, 4, 1, 5);
  const cd23 = v128.shuffle<f32>(c, d, 2, 6, 3, 7);
  v128.store(dst, v128.shuffle<f32>(ab01, cd01, 0, 1, 4, 5));
  v128.store(dst + step, v128.shuffle<f32>(ab01, cd01, 2, 3, 6, 7));
  v128.store(dst + 2 * step, v128.shuffle<f32>(ab23, cd23, 0, 1, 4, 5));
  v128.store(dst + 3 * step, v128.shuffle<f32>(ab23, cd23, 2, 3, 6, 7));
}

/**
 * k (S,D), key rows `rowBytes` apart (D·4, or more for a (B, S, KVH, D) tensor) -> panels [ceil8(S)/8][D][8]:
 * the 8 keys of a panel are contiguous for each d, which is
 * what the qk micro-kernels stream. Keys past S are zero (their scores are masked off anyway).
 * Full panels with D a multiple of 4 move as 4×4 transposes (8 loads, 16 shuffles, 8 stores per 32 floats:
 * packing was 8 % of S1 when done one float at a time); the rest one float at a time.
 * Returns max |k| (NaN if a key holds NaN), which range.ts needs, taken while the keys are in registers.
 */
export function x32_packk_8(k: usize, rowBytes: usize, S: i32, D: i32, dst: usize): f32 {
  const panelBytes = <usize>D << 5;
  const panels = ceil8(S) >> 3;
  let p = 0;
  let m = i32x4.splat(0), m4 = m; // absBits maxima of the panels' first and last four keys
  if ((D & 3) == 0) {
    for (; p < S >> 3; p++) {
      const k0 = k + (<usize>p << 3) * rowBytes;
      const k4 = k0 + 4 * rowBytes;
      for (let d = 0; d < D; d += 4) {
        const o = <usize>d << 2;
        const out = dst + (<usize>d << 5);
        const a = v128.load(k0 + o), b = v128.load(k0 + rowBytes + o), c = v128.load(k0 + 2 * rowBytes + o), e = v128.load(k0 + 3 * rowBytes + o);
        m = i32x4.max_u(i32x4.max_u(m, absBits(a)), i32x4.max_u(absBits(b), i32x4.max_u(absBits(c), absBits(e))));
        storeTransposed(a, b, c, e, out, 32);
        const a4 = v128.load(k4 + o), b4 = v128.load(k4 + rowBytes + o), c4 = v128.load(k4 + 2 * rowBytes + o), e4 = v128.load(k4 + 3 * rowBytes + o);
        m4 = i32x4.max_u(i32x4.max_u(m4, absBits(a4)), i32x4.max_u(absBits(b4), i32x4.max_u(absBits(c4), absBits(e4))));
        storeTransposed(a4, b4, c4, e4, out + 16, 32);
      }
      dst += panelBytes;
    }
  }
  m = i32x4.max_u(m, m4);
  for (; p < panels; p++) {
    for (let jj = 0; jj < 8; jj++) {
      const j = (p << 3) + jj;
      let out = dst + (<usize>jj << 2);
      if (j < S) {
        let src = k + <usize>j * rowBytes;
        for (let d = 0; d < D; d++) {
          const x = load<f32>(src);
          m = i32x4.max_u(m, absBits(f32x4.splat(x)));
          store<f32>(out, x);
          src += 4;
          out += 32;
        }
      } else {
        for (let d = 0; d < D; d++) {
          store<f32>(out, 0);
          out += 32;
        }
      }
    }
    dst += panelBytes;
  }
  return maxOfBits(m);
}

/**
 * v (S,Dv), rows `rowBytes` apart -> (S, ceil8(Dv)) with zero columns, so the pv micro-kernels never need a
 * column tail. Only used when Dv is not already a multiple of 8.
 */
export function x32_padv_8(v: usize, rowBytes: usize, S: i32, Dv: i32, dst: usize): void {
  const srcBytes = <usize>Dv << 2;
  const dstBytes = <usize>ceil8(Dv) << 2;
  for (let j = 0; j < S; j++) {
    memory.copy(dst, v, srcBytes);
    memory.fill(dst + srcBytes, 0, dstBytes - srcBytes);
    v += rowBytes;
    dst += dstBytes;
  }
}

/**
 * Four query rows (q rows `rowBytes` apart) -> [D][4], the layout f32_qk_4x8p reads with one pointer; 4×4 transposes
 * while 4 columns remain. Returns max |q| of the four rows (NaN if one is NaN), as x32_packk_8.
 */
export function x32_packq_4(q: usize, rowBytes: usize, D: i32, dst: usize): f32 {
  const q1 = q + rowBytes;
  const q2 = q1 + rowBytes;
  const q3 = q2 + rowBytes;
  let m = i32x4.splat(0);
  let d = 0;
  for (; d + 4 <= D; d += 4) {
    const o = <usize>d << 2;
    const a = v128.load(q + o), b = v128.load(q1 + o), c = v128.load(q2 + o), e = v128.load(q3 + o);
    m = i32x4.max_u(i32x4.max_u(m, absBits(a)), i32x4.max_u(absBits(b), i32x4.max_u(absBits(c), absBits(e))));
    storeTransposed(a, b, c, e, dst, 16);
    dst += 64;
  }
  for (; d < D; d++) {
    const o = <usize>d << 2;
    const x = f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(load<f32>(q + o)), 1, load<f32>(q1 + o)), 2, load<f32>(q2 + o)), 3, load<f32>(q3 + o));
    m = i32x4.max_u(m, absBits(x));
    v128.store(dst, x);
    dst += 16;
  }
  return maxOfBits(m);
}

/**
 * v (S,Dv), rows `rowBytes` apart -> panels [ceil8(Dv)/8][S][8] (columns past Dv zero): the 8 columns an f32-pv
 * tile reads are contiguous for each key, so a tile streams one 32-byte row per key instead of touching a new
 * cache line of the full value rows. Returns max |v| (NaN if a value is NaN), as x32_packk_8.
 */
export function x32_packv_8(v: usize, rowBytes: usize, S: i32, Dv: i32, dst: usize): f32 {
  const panelBytes = <usize>S << 5;
  const full = Dv >> 3;
  let m = i32x4.splat(0);
  for (let j = 0; j < S; j++) {
    let out = dst + (<usize>j << 5);
    let c = 0;
    for (; c < full; c++) {
      const a = v128.load(v + (<usize>c << 5)), b = v128.load(v + (<usize>c << 5), 16);
      m = i32x4.max_u(m, i32x4.max_u(absBits(a), absBits(b)));
      v128.store(out, a);
      v128.store(out, b, 16);
      out += panelBytes;
    }
    if ((Dv & 7) != 0) {
      v128.store(out, v128.splat<i32>(0));
      v128.store(out, v128.splat<i32>(0), 16);
      for (let d = c << 3; d < Dv; d++) {
        const x = load<f32>(v + (<usize>d << 2));
        m = i32x4.max_u(m, absBits(f32x4.splat(x)));
        store<f32>(out + (<usize>(d & 7) << 2), x);
      }
    }
    v += rowBytes;
  }
  return maxOfBits(m);
}
