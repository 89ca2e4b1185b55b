// One block of query rows against its keys: the flash loop over key blocks of BC (or decode widths), with block-
// sparse skipping (key ranges no row admits, mask tiles that admit nothing), Q·Kᵀ into the score scratch, the score
// stage (four rows at a time where nothing is masked, the causal diagonal included), and P·V into the accumulator.
import { ACT_SOFTMAX1, BR, DTYPE_FLOAT16, MASK_NONE, Params } from "./params.generated";
import { softmaxRows4 } from "./score4";
import { ceil8, x32_packq_4 } from "./pack";
import { x16_packq_4 } from "./pack16";
import { f32ToHalf, halfRowToF32, storeHalves4 } from "./convert";
import { typedKeys, typedScores, typedScoresF64, typedValues, typedWeightedValues } from "./kvtypes";
import {
  BLOCK_STRIDE, f32_pv_1x32, f32_pv_1x8, f32_pv_4x8, f32_pv_4x8b_n, f32_qk_1x32, f32_qk_1x8, f32_qk_4x8p_n,
} from "./gemm";
import { dotsInRange, f32_qk_1x1_f64, maxAbs, maxFinite, rowFinite, shiftWeights, sumsInRange, weightShift } from "./range";
import {
  TILE_EMPTY, TILE_FULL, alibiTable, keysOf, maskTile, normaliseAndStore, rowHi, rowLo, rowScale, startRows, weighRow,
} from "./score";

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
 * the block's first row (rows mRow elements apart). `head` ≥ 0: the keys and values are that head of a resident
 * cache, whose key j lives in slot j mod capacity (a key block never wraps around the end). `work`: the converter
 * table's scratch (kvtypes.ts typedScratchBytes). kmax, vmax: max |k| and |v| over the finite keys and values
 * (range.ts; vmax +∞ where not known). A block whose output is not all finite is computed again with its weights
 * shifted (range.ts), unless its sums cannot have overflowed.
 */
export function attendBlock(
  p: Params, b: i32, h: i32, hStep: i32, q: usize, qStride: usize, out: usize, outStride: usize, rows: i32, qb: i32,
  kpack: usize, v: usize, vStride: usize, vPanel: usize, bw: i32, mask: usize, mRow: i32, maskElt: usize, weights: usize,
  sBuf: usize, acc: usize, rowState: usize, qpack: usize, bias: usize, head: i32, work: usize, kmax: f32, vmax: f32,
): void {
  // Pass 0, then at most one shifted pass (attendPass returns true from a shifted one).
  for (let shift = 0; ; shift = weightShift(keysOf(p, b))) {
    if (attendPass(
      p, b, h, hStep, q, qStride, out, outStride, rows, qb, kpack, v, vStride, vPanel, bw, mask, mRow, maskElt, weights,
      sBuf, acc, rowState, qpack, bias, head, work, kmax, shift,
    ) || sumsInRange(p.activation, keysOf(p, b), vmax)) return;
  }
}

