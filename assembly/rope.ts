// Rotary position embedding, applied in place to the call's own copy of q or k before attention: one pass of
// O(rows·dims), next to the O(L·S·D) products. The host writes the cos/sin table (float64 angles rounded once to
// float32: src/rope.ts), so positions of 10^5 keep their accuracy; here each pair is rotated in float32,
// (x, y) → (x·cos − y·sin, x·sin + y·cos), exact to 1 ulp of the rotated values.
import { Params } from "./params.generated";

/**
 * Rotates every row of x (B, heads, seq, D) — (B, seq, heads, D) when bshd — by its row's angles: row i of each
 * (batch, head) uses table row i. table: cos [seq][dims/2], then sin [seq][dims/2]; batch row b's table is
 * b · tableStride bytes on (0: one table for all, else each row at its own positions). Pairs (t, t + dims/2), or
 * (2t, 2t + 1) when ropeInterleaved; channels from ropeDims on pass through.
 */
export function ropeInPlace(params: usize, x: usize, heads: i32, seq: i32, table0: usize, tableStride: usize): void {
  const p = changetype<Params>(params);
  const D = p.D, half = p.ropeDims >> 1, bshd = p.bshd != 0, interleaved = p.ropeInterleaved != 0;
  const rowStride = <usize>(bshd ? heads * D : D) << 2;
  const half4 = half & ~3;
  const halfBytes = <usize>half << 2;
  for (let b = 0; b < p.B; b++) {
    const table = table0 + <usize>b * tableStride;
    const sinTable = table + (<usize>seq * <usize>half << 2);
    for (let h = 0; h < heads; h++) {
      let row = x + (<usize>(bshd ? b * seq * heads + h : (b * heads + h) * seq) * <usize>D << 2);
      for (let i = 0; i < seq; i++) {
        const c = table + (<usize>i * <usize>half << 2);
        const s = sinTable + (<usize>i * <usize>half << 2);
        if (interleaved) {
          for (let t = 0; t < half; t++) rotate(row + (<usize>t << 3), row + (<usize>t << 3) + 4, c + (<usize>t << 2), s + (<usize>t << 2));
        } else {
          let t = 0;
          for (; t < half4; t += 4) {
            const o = <usize>t << 2;
            const a = v128.load(row + o), bb = v128.load(row + halfBytes + o);
            const vc = v128.load(c + o), vs = v128.load(s + o);
            v128.store(row + o, f32x4.sub(f32x4.mul(a, vc), f32x4.mul(bb, vs)));
            v128.store(row + halfBytes + o, f32x4.add(f32x4.mul(a, vs), f32x4.mul(bb, vc)));
          }
          for (; t < half; t++) rotate(row + (<usize>t << 2), row + halfBytes + (<usize>t << 2), c + (<usize>t << 2), s + (<usize>t << 2));
        }
        row += rowStride;
      }
    }
  }
}

/** One pair: *x0, *x1 rotated by the angle whose cos and sin are at c and s. */
// @ts-ignore: decorator
@inline function rotate(x0: usize, x1: usize, c: usize, s: usize): void {
  const a = load<f32>(x0), b = load<f32>(x1), cv = load<f32>(c), sv = load<f32>(s);
  store<f32>(x0, a * cv - b * sv);
  store<f32>(x1, a * sv + b * cv);
}
