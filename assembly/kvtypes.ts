// The converter table (ggml's type_traits): what the flash loop asks of a resident cache stored in a 16- or
// 8-bit type. One entry per dtype and job, chosen once per key block:
//
//   dtype     scores of a key block (q · kᵀ)                     weighted values (acc·corr + p · v)
//   float32   gemm.ts on the panels in place (attention.ts)      gemm.ts on the rows in place
//   float16   kv-f16.ts: 4×8 tiles, 1×32 / 1×8 rows (q ·2^t)      kv-f16.ts: 4×8 tiles, 1×16 / 1×8 rows
//   int8      kv-i8.ts: 1×32 / 1×8 rows on int16 queries           kv-i8.ts: 1×32 / 1×8 rows on int16 weights
//
// Every kernel converts the cache in registers while it streams it; nothing is ever copied out as float32.
// Pointers come from the cache head (row · KVH + kv head) and the block's first slot (a multiple of 8).
import { ACT_POLYNOMIAL, ACT_RELU, DTYPE_FLOAT16, DTYPE_FLOAT32, Params } from "./params.generated";
import { ceil8 } from "./pack";
import { HALF_CHUNK, blocksOf, chunkWidth, kvHeadBytes } from "./kvcache";
import { halfScale, halfSlot, halfToF32 } from "./convert";
import { queryAt, scoreOf } from "./range";
import { f16_pv_1x16, f16_pv_1x8, f16_pv_4x8, f16_qk_1x32, f16_qk_1x8, f16_qk_4x8p } from "./kv-f16";
import { WEIGHT_GROUP, i8_pv_1x32, i8_pv_1x8, i8_qk_1x32, i8_qk_1x8, quantizeQuery, quantizeWeights } from "./kv-i8";

/** Whether a call's keys (or values) are a resident cache in a type the flash loop's own kernels do not read. */
// @ts-ignore: decorator
@inline export function typedKeys(p: Params): bool {
  return p.resident != 0 && p.kType != DTYPE_FLOAT32;
}
// @ts-ignore: decorator
@inline export function typedValues(p: Params): bool {
  return p.resident != 0 && p.vType != DTYPE_FLOAT32;
}

/** Scratch bytes the table's kernels need per thread: 4 prepared query rows and their factors, int16 weights. */
export function typedScratchBytes(p: Params): f64 {
  if (!typedKeys(p) && !typedValues(p)) return 0;
  return <f64>(((p.D + 3) & ~3) * 16 + 16 + blocksOf(p.D) * 68 + WEIGHT_GROUP * 6 + 64);
}

/**
 * q·2^t at `dst` for the float16 1×N kernels, t = min(112, 125 − ⌊log2 max|q|⌋): q·2^t and the partial sums
 * stay finite and normal. Returns post = 2^(112 − t), which turns the sums into the true scores.
 */
function prescale(q: usize, D: i32, dst: usize): f32 {
  let m: f32 = 0;
  for (let d = 0; d < D; d++) m = max(m, abs(load<f32>(q + (<usize>d << 2))));
  const e = isFinite<f32>(m) ? (reinterpret<i32>(m) >> 23) - 127 : 0;
  const t = min(112, 125 - e);
  const up = reinterpret<f32>((t + 127) << 23);
  for (let d = 0; d < D; d++) store<f32>(dst + (<usize>d << 2), load<f32>(q + (<usize>d << 2)) * up);
  return reinterpret<f32>((112 - t + 127) << 23);
}

/**
 * 4 query rows packed [D][4] at qp, row r times 2^t_r, to dst; their post factors 2^(112 − t_r) at dst + 16·D.
 */
function prescalePacked(qp: usize, D: i32, dst: usize): void {
  let m = f32x4.splat(0);
  for (let d = 0; d < D; d++) m = f32x4.max(m, f32x4.abs(v128.load(qp + (<usize>d << 4))));
  // Per lane, as prescale: t = min(112, 125 − ⌊log2 m⌋) from m's exponent field (NaN or ∞: any t will do).
  const t = i32x4.min_s(i32x4.splat(112), i32x4.sub(i32x4.splat(252), i32x4.shr_u(m, 23)));
  const up = i32x4.shl(i32x4.add(t, i32x4.splat(127)), 23);
  v128.store(dst + (<usize>D << 4), i32x4.shl(i32x4.sub(i32x4.splat(239), t), 23));
  for (let d = 0; d < D; d++) v128.store(dst + (<usize>d << 4), f32x4.mul(v128.load(qp + (<usize>d << 4)), up));
}

/**
 * s (rows, cols8) = q (rows, D) · kᵀ for the keys in slots slot … slot + cols8 − 1 of cache head `head`: q rows
 * qStride apart (float32), its first rows4 rows also packed [D][4] at qpack; s rows sStride apart.
 */
