// The resident KV cache's layout and its appends. Per (cache row, kv head) — a "head" — the cache has M slots
// (M = params.capacity, a multiple of 8, of 32 for float16 and int8); the token at position t lives in slot
// t mod M, so a cache that keeps only the last M tokens (a rolling window) is the same layout with positions past
// M. Per dtype:
//   float32  keys   [M/8][D][8] f32 panels (what the flash loop's qk kernels stream)
//            values [M][ceil8(Dv)] f32 rows, zero-padded
//   float16  keys   [M/32][D][32] codes: per channel the 32 keys of a super-panel, in 8-key groups of halfSlot
//                   order (convert.ts), so a 1×32 score kernel streams one 64-byte line per channel (4 panels
//                   read side by side measured 2.6× slower than one stream)
//            values [chunks][M][w] codes: chunks of w = 16 channels of ceil8(Dv) (the last may be 8), each 8
//                   channels in halfSlot order, so the 1×16 value kernel streams a chunk contiguously, once
//   int8     keys   [M/32][ceil2(D)/2][32][2] i8: per pair of channels, 32 keys × 2 channels (dot_i16x8
//                   operands, 4 keys per 8 bytes); scales [M/32][ceil(D/32)][32] f32, one per token and block of
//                   32 channels
//            values [blocks][M/2][w][2] i8: per block of w = 32 channels (the last narrower) and pair of tokens,
//                   each channel's two values; scales [blocks][M] f32
// int8 is symmetric, q8_0-style: a block's scale is max|x| / 127 and x ↦ round-to-even(x / scale), |q| ≤ 127.
// Appending writes only the new tokens, converted row by row.
import { DTYPE_FLOAT16, DTYPE_FLOAT32, DTYPE_INT8, Params } from "./params.generated";
import { ceil8 } from "./pack";
import { f32ToCacheHalf, halfRowToF32, halfSlot } from "./convert";
import { maxFinite } from "./range";

/** Channels per int8 scale block. */
export const QBLOCK = 32;

// @ts-ignore: decorator
@inline export function blocksOf(dim: i32): i32 {
  return (dim + QBLOCK - 1) / QBLOCK;
}

/** Channels of value block b of an int8 cache: 32, the last ceil8(Dv) − 32b. */
// @ts-ignore: decorator
@inline export function chunkWidth(dv8: i32, b: i32): i32 {
  return min(QBLOCK, dv8 - b * QBLOCK);
}

/** Channels per value chunk of a float16 cache: one 32-byte row a key, which the 1×16 kernel reads whole. */
export const HALF_CHUNK = 16;

/** Where a head's max |k| lives, after its int8 key scales (`kScale`: the head's key scales). */
// @ts-ignore: decorator
@inline export function keyMaxAt(p: Params, kScale: usize): usize {
  return kScale + (p.kType == DTYPE_INT8 ? <usize>p.capacity * <usize>blocksOf(p.D) << 2 : 0);
}

/** Bytes of one head's keys (part 0), values (1), key scales (2) or value scales (3). */
export function kvHeadBytes(p: Params, part: i32): f64 {
  const M = <f64>p.capacity, D = p.D, dv8 = <f64>ceil8(p.Dv);
  const type = part == 0 || part == 2 ? p.kType : p.vType;
  // Key scales end with 16 bytes for max |k| over every finite key ever appended (keyMaxAt; range.ts).
  if (part >= 2) return (type == DTYPE_INT8 ? M * <f64>blocksOf(part == 2 ? D : p.Dv) * 4 : 0) + (part == 2 ? 16 : 0);
  const width = part == 0 ? <f64>(type == DTYPE_INT8 ? (D + 1) & ~1 : D) : dv8;
  return M * width * (type == DTYPE_FLOAT32 ? 4.0 : type == DTYPE_FLOAT16 ? 2.0 : 1.0);
}

/** Exported for the host: bytes of one head's part (see kvHeadBytes), so both sides use one layout. */
export function kvLayout(params: usize, part: i32): f64 {
  return kvHeadBytes(changetype<Params>(params), part);
}

