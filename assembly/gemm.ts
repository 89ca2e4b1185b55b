// Register-blocked micro-kernels for the two products inside attention. XNNPACK's shape: a 4×8 tile of
// accumulators (8 v128) plus 4 broadcast A values and 2 B vectors = 14 of the 16 xmm registers V8 gives us
// on x64; 6×8 spills on Node 20/22. Rows that do not fill a 4-row tile use the 1×32 and 1×8 kernels.
// A is read one element at a time with load32_splat (one instruction); B is read 8 floats at a time.
import { vmadd } from "./vmath";

/** Bytes between weight rows in the flash loop's scratch: 128 keys (BC in attention.ts) of f32. */
export const BLOCK_STRIDE: usize = 512;

/**
 * f32-qk-4x8-packed: s (4,8) = q (4,D) · kᵀ (D,8) with q packed as [D][4] (x32_packq_4): one A pointer with
 * constant offsets instead of four, so each step bumps 2 pointers instead of 5 — the loop is short enough
 * that its scalar bookkeeping competes with the 14 vector operations for issue slots.
 */
// @ts-ignore: decorator
@inline function qkTile(qp: usize, kp: usize, D: i32, s: usize, sStride: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const end = kp + (<usize>D << 5);
  do {
    const b0 = v128.load(kp);
    const b1 = v128.load(kp, 16);
    const a0 = v128.load32_splat(qp);
    const a1 = v128.load32_splat(qp, 4);
    const a2 = v128.load32_splat(qp, 8);
    const a3 = v128.load32_splat(qp, 12);
    c00 = vmadd(a0, b0, c00); c01 = vmadd(a0, b1, c01);
    c10 = vmadd(a1, b0, c10); c11 = vmadd(a1, b1, c11);
    c20 = vmadd(a2, b0, c20); c21 = vmadd(a2, b1, c21);
    c30 = vmadd(a3, b0, c30); c31 = vmadd(a3, b1, c31);
    kp += 32;
    qp += 16;
  } while (kp != end);
  v128.store(s, c00); v128.store(s, c01, 16); s += sStride;
  v128.store(s, c10); v128.store(s, c11, 16); s += sStride;
  v128.store(s, c20); v128.store(s, c21, 16); s += sStride;
  v128.store(s, c30); v128.store(s, c31, 16);
}

export function f32_qk_4x8p(qp: usize, kp: usize, D: i32, s: usize, sStride: usize): void {
  qkTile(qp, kp, D, s, sStride);
}

/**
 * f32_qk_4x8p over `panels` consecutive key panels (s columns 8 apart): the flash loop's whole key block for one
 * 4-row group in one call, not a call per 8 keys (D = 64: a call's frame and memory-base loads were ~2 % of its
 * 64-step loop).
 */
export function f32_qk_4x8p_n(qp: usize, kp: usize, D: i32, s: usize, sStride: usize, panels: i32): void {
  const panelBytes = <usize>D << 5;
  for (let c = 0; c < panels; c++) {
    qkTile(qp, kp, D, s, sStride);
    kp += panelBytes;
    s += 32;
  }
}

/** f32-qk-1x8: s (1,8) = q (1,D) · kᵀ (D,8); for the rows left over after 4-row tiles (and decode). */
export function f32_qk_1x8(q0: usize, kp: usize, D: i32, s: usize): void {
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0);
  let d = D;
  do {
    const a0 = v128.load32_splat(q0); q0 += 4;
    c0 = vmadd(a0, v128.load(kp), c0);
    c1 = vmadd(a0, v128.load(kp, 16), c1);
    kp += 32;
  } while (--d);
  v128.store(s, c0); v128.store(s, c1, 16);
}

/**
 * f32-qk-1x32: s (1,32) = q (1,D) · kᵀ (D,32) over 4 consecutive key panels (`panelBytes` apart). One query
 * row is decode's shape: 8 independent accumulators keep both FMA pipes busy, where the 1×8 kernel's two
 * accumulator chains wait on FMA latency.
 */
export function f32_qk_1x32(q0: usize, kp: usize, panelBytes: usize, D: i32, s: usize): void {
  let k1 = kp + panelBytes;
  let k2 = k1 + panelBytes;
  let k3 = k2 + panelBytes;
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  let c4 = f32x4.splat(0), c5 = f32x4.splat(0), c6 = f32x4.splat(0), c7 = f32x4.splat(0);
  let d = D;
  do {
    const a = v128.load32_splat(q0);
    q0 += 4;
    c0 = vmadd(a, v128.load(kp), c0); c1 = vmadd(a, v128.load(kp, 16), c1);
    c2 = vmadd(a, v128.load(k1), c2); c3 = vmadd(a, v128.load(k1, 16), c3);
    c4 = vmadd(a, v128.load(k2), c4); c5 = vmadd(a, v128.load(k2, 16), c5);
    c6 = vmadd(a, v128.load(k3), c6); c7 = vmadd(a, v128.load(k3, 16), c7);
    kp += 32; k1 += 32; k2 += 32; k3 += 32;
  } while (--d);
  v128.store(s, c0); v128.store(s, c1, 16); v128.store(s, c2, 32); v128.store(s, c3, 48);
  v128.store(s, c4, 64); v128.store(s, c5, 80); v128.store(s, c6, 96); v128.store(s, c7, 112);
}