export function typedScores(
  p: Params, head: i32, slot: i32, rows: i32, rows4: i32, q: usize, qStride: usize, qpack: usize,
  cols8: i32, sBuf: usize, sStride: usize, work: usize,
): void {
  const D = p.D;
  const kHead = p.k + <usize>head * <usize>kvHeadBytes(p, 0);
  // Keys slot … slot + cols8 − 1 in 32-key super-panels: slot is a multiple of 32 (attention.ts rounds the first
  // key of a block down to 32 for these caches); group c (8 keys) is 16 bytes into its super-panel's lines.
  if (p.kType == DTYPE_FLOAT16) {
    const superBytes = <usize>D << 6;
    const k0 = kHead + <usize>(slot >> 5) * superBytes;
    const posts = work + (<usize>D << 4);
    for (let r = 0; r < rows4; r += 4) {
      prescalePacked(qpack + (<usize>r * <usize>D << 2), D, work);
      const sr = sBuf + <usize>r * sStride;
      for (let c = 0; c < cols8; c += 8) f16_qk_4x8p(work, k0 + <usize>(c >> 5) * superBytes + (<usize>(c & 24) << 1), D, sr + (<usize>c << 2), sStride, posts);
    }
    for (let r = rows4; r < rows; r++) {
      const post = prescale(q + <usize>r * qStride, D, work);
      const sr = sBuf + <usize>r * sStride;
      let c = 0;
      for (; c + 32 <= cols8; c += 32) f16_qk_1x32(work, k0 + <usize>(c >> 5) * superBytes, D, sr + (<usize>c << 2), post);
      for (; c < cols8; c += 8) f16_qk_1x8(work, k0 + <usize>(c >> 5) * superBytes + (<usize>(c & 24) << 1), D, sr + (<usize>c << 2), post);
    }
    return;
  }
  // int8
  const pairs = (D + 1) >> 1, nb = blocksOf(D);
  const superBytes = <usize>pairs << 6, scaleBytes = <usize>nb << 7;
  const k0 = kHead + <usize>(slot >> 5) * superBytes;
  const ks0 = p.kScales + <usize>head * <usize>kvHeadBytes(p, 2) + <usize>(slot >> 5) * scaleBytes;
  const q16 = work, sq = work + (<usize>nb << 6);
  for (let r = 0; r < rows; r++) {
    quantizeQuery(q + <usize>r * qStride, D, q16, sq);
    const sr = sBuf + <usize>r * sStride;
    let c = 0;
    for (; c + 32 <= cols8; c += 32) {
      i8_qk_1x32(q16, sq, k0 + <usize>(c >> 5) * superBytes, pairs, sr + (<usize>c << 2), ks0 + <usize>(c >> 5) * scaleBytes);
    }
    for (; c < cols8; c += 8) {
      const g = <usize>(c & 24);
      i8_qk_1x8(q16, sq, k0 + <usize>(c >> 5) * superBytes + (g << 1), pairs, sr + (<usize>c << 2), ks0 + <usize>(c >> 5) * scaleBytes + (g << 2));
    }
  }
}

/**
 * acc (rows, ceil8(Dv)) = acc · diag(corr) + p (rows, cols) · v for the values in slots slot … slot + cols − 1
 * of cache head `head`: p rows sStride apart (zero-padded here to 8 keys; for float16 rows scaled in place), acc
 * rows accStride apart, corr one float per row.
 */
export function typedWeightedValues(
  p: Params, head: i32, slot: i32, rows: i32, rows4: i32, sBuf: usize, sStride: usize, cols: i32,
  acc: usize, accStride: usize, rowCorr: usize, work: usize,
): void {
  const Dv = p.Dv, dv8 = ceil8(Dv), M = p.capacity;
  const vHead = p.v + <usize>head * <usize>kvHeadBytes(p, 1);
  if (p.vType == DTYPE_FLOAT16) {
    // Weights of relu and polynomial are unbounded: 2^112 goes into the decoded values instead of the weights.
    const exact = p.activation == ACT_RELU || p.activation == ACT_POLYNOMIAL;
    if (!exact) for (let r = 0; r < rows; r++) scaleRow(sBuf + <usize>r * sStride, cols, halfScale());
    for (let r = 0; r < rows4; r += 4) {
      const pr = sBuf + <usize>r * sStride;
      const ar = acc + <usize>r * accStride;
      for (let c = 0; c < dv8; c += 8) {
        const w = halfRowBytes(dv8, c);
        const v = halfChunk(vHead, M, c) + <usize>slot * w + (<usize>(c & 15) << 1);
        f16_pv_4x8(pr, sStride, v, w, cols, ar + (<usize>c << 2), accStride, rowCorr + (<usize>r << 2), exact);
      }
    }
    for (let r = rows4; r < rows; r++) {
      const pr = sBuf + <usize>r * sStride;
      const ar = acc + <usize>r * accStride;
      const cr = rowCorr + (<usize>r << 2);
      for (let c = 0; c < dv8; c += HALF_CHUNK) {
        const w = halfRowBytes(dv8, c), v = halfChunk(vHead, M, c) + <usize>slot * w;
        if (w == 32) f16_pv_1x16(pr, v, 32, cols, ar + (<usize>c << 2), cr, exact);
        else f16_pv_1x8(pr, v, 16, cols, ar + (<usize>c << 2), cr, exact);
      }
    }
    return;
  }
  // int8: per row, the accumulator is rescaled once, then each block of 32 channels takes the weighted sums of
  // its value rows group by group.
  const chunks = (dv8 + 31) >> 5;
  const vs = p.vScales + <usize>head * <usize>kvHeadBytes(p, 3);
  const tmp = work, w16 = work + (<usize>WEIGHT_GROUP << 2);
  for (let r = 0; r < rows; r++) {
    const pr = sBuf + <usize>r * sStride;
    const ar = acc + <usize>r * accStride;
    const corr = v128.load32_splat(rowCorr + (<usize>r << 2));
    for (let c = 0; c < dv8; c += 4) v128.store(ar + (<usize>c << 2), f32x4.mul(v128.load(ar + (<usize>c << 2)), corr));
    for (let j = cols; j < ((cols + 7) & ~7); j++) store<f32>(pr + (<usize>j << 2), 0); // quantizeWeights reads 8 at a time
    for (let b = 0; b < chunks; b++) {
      const w = chunkWidth(dv8, b), pairStride = <usize>w << 1;
      const ab = ar + (<usize>b << 7);
      for (let g = 0; g < cols; g += WEIGHT_GROUP) {
        const n = min(WEIGHT_GROUP, cols - g);
        const scale = quantizeWeights(pr + (<usize>g << 2), vs + (<usize>(b * M + slot + g) << 2), n, tmp, w16);
        const pairs = (n + 1) >> 1;
        const v = vHead + (<usize>b * <usize>M << 5) + <usize>((slot + g) >> 1) * pairStride;
        if (w == 32) i8_pv_1x32(w16, v, 64, pairs, ab, scale);
        else for (let c = 0; c < w; c += 8) i8_pv_1x8(w16, v + (<usize>c << 1), pairStride, pairs, ab + (<usize>c << 2), scale);
      }
    }
  }
}