/** Whether every one of n values at ptr (float32, or binary16 bits when half) is finite. */
function allFinite(ptr: usize, n: usize, half: bool): bool {
  let i: usize = 0;
  if (half) {
    for (; i < n; i++) if ((load<u16>(ptr + (i << 1)) & 0x7c00) == 0x7c00) return false;
    return true;
  }
  let bad = i32x4.splat(0);
  for (; i + 4 <= n; i += 4) {
    const x = v128.load(ptr + (i << 2));
    bad = v128.or(bad, f32x4.ne(f32x4.sub(x, x), f32x4.splat(0))); // x − x is NaN for ±∞ and NaN
  }
  for (; i < n; i++) if (!isFinite<f32>(load<f32>(ptr + (i << 2)))) return false;
  return !v128.any_true(bad);
}

/** One input row of `n` values (float32, or binary16 when half) as float32 at `tmp`; returns where it is. */
// @ts-ignore: decorator
@inline function rowAsF32(src: usize, n: i32, half: bool, tmp: usize): usize {
  if (!half) return src;
  halfRowToF32(src, n, tmp);
  return tmp;
}

/** int8 scale of x[from, to): max|x| / 127 (0 for a block of zeros). */
function blockScale(x: usize, from: i32, to: i32): f32 {
  let amax: f32 = 0;
  for (let d = from; d < to; d++) amax = max(amax, abs(load<f32>(x + (<usize>d << 2))));
  return amax / 127;
}

/** x quantized with `scale` (round to nearest even; a zero scale gives 0). */
// @ts-ignore: decorator
@inline function quantize(x: f32, scale: f32): i8 {
  return scale == 0 ? 0 : <i8>max(<f32>-127, min(<f32>127, nearest(x / scale)));
}

/** Writes key row x (D float32) as token `slot` of the head whose keys start at `kHead` (scales at kScale). */
function writeKey(p: Params, x: usize, slot: i32, kHead: usize, kScale: usize): void {
  const D = p.D, lane = slot & 7;
  // Over every finite key ever written, before rounding (a bound: also after a rolling cache overwrites a slot;
  // binary16 or int8 rounding can add a relative 2^−11, which range.ts dotsInRange allows for).
  const at = keyMaxAt(p, kScale);
  store<f32>(at, max(load<f32>(at), maxFinite(x, D)));
  if (p.kType == DTYPE_FLOAT32) {
    let dst = kHead + (<usize>(slot >> 3) * <usize>D << 5) + (<usize>lane << 2);
    for (let d = 0; d < D; d++) {
      store<f32>(dst, load<f32>(x + (<usize>d << 2)));
      dst += 32;
    }
  } else if (p.kType == DTYPE_FLOAT16) {
    let dst = kHead + (<usize>(slot >> 5) * <usize>D << 6) + (<usize>(slot & 24) << 1) + (<usize>halfSlot(lane) << 1);
    for (let d = 0; d < D; d++) {
      store<u16>(dst, f32ToCacheHalf(load<f32>(x + (<usize>d << 2))));
      dst += 64;
    }
  } else {
    const pairs = (D + 1) >> 1, nb = blocksOf(D);
    const panel = kHead + (<usize>(slot >> 5) * <usize>pairs << 6) + (<usize>(slot & 31) << 1);
    const scales = kScale + (<usize>(slot >> 5) * <usize>nb << 7) + (<usize>(slot & 31) << 2);
    for (let b = 0; b < nb; b++) {
      const from = b * QBLOCK, to = min(D, from + QBLOCK);
      const scale = blockScale(x, from, to);
      store<f32>(scales + (<usize>b << 7), scale);
      for (let d = from; d < to; d++) store<i8>(panel + (<usize>(d >> 1) << 6) + <usize>(d & 1), quantize(load<f32>(x + (<usize>d << 2)), scale));
    }
    if (D & 1) store<i8>(panel + (<usize>(D >> 1) << 6) + 1, 0);
  }
}