/** One pass of attendBlock with weights times 2^−shift; returns whether every output is finite (shift 0). */
function attendPass(
  p: Params, b: i32, h: i32, hStep: i32, q: usize, qStride: usize, out: usize, outStride: usize, rows: i32, qb: i32,
  kpack: usize, v: usize, vStride: usize, vPanel: usize, bw: i32, mask: usize, mRow: i32, maskElt: usize, weights: usize,
  sBuf: usize, acc: usize, rowState: usize, qpack: usize, bias: usize, head: i32, work: usize, kmax: f32, shift: i32,
): bool {
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
  const rowEps = rowCorr + (<usize>BR << 2); // each row's weight factor exponent (score4.ts fusedRef)
  const rows4 = rows & ~3;
  startRows(p, h, hStep, rows, rowMax, rowSum, rowEps);
  memory.fill(acc, 0, <usize>rows * accStride);
  if (weights != 0) memory.fill(weights, 0, <usize>rows * <usize>S << 2);
  // The block's full 4-row groups, packed [D][4] once for all its key blocks; a binary16 q is decoded while
  // packing, its other rows to float32 rows after the packed ones.
  const halfQ = p.qType == DTYPE_FLOAT16;
  let qmax: f32 = 0; // max |q| of the block's rows (range.ts)
  for (let r = 0; r < rows4; r += 4) {
    if (halfQ) x16_packq_4(q + <usize>r * qStride, qStride, D, qpack + (<usize>r * <usize>D << 2));
    else qmax = max(qmax, x32_packq_4(q + <usize>r * qStride, qStride, D, qpack + (<usize>r * <usize>D << 2)));
  }
  if (halfQ) {
    qmax = maxAbs(qpack, rows4 * D);
    const left = qpack + (<usize>rows4 * <usize>D << 2);
    for (let r = rows4; r < rows; r++) halfRowToF32(q + <usize>r * qStride, D, left + (<usize>(r - rows4) * <usize>D << 2));
    q = left - (<usize>rows4 * <usize>D << 2); // row r at q + r·qStride, as for a float32 q
    qStride = <usize>D << 2;
  }
  const typedK = typedKeys(p), typedV = typedValues(p);
  // Scores in float64 where float32 terms could overflow (range.ts).
  for (let r = rows4; r < rows; r++) qmax = max(qmax, maxAbs(q + <usize>r * qStride, D));
  if (!isFinite<f32>(qmax)) {
    qmax = maxFinite(qpack, rows4 * D);
    for (let r = rows4; r < rows; r++) qmax = max(qmax, maxFinite(q + <usize>r * qStride, D));
  }
  const wideQK = !dotsInRange(D, qmax, kmax);
  // The score stage's multiplier: the wide kernels store scale·q·k, rounded once (so a q·k beyond FLT_MAX whose
  // scaled score is not is still that score).
  const scale: f32 = wideQK ? 1 : p.scale;
  const slots = head >= 0 ? p.capacity : 0x7fffffff;

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

    // Four-row groups with nothing to mask, bias or cap take the fast path (softmaxRows4) over the keys up to
    // their last row's limit (groupKeys: the causal diagonal computes only its lower half), else the general one.
    // Not with float16 / int8 values: the converter table's P·V takes every row over all `cols` keys.
    const fast = !typedV && tileMask == MASK_NONE && alibi == 0 && p.softcap == 0 && p.activation <= ACT_SOFTMAX1 && scale > 0;

    // s (rows, cols8) = q (rows, D) · kᵀ (D, cols8); float16 / int8 keys: every row by the converter table.
    let r = 0;
    if (typedK) {
      if (wideQK) typedScoresF64(p, head, slot, rows, rows4, q, qStride, qpack, cols8, sBuf, sStride, p.scale);
      else typedScores(p, head, slot, rows, rows4, q, qStride, qpack, cols8, sBuf, sStride, work);
      r = rows;
    } else if (wideQK) {
      f32_qk_1x1_f64(rows, rows4, qpack, q, qStride, D, kPanel, cols8, sBuf, sStride, p.scale);
      r = rows;
    }
    for (; r < rows4; r += 4) {
      const qr = qpack + (<usize>r * <usize>D << 2);
      const sr = sBuf + <usize>r * sStride;
      const g = fast ? groupKeys(p, r, rows, qb, iStep, off, keys, kb, cols, weights) : 0;
      const c8 = g > 0 ? ceil8(g) : cols8;
      f32_qk_4x8p_n(qr, kPanel, D, sr, sStride, c8 >> 3);
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
        softmaxRows4(sr, sStride, g4, scale, rowMax + ro, rowSum + ro, rowCorr + ro, rowEps + ro);
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
        p, b, sBuf + <usize>r * sStride, cols, rowLo(p, i, off) - kb, min(cols, rowHi(p, i, off, keys) - kb),
        rowBias, tileMask, mTile + <usize>r * <usize>mRow * maskElt, rowMax + ro, rowSum + ro, rowCorr + ro, rowEps + ro, scale,
      );
    }

    // With every key in one block the weights are final once divided by the row's denominator.
    if (weights != 0) normaliseAndStore(p, sBuf, sStride, rows, cols, rowMax, rowSum, rowCorr, weights + (<usize>kb << 2));

    // acc (rows, dv8) = acc · diag(corr) + p (rows, cols) · v (cols, dv8), p times 2^−shift in a second pass
    if (shift != 0) shiftWeights(sBuf, sStride, rows, cols, shift);
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
      // A fast group's weights past its keys are 0 (or were never computed): its product stops there.
      const g = fast ? groupKeys(p, r, rows, qb, iStep, off, keys, kb, cols, weights) : 0;
      const J = g > 0 ? min((g + 3) & ~3, cols) : cols;
      if (sStride == BLOCK_STRIDE) {
        f32_pv_4x8b_n(pr, vBlock, vPanel, vStride, J, ar, accStride, cr, dv8 >> 3);
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
  // out = acc / denominator (a second pass: times 2^shift). A row that admitted no key has acc = 0 and is written
  // as zeros (PyTorch ≥ 2.5, ONNX), never 0/0. A binary16 out is rounded to nearest even.
  const dv4 = Dv & ~3;
  const halfOut = p.outType == DTYPE_FLOAT16;
  const vup = f32x4.splat(reinterpret<f32>((127 + shift) << 23)), up = f32x4.extract_lane(vup, 0);
  let bad = f32x4.splat(0); // ORs y − y: +0 where y is finite, NaN bits for ±∞ and NaN
  for (let r = 0; r < rows; r++) {
    const inv = weights != 0 ? <f32>1 : rowScale(p, load<f32>(rowSum + (<usize>r << 2)), load<f32>(rowMax + (<usize>r << 2)));
    const vinv = f32x4.splat(inv);
    const ar = acc + <usize>r * accStride;
    const or = out + <usize>r * outStride;
    // The second pass rewrites only the rows the first left non-finite: a finite row did not overflow, and its
    // weights below 2^(shift − 126) would lose bits in the second (a NaN in one row must not change the others).
    if (shift != 0 && rowFinite(or, Dv, halfOut)) continue;
    let c = 0;
    for (; c < dv4; c += 4) {
      let y = f32x4.mul(v128.load(ar + (<usize>c << 2)), vinv);
      if (shift != 0) y = f32x4.mul(y, vup);
      bad = v128.or(bad, f32x4.sub(y, y));
      if (halfOut) storeHalves4(or + (<usize>c << 1), y);
      else v128.store(or + (<usize>c << 2), y);
    }
    for (; c < Dv; c++) {
      let y = load<f32>(ar + (<usize>c << 2)) * inv;
      if (shift != 0) y *= up;
      bad = v128.or(bad, f32x4.splat(y - y));
      if (halfOut) store<u16>(or + (<usize>c << 1), f32ToHalf(y));
      else store<f32>(or + (<usize>c << 2), y);
    }
  }
  return shift != 0 || !v128.any_true(bad);
}
