// The flash-attention driver. A call is a list of work items, one per (batch, query head, block of BR query
// rows); `attention` runs a range of them, so threads share a call by claiming items. For each block we sweep
// the keys in blocks of BC: scores go to a BR×BC scratch, the score stage (score.ts) turns them into weights
// against a running row max, and they are multiplied straight into a BR×Dv accumulator. Extra memory is O(S·D)
// for the packed keys plus O(BR·(BC + Dv)); the seqQ × seqK score matrix exists only when the caller asks for
// the weights.
import { BC, BR, DTYPE_FLOAT16, MASK_BOOL_U8, MASK_NONE, Params } from "./params.generated";
import { ceil8, x32_packk_8, x32_packq_4, x32_padv_8 } from "./pack";
import { x16_packk_8, x16_packq_4, x16_padv_8 } from "./pack16";
import { f32ToHalf, halfRowToF32, storeHalves4 } from "./convert";
import { kvHeadBytes } from "./kvcache";
import { typedKeys, typedScores, typedScratchBytes, typedValues, typedWeightedValues } from "./kvtypes";
import {
  BLOCK_STRIDE, f32_pv_1x32, f32_pv_1x8, f32_pv_4x8, f32_pv_4x8b, f32_qk_1x32, f32_qk_1x8, f32_qk_4x8p,
} from "./gemm";
import {
  TILE_EMPTY, TILE_FULL, alibiTable, keysOf, maskTile, normaliseAndStore, rowHi, rowLo, rowScale, startRows, weighRow,
} from "./score";

/** Bytes of scratch one thread needs for a call, as f64 so huge shapes report a size instead of wrapping. */
export function scratchBytes(params: usize): f64 {
  const p = changetype<Params>(params);
  const S = p.S, D = p.D, Dv = p.Dv, resident = p.resident != 0;
  const dv8 = <f64>ceil8(Dv);
  const keys = resident ? 0.0 : <f64>ceil8(S) * <f64>D;
  const values = padsValues(p) ? <f64>S * dv8 : 0.0;
  const R = <f64>blockRows(p); // one query row needs one row of scores, not BR
  const block = scoreFloats(p) + R * dv8 + <f64>(3 * BR) + R * <f64>D;
  return 4.0 * (keys + values + block + <f64>biasLength(p)) + typedScratchBytes(p);
}

/** Whether v is copied to padded float32 rows: Dv not a multiple of 8, or a float16 tensor (decoded there). */
// @ts-ignore: decorator
@inline function padsValues(p: Params): bool {
  return p.resident == 0 && ((p.Dv & 7) != 0 || p.vInType == DTYPE_FLOAT16);
}

/**
 * Keys per block for a block of fewer than 4 query rows (decode), or a grouped decode block: as many as the BR×BC
 * score scratch holds for them (BR·BC / rows, rounded down to 64), up to every key. Decode streams the whole KV cache once; 64-key blocks
 * spent a third of a step on per-block work (S4 step 10.4 → 7.6 ms in an interleaved A/B).
 */
// @ts-ignore: decorator
@inline function decodeWidth(S: i32, rows: i32): i32 {
  return min(ceil8(S), ((BR * BC) / rows) & ~63);
}

/**
 * Floats of the score block: rows × keys per block for the largest block (min(BR, L) rows), and for blocks of
 * fewer than 4 rows their decode width × rows (≤ BR·BC) — such a block also ends any L that is not a multiple of BR.
 */
// @ts-ignore: decorator
@inline function scoreFloats(p: Params): f64 {
  const R = <f64>blockRows(p), S8 = <f64>ceil8(p.S); // f64: huge shapes must report a size, not wrap
  if (p.returnWeights != 0) return R * S8;
  return max(R * <f64>BC, min(R * S8, <f64>(BR * BC)));
}

/** Keys per block: BC, or every key at once when the caller wants the normalised weights. */
// @ts-ignore: decorator
@inline function blockWidth(p: Params): i32 {
  return p.returnWeights != 0 ? ceil8(p.S) : BC;
}

/** Floats of the ALiBi table: one block's rows + keys (the widest block: decode's, or every key), 4-padded. */
// @ts-ignore: decorator
@inline function biasLength(p: Params): i32 {
  return p.alibi != 0 ? BR + max(blockWidth(p), min(ceil8(p.S), BR * BC)) + 4 : 0;
}