/** The float16 value chunk holding channel c, and the bytes of a key's row in it. */
// @ts-ignore: decorator
@inline function halfChunk(vHead: usize, M: i32, c: i32): usize {
  return vHead + (<usize>(c >> 4) * <usize>M << 5);
}
// @ts-ignore: decorator
@inline function halfRowBytes(dv8: i32, c: i32): usize {
  return <usize>min(HALF_CHUNK, dv8 - (c & ~15)) << 1;
}

/** p[0, n) ·= g in place (n rounded up to 4: the score rows are 8-padded). */
function scaleRow(p: usize, n: i32, g: v128): void {
  for (let j = 0; j < n; j += 4) v128.store(p + (<usize>j << 2), f32x4.mul(v128.load(p + (<usize>j << 2)), g));
}

/**
 * typedScores in float64, for a block past range.ts's bound (D·max|q|·max|k| > FLT_MAX), where the kernels'
 * float32 sums could overflow or cancel catastrophically: each key element decoded exactly (binary16; int8 times
 * its float32 scale, exact in float64), each dot summed in the JS backend's order and scored by range.ts scoreOf.
 */
export function typedScoresF64(
  p: Params, head: i32, slot: i32, rows: i32, rows4: i32, q: usize, qStride: usize, qpack: usize,
  cols8: i32, sBuf: usize, sStride: usize, scale: f32,
): void {
  const D = p.D, half = p.kType == DTYPE_FLOAT16;
  const kHead = p.k + <usize>head * <usize>kvHeadBytes(p, 0);
  const pairs = (D + 1) >> 1, nb = blocksOf(D);
  const kScale = p.kScales + <usize>head * <usize>kvHeadBytes(p, 2);
  for (let r = 0; r < rows; r++) {
    const q0 = queryAt(r, rows4, qpack, q, qStride, D);
    const qStep: usize = r < rows4 ? 16 : 4;
    for (let j = 0; j < cols8; j++) {
      const t = slot + j;
      // float16: super-panel t/32, line d, 8-key group (t & 24), lane halfSlot(t & 7) (kvcache.ts writeKey);
      // int8: super-panel t/32, channel pair d/2, key t & 31; scale of block d/32 at t's place.
      const k0 = half
        ? kHead + (<usize>(t >> 5) * <usize>D << 6) + (<usize>(t & 24) << 1) + (<usize>halfSlot(t & 7) << 1)
        : kHead + (<usize>(t >> 5) * <usize>pairs << 6) + (<usize>(t & 31) << 1);
      const s0 = kScale + (<usize>(t >> 5) * <usize>nb << 7) + (<usize>(t & 31) << 2);
      let qa = q0;
      let dot: f64 = 0;
      for (let d = 0; d < D; d++) {
        const k: f64 = half
          ? <f64>halfToF32(load<u16>(k0 + (<usize>d << 6)))
          : <f64>load<i8>(k0 + (<usize>(d >> 1) << 6) + <usize>(d & 1)) * <f64>load<f32>(s0 + (<usize>(d >> 5) << 7));
        dot += <f64>load<f32>(qa) * k;
        qa += qStep;
      }
      store<f32>(sBuf + <usize>r * sStride + (<usize>j << 2), scoreOf(dot, scale));
    }
  }
}