/** Writes value row x (Dv float32) as token `slot` of the head whose values start at `vHead`. */
function writeValue(p: Params, x: usize, slot: i32, vHead: usize, vScale: usize): void {
  const Dv = p.Dv, dv8 = ceil8(Dv);
  if (p.vType == DTYPE_FLOAT32) {
    const row = vHead + (<usize>slot * <usize>dv8 << 2);
    memory.copy(row, x, <usize>Dv << 2);
    if (dv8 != Dv) memory.fill(row + (<usize>Dv << 2), 0, <usize>(dv8 - Dv) << 2);
  } else if (p.vType == DTYPE_FLOAT16) {
    const M = p.capacity;
    for (let c = 0; c < dv8; c++) {
      const b = c >> 4, cc = c & 15;
      const row = vHead + (<usize>b * <usize>M << 5) + (<usize>slot * <usize>min(HALF_CHUNK, dv8 - (b << 4)) << 1);
      const code = c < Dv ? f32ToCacheHalf(load<f32>(x + (<usize>c << 2))) : 0;
      store<u16>(row + (<usize>(cc & ~7) << 1) + (<usize>halfSlot(cc & 7) << 1), code);
    }
  } else {
    const M = p.capacity, nb = blocksOf(Dv);
    for (let b = 0; b < nb; b++) {
      const from = b * QBLOCK, to = min(Dv, from + QBLOCK), w = chunkWidth(dv8, b);
      const pair = vHead + (<usize>b * <usize>M << 5) + (<usize>(slot >> 1) * <usize>w << 1) + <usize>(slot & 1);
      const scale = blockScale(x, from, to);
      store<f32>(vScale + (<usize>(b * M + slot) << 2), scale);
      for (let c = from; c < from + w; c++) {
        store<i8>(pair + (<usize>(c - from) << 1), c < to ? quantize(load<f32>(x + (<usize>c << 2)), scale) : 0);
      }
    }
  }
}

/**
 * Appends S new tokens per batch row: k (B,KVH,S,D) and v (B,KVH,S,Dv) — (B,S,KVH,·) when bshd — float32 or
 * binary16 (kInType, vInType). Batch row b goes to cache row cacheRows[b] (or b) at positions cachePositions[b] …
 * + S − 1 (slots mod capacity). `scratch` holds D + Dv floats. Returns 0, or before writing anything 1 (k) / 2 (v)
 * when a float16 or int8 cache would be given a NaN or ±∞.
 */
export function kvAppend(params: usize, scratch: usize): i32 {
  const p = changetype<Params>(params);
  const n = p.S, D = p.D, Dv = p.Dv, KVH = p.KVH, bshd = p.bshd != 0;
  const kHalf = p.kInType == DTYPE_FLOAT16, vHalf = p.vInType == DTYPE_FLOAT16;
  const count = <usize>p.B * <usize>KVH * <usize>n;
  if (p.kType != DTYPE_FLOAT32 && !allFinite(p.k, count * <usize>D, kHalf)) return 1;
  if (p.vType != DTYPE_FLOAT32 && !allFinite(p.v, count * <usize>Dv, vHalf)) return 2;
  const kBytes = <usize>kvHeadBytes(p, 0), vBytes = <usize>kvHeadBytes(p, 1);
  const kScaleBytes = <usize>kvHeadBytes(p, 2), vScaleBytes = <usize>kvHeadBytes(p, 3);
  const kElt: usize = kHalf ? 2 : 4, vElt: usize = vHalf ? 2 : 4;
  const M = p.capacity;
  for (let b = 0; b < p.B; b++) {
    const row = p.cacheRows != 0 ? load<i32>(p.cacheRows + (<usize>b << 2)) : b;
    const pos = load<i32>(p.cachePositions + (<usize>b << 2));
    for (let kvh = 0; kvh < KVH; kvh++) {
      const h = <usize>(row * KVH + kvh);
      const kHead = p.cacheK + h * kBytes, vHead = p.cacheV + h * vBytes;
      const kScale = p.kScales + h * kScaleBytes, vScale = p.vScales + h * vScaleBytes;
      // token t of (b, kv head): source row (b·KVH + kvh)·n + t, or (b·n + t)·KVH + kvh with bshd
      const src0 = bshd ? <usize>b * <usize>n * <usize>KVH + <usize>kvh : (<usize>b * <usize>KVH + <usize>kvh) * <usize>n;
      const step: usize = bshd ? <usize>KVH : 1;
      for (let t = 0; t < n; t++) {
        const src = src0 + <usize>t * step;
        const slot = (pos + t) % M;
        writeKey(p, rowAsF32(p.k + src * <usize>D * kElt, D, kHalf, scratch), slot, kHead, kScale);
        writeValue(p, rowAsF32(p.v + src * <usize>Dv * vElt, Dv, vHalf, scratch + (<usize>D << 2)), slot, vHead, vScale);
      }
    }
  }
  return 0;
}