/**
 * Grouped decode: with one query row and GQA/MQA, the query heads that share a kv head are the rows of one block,
 * so the cache is streamed once per kv head instead of once per query head (FlashDecoding's trick; ×4 less
 * traffic for Llama 3's 32/8 heads). Row r of such a block is query head h0 + r, all at query index 0.
 */
// @ts-ignore: decorator
@inline function grouped(p: Params): bool {
  return p.L == 1 && p.H > p.KVH && p.returnWeights == 0;
}

/** Rows of the largest block: min(BR, L), or min(BR, heads per kv head) when grouped. */
// @ts-ignore: decorator
@inline function blockRows(p: Params): i32 {
  return min(BR, grouped(p) ? p.H / p.KVH : p.L);
}

/** Work items of a call: one per (batch, query head, block of BR query rows); grouped: per (batch, kv head, block of BR heads). */
export function workItems(params: usize): i32 {
  const p = changetype<Params>(params);
  if (grouped(p)) return p.B * p.KVH * ((p.H / p.KVH + BR - 1) / BR);
  return p.B * p.H * ((p.L + BR - 1) / BR);
}

/** Which (batch, kv head) has its keys (and padded values) in this instance's scratch, or −1. */
let packedKv: i32 = -1;

/**
 * Runs work items first … first + count − 1 of the call described by the parameter block at `params` (item =
 * (b·H + h)·⌈L/BR⌉ + query block). One call with every item is the whole attention; threads share a call's
 * items, each instance with its own `scratch`. fresh != 0 says the inputs are new (a new call): keys packed by an
 * earlier call of this instance are not reused. A row with no admissible key is written as zeros.
 */
