// The flash-attention driver. A call is a list of work items, one per (batch, query head, block of BR query
// rows); `attention` runs a range of them, so threads share a call by claiming items. For each block we sweep
// the keys in blocks of BC: scores go to a BR×BC scratch, the score stage (score.ts) turns them into weights
// against a running row max, and they are multiplied straight into a BR×Dv accumulator. Extra memory is O(S·D)
// for the packed keys plus O(BR·(BC + Dv)); the seqQ × seqK score matrix exists only when the caller asks for
// the weights.
import { ACT_SOFTMAX1, BC, BR, MASK_BOOL_U8, MASK_NONE, Params } from "./params.generated";
import { softmaxRows4 } from "./score4";
import { ceil8, x32_packk_8, x32_packq_4, x32_packv_8, x32_padv_8 } from "./pack";
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
  const values = !resident && ((Dv & 7) != 0 || panelValues(p)) ? <f64>S * dv8 : 0.0;
  const R = <f64>blockRows(p); // one query row needs one row of scores, not BR
  const block = scoreFloats(p) + R * dv8 + <f64>(3 * BR) + R * <f64>D;
  return 4.0 * (keys + values + block + <f64>biasLength(p));
}

/**
 * Whether values are packed into 8-column panels [ceil8(Dv)/8][S][8] (x32_packv_8) rather than read as rows: then
 * an f32-pv tile streams 32 contiguous bytes per key instead of touching a new cache line of a full value row for
 * each (PV at 83 % of peak on S3 with rows). Calls of at least PANEL_V_ROWS query rows, so the pack is paid back.
 */
// @ts-ignore: decorator
@inline function panelValues(p: Params): bool {
  return p.resident == 0 && p.L >= PANEL_V_ROWS;
}
const PANEL_V_ROWS = 16;

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
  const panelV = panelValues(p);
  const padV = !resident && !panelV && (Dv & 7) != 0;
  const R = <usize>blockRows(p); // rows of the largest block (scratchBytes)
  const sBuf = vpad + (padV || panelV ? <usize>S * <usize>dv8 << 2 : 0);
  const acc = sBuf + (<usize>scoreFloats(p) << 2); // fits: the host reserved scratchBytes
  const rowState = acc + (R * <usize>dv8 << 2);
  const qpack = rowState + (<usize>(3 * BR) << 2);
  const bias = qpack + (R * <usize>D << 2);
  // Row strides in bytes: (B, seq, heads, dim) rows of one head are `heads` rows apart.
  const qStride = <usize>(bshd ? H * D : D) << 2;
  const oStride = <usize>(bshd ? H * Dv : Dv) << 2;
  const kStride = <usize>(bshd && !resident ? KVH * D : D) << 2;
  const vRowStride = <usize>(bshd && !resident ? KVH * Dv : Dv) << 2;
  const vStride: usize = panelV ? 32 : padV || resident ? <usize>dv8 << 2 : vRowStride;
  const vPanel: usize = panelV ? <usize>S << 5 : 32; // bytes between 8-column groups of values
  const capacity = p.capacity;
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
    if (resident) {
      kSrc = p.k + <usize>kvIndex * (<usize>ceil8(capacity) * <usize>D << 2);
      vSrc = p.v + <usize>kvIndex * (<usize>capacity * <usize>dv8 << 2);
    } else {
      // First key row of (b, kv head): (B, KVH, S, ·), or (B, S, KVH, ·) with bshd.
      const kvRow0 = bshd ? <usize>b * <usize>S * <usize>KVH + <usize>kvh : <usize>kvIndex * <usize>S;
      kSrc = p.k + kvRow0 * (<usize>D << 2);
      vSrc = p.v + kvRow0 * (<usize>Dv << 2);
      // Items of one kv head are consecutive, so a thread packs each kv head it meets once per call.
      if (kvIndex != packedKv) {
        x32_packk_8(kSrc, kStride, S, D, kpack);
        if (panelV) x32_packv_8(vSrc, vRowStride, S, Dv, vpad);
        else if (padV) x32_padv_8(vSrc, vRowStride, S, Dv, vpad);
        packedKv = kvIndex;
      }
      kSrc = kpack;
      if (padV || panelV) vSrc = vpad;
    }
    const rows = grouping ? min(BR, group - inner) : min(BR, L - qb);
    const mask = p.mask + (<usize>b * <usize>p.msB + <usize>h * <usize>p.msH + <usize>qb * <usize>p.msL) * maskElt;
    const row0 = <usize>headIndex * <usize>L + <usize>qb; // (B,H,L) row of the block's first query
    // Its first q / out row: (B, H, L, ·), or (B, L, H, ·) with bshd. Grouped (L = 1), the heads' rows are
    // consecutive in both layouts.
    const ioRow0 = bshd ? (<usize>b * <usize>L + <usize>qb) * <usize>H + <usize>h : row0;
    attendBlock(
      p, b, h, grouping ? 1 : 0, p.q + ioRow0 * (<usize>D << 2), grouping ? <usize>D << 2 : qStride,
      p.out + ioRow0 * (<usize>Dv << 2), grouping ? <usize>Dv << 2 : oStride, rows, qb,
      kSrc, vSrc, vStride, vPanel, (rows < 4 || grouping) && weights == 0 ? decodeWidth(S, rows) : bw,
      mask, grouping ? p.msH : p.msL, maskElt, weights != 0 ? weights + (row0 * <usize>S << 2) : 0,
      sBuf, acc, rowState, qpack, bias,
    );
  }
}

