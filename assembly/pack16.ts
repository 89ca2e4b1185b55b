// Packing of float16 (IEEE binary16) tensors: the same layouts as pack.ts, decoding while packing, so a 16-bit
// q, k or v costs no separate conversion pass. Decoding is exact (convert.ts halvesToF32, ±∞ and NaN kept).
import { halfRowToF32, halfToF32, loadHalves4 } from "./convert";
import { ceil8 } from "./pack";
import { absBits, maxOfBits } from "./range";

/**
 * k (S,D) binary16, key rows `rowBytes` apart -> float32 panels [ceil8(S)/8][D][8], keys past S zero. Returns
 * max |k| (NaN if a key is NaN), as x32_packk_8.
 */
export function x16_packk_8(k: usize, rowBytes: usize, S: i32, D: i32, dst: usize): f32 {
  const panels = ceil8(S) >> 3;
  let m = i32x4.splat(0);
  for (let p = 0; p < panels; p++) {
    for (let jj = 0; jj < 8; jj++) {
      const j = (p << 3) + jj;
      let out = dst + (<usize>jj << 2);
      if (j < S) {
        const src = k + <usize>j * rowBytes;
        let d = 0;
        for (; d + 4 <= D; d += 4) {
          const x = loadHalves4(src + (<usize>d << 1));
          m = i32x4.max_u(m, absBits(x));
          store<f32>(out, f32x4.extract_lane(x, 0));
          store<f32>(out, f32x4.extract_lane(x, 1), 32);
          store<f32>(out, f32x4.extract_lane(x, 2), 64);
          store<f32>(out, f32x4.extract_lane(x, 3), 96);
          out += 128;
        }
        for (; d < D; d++) {
          const x = halfToF32(load<u16>(src + (<usize>d << 1)));
          m = i32x4.max_u(m, absBits(f32x4.splat(x)));
          store<f32>(out, x);
          out += 32;
        }
      } else {
        for (let d = 0; d < D; d++) {
          store<f32>(out, 0);
          out += 32;
        }
      }
    }
    dst += <usize>D << 5;
  }
  return maxOfBits(m);
}

/** v (S,Dv) binary16, rows `rowBytes` apart -> float32 rows (S, ceil8(Dv)) with zero columns. */
export function x16_padv_8(v: usize, rowBytes: usize, S: i32, Dv: i32, dst: usize): void {
  const dstBytes = <usize>ceil8(Dv) << 2;
  for (let j = 0; j < S; j++) {
    halfRowToF32(v, Dv, dst);
    memory.fill(dst + (<usize>Dv << 2), 0, dstBytes - (<usize>Dv << 2));
    v += rowBytes;
    dst += dstBytes;
  }
}

/** Four binary16 query rows (`rowBytes` apart) -> float32 [D][4], the layout f32_qk_4x8p reads. */
export function x16_packq_4(q: usize, rowBytes: usize, D: i32, dst: usize): void {
  for (let r = 0; r < 4; r++) {
    const src = q + <usize>r * rowBytes;
    let out = dst + (<usize>r << 2);
    for (let d = 0; d < D; d++) {
      store<f32>(out, halfToF32(load<u16>(src + (<usize>d << 1))));
      out += 16;
    }
  }
}