export function attention(first: i32, count: i32, fresh: i32, params: usize, scratch: usize): void {
  const p = changetype<Params>(params);
  const H = p.H, KVH = p.KVH, L = p.L, S = p.S, D = p.D, Dv = p.Dv;
  const resident = p.resident != 0;
  const bshd = p.bshd != 0;
  const dv8 = ceil8(Dv);
  const bw = blockWidth(p);
  const kpack = scratch;
  const vpad = kpack + (resident ? 0 : <usize>ceil8(S) * <usize>D << 2);
  const padV = padsValues(p);
  const R = <usize>blockRows(p); // rows of the largest block (scratchBytes)
  const sBuf = vpad + (padV ? <usize>S * <usize>dv8 << 2 : 0);
  const acc = sBuf + (<usize>scoreFloats(p) << 2); // fits: the host reserved scratchBytes
  const rowState = acc + (R * <usize>dv8 << 2);
  const qpack = rowState + (<usize>(3 * BR) << 2);
  const bias = qpack + (R * <usize>D << 2);
  // Element sizes (float32, or binary16 tensors) and row strides in bytes: (B, seq, heads, dim) rows of one
  // head are `heads` rows apart.
  const qElt: usize = p.qType == DTYPE_FLOAT16 ? 2 : 4, oElt: usize = p.outType == DTYPE_FLOAT16 ? 2 : 4;
  const kElt: usize = p.kInType == DTYPE_FLOAT16 ? 2 : 4, vElt: usize = p.vInType == DTYPE_FLOAT16 ? 2 : 4;
  const qStride = <usize>(bshd ? H * D : D) * qElt;
  const oStride = <usize>(bshd ? H * Dv : Dv) * oElt;
  const kStride = <usize>(bshd && !resident ? KVH * D : D) * kElt;
  const vRowStride = <usize>(bshd && !resident ? KVH * Dv : Dv) * vElt;
  const vStride = padV || resident ? <usize>dv8 << 2 : vRowStride;
  const group = H / KVH;
  const grouping = grouped(p);
  const blocks = grouping ? (group + BR - 1) / BR : (L + BR - 1) / BR;
  const weights = p.returnWeights != 0 ? p.weights : 0;
  const maskElt: usize = p.maskKind == MASK_BOOL_U8 ? 1 : 4;
  if (fresh != 0) packedKv = -1;

  for (let item = first; item < first + count; item++) {
    // item = (b·H + h)·blocks + query block, or grouped (b·KVH + kv head)·blocks + head block
    const outer = item / blocks;
    const inner = (item - outer * blocks) * BR;
    const b = outer / (grouping ? KVH : H);
    const h = grouping ? (outer - b * KVH) * group + inner : outer - b * H; // the block's first query head
    const qb = grouping ? 0 : inner;
    const headIndex = b * H + h;
    const kvh = h / group;
    const kvIndex = b * KVH + kvh;
    let kSrc: usize, vSrc: usize;
    let head = -1;
    if (resident) {
      // The cache head: batch row b reads cache row cacheRows[b] (ragged batches), else row b.
      head = (p.cacheRows != 0 ? load<i32>(p.cacheRows + (<usize>b << 2)) : b) * KVH + kvh;
      kSrc = p.k + <usize>head * <usize>kvHeadBytes(p, 0);
      vSrc = p.v + <usize>head * <usize>kvHeadBytes(p, 1);
    } else {
      // First key row of (b, kv head): (B, KVH, S, ·), or (B, S, KVH, ·) with bshd.
      const kvRow0 = bshd ? <usize>b * <usize>S * <usize>KVH + <usize>kvh : <usize>kvIndex * <usize>S;
      kSrc = p.k + kvRow0 * <usize>D * kElt;
      vSrc = p.v + kvRow0 * <usize>Dv * vElt;
      // Items of one kv head are consecutive, so a thread packs each kv head it meets once per call; a binary16
      // k or v is decoded while packing.
      if (kvIndex != packedKv) {
        if (kElt == 2) x16_packk_8(kSrc, kStride, S, D, kpack);
        else x32_packk_8(kSrc, kStride, S, D, kpack);
        if (padV) {
          if (vElt == 2) x16_padv_8(vSrc, vRowStride, S, Dv, vpad);
          else x32_padv_8(vSrc, vRowStride, S, Dv, vpad);
        }
        packedKv = kvIndex;
      }
      kSrc = kpack;
      if (padV) vSrc = vpad;
    }
    const rows = grouping ? min(BR, group - inner) : min(BR, L - qb);
    const mask = p.mask + (<usize>b * <usize>p.msB + <usize>h * <usize>p.msH + <usize>qb * <usize>p.msL) * maskElt;
    const row0 = <usize>headIndex * <usize>L + <usize>qb; // (B,H,L) row of the block's first query
    // Its first q / out row: (B, H, L, ·), or (B, L, H, ·) with bshd. Grouped (L = 1), the heads' rows are
    // consecutive in both layouts.
    const ioRow0 = bshd ? (<usize>b * <usize>L + <usize>qb) * <usize>H + <usize>h : row0;
    attendBlock(
      p, b, h, grouping ? 1 : 0, p.q + ioRow0 * <usize>D * qElt, grouping ? <usize>D * qElt : qStride,
      p.out + ioRow0 * <usize>Dv * oElt, grouping ? <usize>Dv * oElt : oStride, rows, qb,
      kSrc, vSrc, vStride, (rows < 4 || grouping) && weights == 0 ? decodeWidth(S, rows) : bw,
      mask, grouping ? p.msH : p.msL, maskElt, weights != 0 ? weights + (row0 * <usize>S << 2) : 0,
      sBuf, acc, rowState, qpack, bias, head,
    );
  }
}

/**
 * One block of `rows` query rows of batch row b against its keys. Row r is query qb + r of head h, or with
 * hStep = 1 (grouped decode) query qb of head h + r. q and out point at the block's first row (rows qStride /
 * oStride bytes apart), kpack at the kv head's packed key panels, v at its value rows (vStride apart), mask at
 * the block's first row (rows mRow elements apart). `head` ≥ 0: the keys and values are that head of a resident
 * cache, whose key j lives in slot j mod capacity (a key block never wraps around the end).
 */