/**
 * Keys of a key block (at kb, cols keys) that the four-row group from block row r computes on the fast path: its
 * last row's limit (rows' limits only grow with the row), ≥ 1; or 0 for the general path: fewer than four rows left,
 * a window starting inside the block, no key admitted, or — in weights mode, where every key of the block is
 * written — a row that does not admit the whole block. Only for blocks `fast` allows (no mask, bias or cap).
 */
// @ts-ignore: decorator
@inline function groupKeys(p: Params, r: i32, rows: i32, qb: i32, iStep: i32, off: i32, keys: i32, kb: i32, cols: i32, weights: usize): i32 {
  if (r + 4 > rows) return 0;
  const last = qb + (r + 3) * iStep;
  if (rowLo(p, last, off) > kb) return 0;
  if (weights != 0) return rowHi(p, qb + r * iStep, off, keys) - kb >= cols ? cols : 0;
  return max(0, min(cols, rowHi(p, last, off, keys) - kb));
}

/**
 * One block of `rows` query rows of batch row b against its keys. Row r is query qb + r of head h, or with
 * hStep = 1 (grouped decode) query qb of head h + r. q and out point at the block's first row (rows qStride /
 * oStride bytes apart), kpack at the kv head's packed key panels, v at its values (rows vStride apart, 8-column
 * groups vPanel apart: 32 for value rows, S·32 for panels), mask at
 * the block's first row (rows mRow elements apart).
 */