/** f32-pv-1x32: acc (1,32) = acc · corr + p (1,J) · v (J,32); the decode-shaped partner of f32_qk_1x32. */
export function f32_pv_1x32(p0: usize, v: usize, vStride: usize, J: i32, acc: usize, corr: usize): void {
  const r = v128.load32_splat(corr);
  let c0 = f32x4.mul(v128.load(acc), r), c1 = f32x4.mul(v128.load(acc, 16), r);
  let c2 = f32x4.mul(v128.load(acc, 32), r), c3 = f32x4.mul(v128.load(acc, 48), r);
  let c4 = f32x4.mul(v128.load(acc, 64), r), c5 = f32x4.mul(v128.load(acc, 80), r);
  let c6 = f32x4.mul(v128.load(acc, 96), r), c7 = f32x4.mul(v128.load(acc, 112), r);
  let j = J;
  do {
    const a = v128.load32_splat(p0);
    p0 += 4;
    c0 = vmadd(a, v128.load(v), c0); c1 = vmadd(a, v128.load(v, 16), c1);
    c2 = vmadd(a, v128.load(v, 32), c2); c3 = vmadd(a, v128.load(v, 48), c3);
    c4 = vmadd(a, v128.load(v, 64), c4); c5 = vmadd(a, v128.load(v, 80), c5);
    c6 = vmadd(a, v128.load(v, 96), c6); c7 = vmadd(a, v128.load(v, 112), c7);
    v += vStride;
  } while (--j);
  v128.store(acc, c0); v128.store(acc, c1, 16); v128.store(acc, c2, 32); v128.store(acc, c3, 48);
  v128.store(acc, c4, 64); v128.store(acc, c5, 80); v128.store(acc, c6, 96); v128.store(acc, c7, 112);
}

/**
 * f32-pv-4x8: acc (4,8) = acc · diag(corr) + p (4,J) · v (J,8).
 * Folding the online-softmax rescale (corr = e^(m_old − m_new)) into the accumulator load costs one multiply
 * per register per key block instead of a separate pass over the accumulator.
 * p rows are `pStride` bytes apart, v rows `vStride`, acc rows `accStride`; corr holds 4 floats.
 */
export function f32_pv_4x8(
  p0: usize, pStride: usize, v: usize, vStride: usize, J: i32, acc: usize, accStride: usize, corr: usize,
): void {
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
    const b0 = v128.load(v);
    const b1 = v128.load(v, 16);
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
 * f32-pv-4x8-blocked: f32_pv_4x8 for the flash loop, whose weight rows are always BLOCK_STRIDE bytes apart: the
 * four rows are read at constant offsets from one pointer, so each step bumps 2 pointers instead of 5.
 */
// @ts-ignore: decorator
@inline function pvTileB(p0: usize, v: usize, vStride: usize, J: i32, acc: usize, accStride: usize, corr: usize): void {
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
  const end = p0 + (<usize>J << 2);
  do {
    const b0 = v128.load(v);
    const b1 = v128.load(v, 16);
    v += vStride;
    const a0 = v128.load32_splat(p0);
    const a1 = v128.load32_splat(p0, BLOCK_STRIDE);
    const a2 = v128.load32_splat(p0, 2 * BLOCK_STRIDE);
    const a3 = v128.load32_splat(p0, 3 * BLOCK_STRIDE);
    c00 = vmadd(a0, b0, c00); c01 = vmadd(a0, b1, c01);
    c10 = vmadd(a1, b0, c10); c11 = vmadd(a1, b1, c11);
    c20 = vmadd(a2, b0, c20); c21 = vmadd(a2, b1, c21);
    c30 = vmadd(a3, b0, c30); c31 = vmadd(a3, b1, c31);
    p0 += 4;
  } while (p0 != end);
  v128.store(acc, c00); v128.store(acc, c01, 16);
  v128.store(a1p, c10); v128.store(a1p, c11, 16);
  v128.store(a2p, c20); v128.store(a2p, c21, 16);
  v128.store(a3p, c30); v128.store(a3p, c31, 16);
}

export function f32_pv_4x8b(p0: usize, v: usize, vStride: usize, J: i32, acc: usize, accStride: usize, corr: usize): void {
  pvTileB(p0, v, vStride, J, acc, accStride, corr);
}

/**
 * f32_pv_4x8b over `groups` 8-column groups (values `vPanel` bytes apart, acc columns 8 apart): one call per
 * 4-row group and key block, as f32_qk_4x8p_n.
 */
export function f32_pv_4x8b_n(
  p0: usize, v: usize, vPanel: usize, vStride: usize, J: i32, acc: usize, accStride: usize, corr: usize, groups: i32,
): void {
  for (let c = 0; c < groups; c++) {
    pvTileB(p0, v, vStride, J, acc, accStride, corr);
    v += vPanel;
    acc += 32;
  }
}

/** f32-pv-1x8: acc (1,8) = acc · corr + p (1,J) · v (J,8). */
export function f32_pv_1x8(p0: usize, v: usize, vStride: usize, J: i32, acc: usize, corr: usize): void {
  const r = v128.load32_splat(corr);
  let c0 = f32x4.mul(v128.load(acc), r), c1 = f32x4.mul(v128.load(acc, 16), r);
  let j = J;
  do {
    const a0 = v128.load32_splat(p0); p0 += 4;
    c0 = vmadd(a0, v128.load(v), c0);
    c1 = vmadd(a0, v128.load(v, 16), c1);
    v += vStride;
  } while (--j);
  v128.store(acc, c0); v128.store(acc, c1, 16);
}