function attendBlock(
  p: Params, b: i32, h: i32, hStep: i32, q: usize, qStride: usize, out: usize, outStride: usize, rows: i32, qb: i32,
  kpack: usize, v: usize, vStride: usize, bw: i32, mask: usize, mRow: i32, maskElt: usize, weights: usize,
  sBuf: usize, acc: usize, rowState: usize, qpack: usize, bias: usize, head: i32,
): void {
  const S = p.S, L = p.L, D = p.D, Dv = p.Dv, dv8 = ceil8(Dv);
  const keys = keysOf(p, b);
  const off = keys - L;
  const iStep = 1 - hStep; // row r is query qb + r·iStep of head h + r·hStep
  const alibi = p.alibi;
  const slope: f32 = alibi != 0 ? load<f32>(alibi + (<usize>h << 2)) : 0;
  const maskKind = p.maskKind;
  const msS = p.msS;
  const sStride = <usize>bw << 2;
  const accStride = <usize>dv8 << 2;
  const rowMax = rowState;
  const rowSum = rowState + (<usize>BR << 2);
  const rowCorr = rowSum + (<usize>BR << 2);
  const rows4 = rows & ~3;
  startRows(p, h, hStep, rows, rowMax, rowSum);
  memory.fill(acc, 0, <usize>rows * accStride);
  if (weights != 0) memory.fill(weights, 0, <usize>rows * <usize>S << 2);
  // The block's full 4-row groups, packed [D][4] once for all its key blocks; a binary16 q is decoded while
  // packing, its other rows to float32 rows after the packed ones.
  const halfQ = p.qType == DTYPE_FLOAT16;
  for (let r = 0; r < rows4; r += 4) {
    if (halfQ) x16_packq_4(q + <usize>r * qStride, qStride, D, qpack + (<usize>r * <usize>D << 2));
    else x32_packq_4(q + <usize>r * qStride, qStride, D, qpack + (<usize>r * <usize>D << 2));
  }
  if (halfQ) {
    const left = qpack + (<usize>rows4 * <usize>D << 2);
    for (let r = rows4; r < rows; r++) halfRowToF32(q + <usize>r * qStride, D, left + (<usize>(r - rows4) * <usize>D << 2));
    q = left - (<usize>rows4 * <usize>D << 2); // row r at q + r·qStride, as for a float32 q
    qStride = <usize>D << 2;
  }
  const typedK = typedKeys(p), typedV = typedValues(p);
  const slots = head >= 0 ? p.capacity : 0x7fffffff;
  const work = bias + (<usize>biasLength(p) << 2); // the converter table's scratch

  // Keys outside [first row's lo, last row's hi) are admissible for no row of the block: whole key blocks are
  // skipped (key lengths, causal, window). The start is rounded down to the 8-key panel.
  const kend = max(0, rowHi(p, qb + (rows - 1) * iStep, off, keys));
  const kstart = min(rowLo(p, qb, off), kend) & (typedK ? ~31 : ~7); // float16 / int8 keys: 32-key super-panels

  for (let kb = kstart, cols = 0; kb < kend; kb += cols) {
    const slot = kb % slots; // a resident cache's slot of key kb
    cols = min(min(bw, kend - kb), slots - slot);
    const cols8 = ceil8(cols);
    const kPanel = kpack + (<usize>slot * <usize>D << 2);
    const mTile = mask + <usize>kb * <usize>msS * maskElt;
    // A mask tile that admits nothing contributes nothing (skipped: weights mode keeps its one block); one that
    // admits every key is computed as unmasked.
    let tileMask = maskKind;
    if (maskKind != MASK_NONE) {
      const tile = maskTile(p, mTile, mRow, rows, cols);
      if (tile == TILE_EMPTY && weights == 0) continue;
      if (tile == TILE_FULL) tileMask = MASK_NONE;
    }
    // ALiBi: −slope·|j − (i + off)| for every row and key of the block, from one table (row r reads it at
    // rows − 1 − r); grouped rows differ in slope, not in position: one table row each, below.
    if (slope != 0 && hStep == 0) alibiTable(bias, slope, kb - (qb + rows - 1 + off), rows + cols8);

    // s (rows, cols8) = q (rows, D) · kᵀ (D, cols8)
    let r = 0;
    if (typedK) {
      typedScores(p, head, slot, rows, rows4, q, qStride, qpack, cols8, sBuf, sStride, work);
      r = rows;
    }
    for (; r < rows4; r += 4) {
      const qr = qpack + (<usize>r * <usize>D << 2);
      const sr = sBuf + <usize>r * sStride;
      for (let c = 0; c < cols8; c += 8) {
        f32_qk_4x8p(qr, kPanel + (<usize>c * <usize>D << 2), D, sr + (<usize>c << 2), sStride);
      }
    }
    for (; r < rows; r++) {
      const qr = q + <usize>r * qStride;
      const sr = sBuf + <usize>r * sStride;
      let c = 0;
      for (; c + 32 <= cols8; c += 32) {
        f32_qk_1x32(qr, kPanel + (<usize>c * <usize>D << 2), <usize>D << 5, D, sr + (<usize>c << 2));
      }
      for (; c < cols8; c += 8) {
        f32_qk_1x8(qr, kPanel + (<usize>c * <usize>D << 2), D, sr + (<usize>c << 2));
      }
    }

    // Scores -> weights, updating each row's running max and sum.
    for (r = 0; r < rows; r++) {
      const i = qb + r * iStep;
      const ro = <usize>r << 2;
      let rowBias: usize = 0;
      if (alibi != 0 && hStep != 0) {
        const slopeR = load<f32>(alibi + (<usize>(h + r) << 2));
        if (slopeR != 0) alibiTable(rowBias = bias, slopeR, kb - (i + off), cols8);
      } else if (slope != 0) {
        rowBias = bias + (<usize>(rows - 1 - r) << 2);
      }
      weighRow(
        p, sBuf + <usize>r * sStride, cols, rowLo(p, i, off) - kb, min(cols, rowHi(p, i, off, keys) - kb),
        rowBias, tileMask, mTile + <usize>r * <usize>mRow * maskElt, rowMax + ro, rowSum + ro, rowCorr + ro,
      );
    }

    // With every key in one block the weights are final once divided by the row's denominator.
    if (weights != 0) normaliseAndStore(p, sBuf, sStride, rows, cols, rowMax, rowSum, rowCorr, weights + (<usize>kb << 2));

    // acc (rows, dv8) = acc · diag(corr) + p (rows, cols) · v (cols, dv8)
    const vBlock = v + <usize>slot * vStride;
    r = 0;
    if (typedV) {
      typedWeightedValues(p, head, slot, rows, rows4, sBuf, sStride, cols, acc, accStride, rowCorr, work);
      r = rows;
    }
    for (; r < rows4; r += 4) {
      const pr = sBuf + <usize>r * sStride;
      const ar = acc + <usize>r * accStride;
      const cr = rowCorr + (<usize>r << 2);
      if (sStride == BLOCK_STRIDE) {
        for (let c = 0; c < dv8; c += 8) f32_pv_4x8b(pr, vBlock + (<usize>c << 2), vStride, cols, ar + (<usize>c << 2), accStride, cr);
      } else {
        for (let c = 0; c < dv8; c += 8) f32_pv_4x8(pr, sStride, vBlock + (<usize>c << 2), vStride, cols, ar + (<usize>c << 2), accStride, cr);
      }
    }
    for (; r < rows; r++) {
      const pr = sBuf + <usize>r * sStride;
      const ar = acc + <usize>r * accStride;
      const cr = rowCorr + (<usize>r << 2);
      let c = 0;
      for (; c + 32 <= dv8; c += 32) f32_pv_1x32(pr, vBlock + (<usize>c << 2), vStride, cols, ar + (<usize>c << 2), cr);
      for (; c < dv8; c += 8) f32_pv_1x8(pr, vBlock + (<usize>c << 2), vStride, cols, ar + (<usize>c << 2), cr);
    }
  }
  // out = acc / denominator. A row that admitted no key has acc = 0 and is written as zeros
  // (PyTorch ≥ 2.5, ONNX), never 0/0. A binary16 out is rounded to nearest even.
  const dv4 = Dv & ~3;
  const halfOut = p.outType == DTYPE_FLOAT16;
  for (let r = 0; r < rows; r++) {
    const inv = weights != 0 ? <f32>1 : rowScale(p, load<f32>(rowSum + (<usize>r << 2)), load<f32>(rowMax + (<usize>r << 2)));
    const vinv = f32x4.splat(inv);
    const ar = acc + <usize>r * accStride;
    const or = out + <usize>r * outStride;
    let c = 0;
    if (halfOut) {
      for (; c < dv4; c += 4) storeHalves4(or + (<usize>c << 1), f32x4.mul(v128.load(ar + (<usize>c << 2)), vinv));
      for (; c < Dv; c++) store<u16>(or + (<usize>c << 1), f32ToHalf(load<f32>(ar + (<usize>c << 2)) * inv));
      continue;
    }
    for (; c < dv4; c += 4) {
      v128.store(or + (<usize>c << 2), f32x4.mul(v128.load(ar + (<usize>c << 2)), vinv));
    }
    for (; c < Dv; c++) {
      store<f32>(or + (<usize>c << 2), load<f32>(ar + (<usize>c << 2)) * inv);
    }
  }
}