function attendBlock(
  p: Params, b: i32, h: i32, hStep: i32, q: usize, qStride: usize, out: usize, outStride: usize, rows: i32, qb: i32,
  kpack: usize, v: usize, vStride: usize, vPanel: usize, bw: i32, mask: usize, mRow: i32, maskElt: usize, weights: usize,
  sBuf: usize, acc: usize, rowState: usize, qpack: usize, bias: usize,
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
  // The block's full 4-row groups, packed [D][4] once for all its key blocks.
  for (let r = 0; r < rows4; r += 4) x32_packq_4(q + <usize>r * qStride, qStride, D, qpack + (<usize>r * <usize>D << 2));

  // Keys outside [first row's lo, last row's hi) are admissible for no row of the block: whole key blocks are
  // skipped (key lengths, causal, window). The start is rounded down to the 8-key panel.
  const kend = max(0, rowHi(p, qb + (rows - 1) * iStep, off, keys));
  const kstart = min(rowLo(p, qb, off), kend) & ~7;

  for (let kb = kstart; kb < kend; kb += bw) {
    const cols = min(bw, kend - kb);
    const cols8 = ceil8(cols);
    const kPanel = kpack + (<usize>kb * <usize>D << 2);
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

    // Four-row groups with nothing to mask, bias or cap take the fast path (softmaxRows4) over the keys up to
    // their last row's limit (groupKeys: the causal diagonal computes only its lower half), else the general one.
    const fast = tileMask == MASK_NONE && alibi == 0 && p.softcap == 0 && p.activation <= ACT_SOFTMAX1 && p.scale > 0;

    // s (rows, cols8) = q (rows, D) · kᵀ (D, cols8)
    let r = 0;
    for (; r < rows4; r += 4) {
      const qr = qpack + (<usize>r * <usize>D << 2);
      const sr = sBuf + <usize>r * sStride;
      const g = fast ? groupKeys(p, r, rows, qb, iStep, off, keys, kb, cols, weights) : 0;
      const c8 = g > 0 ? ceil8(g) : cols8;
      for (let c = 0; c < c8; c += 8) {
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

    // Scores -> weights, updating each row's running max and sum. A fast group's keys past a row's own limit
    // (and past the block, up to a multiple of 4: ViT's 197 = 128 + 69) get −∞ scores: weight 0, as if absent.
    for (r = 0; r < rows; r++) {
      const i = qb + r * iStep;
      const ro = <usize>r << 2;
      const g = fast && (r & 3) == 0 ? groupKeys(p, r, rows, qb, iStep, off, keys, kb, cols, weights) : 0;
      if (g > 0) {
        const sr = sBuf + <usize>r * sStride;
        const g4 = (g + 3) & ~3;
        for (let t = 0; t < 4; t++) {
          const own = min(g, max(0, rowHi(p, i + t * iStep, off, keys) - kb));
          for (let j = own; j < g4; j++) store<f32>(sr + <usize>t * sStride + (<usize>j << 2), -Infinity);
        }
        softmaxRows4(sr, sStride, g4, p.scale, rowMax + ro, rowSum + ro, rowCorr + ro);
        r += 3;
        continue;
      }
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
    const vBlock = v + <usize>kb * vStride;
    for (r = 0; r < rows4; r += 4) {
      const pr = sBuf + <usize>r * sStride;
      const ar = acc + <usize>r * accStride;
      const cr = rowCorr + (<usize>r << 2);
      // A fast group's weights past its keys are 0 (or were never computed): its product stops there.
      const g = fast ? groupKeys(p, r, rows, qb, iStep, off, keys, kb, cols, weights) : 0;
      const J = g > 0 ? min((g + 3) & ~3, cols) : cols;
      if (sStride == BLOCK_STRIDE) {
        for (let c = 0; c < dv8; c += 8) f32_pv_4x8b(pr, vBlock + (<usize>c >> 3) * vPanel, vStride, J, ar + (<usize>c << 2), accStride, cr);
      } else {
        for (let c = 0; c < dv8; c += 8) f32_pv_4x8(pr, sStride, vBlock + (<usize>c >> 3) * vPanel, vStride, J, ar + (<usize>c << 2), accStride, cr);
      }
    }
    for (; r < rows; r++) {
      const pr = sBuf + <usize>r * sStride;
      const ar = acc + <usize>r * accStride;
      const cr = rowCorr + (<usize>r << 2);
      let c = 0;
      if (vPanel == 32) for (; c + 32 <= dv8; c += 32) f32_pv_1x32(pr, vBlock + (<usize>c << 2), vStride, cols, ar + (<usize>c << 2), cr);
      for (; c < dv8; c += 8) f32_pv_1x8(pr, vBlock + (<usize>c >> 3) * vPanel, vStride, cols, ar + (<usize>c << 2), cr);
    }
  }
  // out = acc / denominator. A row that admitted no key has acc = 0 and is written as zeros
  // (PyTorch ≥ 2.5, ONNX), never 0/0.
  const dv4 = Dv & ~3;
  for (let r = 0; r < rows; r++) {
    const inv = weights != 0 ? <f32>1 : rowScale(p, load<f32>(rowSum + (<usize>r << 2)), load<f32>(rowMax + (<usize>r << 2)));
    const vinv = f32x4.splat(inv);
    const ar = acc + <usize>r * accStride;
    const or = out + <usize>r * outStride;
    let c = 0;
    for (; c < dv4; c += 4) {
      v128.store(or + (<usize>c << 2), f32x4.mul(v128.load(ar + (<usize>c << 2)), vinv));
    }
    for (; c < Dv; c++) {
      store<f32>(or + (<usize>c << 2), load<f32>(ar + (<usize>c << 2)) * inv);
    }
  }
}
