// Fused scaled-dot-product attention with online ("flash") softmax.
// For each block of BR query rows we sweep the keys in blocks of BC: scores for the block go to a BR×BC
// scratch, are turned into unnormalised weights against a running row max, and are immediately multiplied
// into a BR×Dv accumulator. Extra memory is O(S·D) for the packed keys plus O(BR·(BC + Dv)); the full
// seqQ × seqK score matrix never exists.
import { EXP_TABLE, LANE_TABLE, hmax, hsum, sexp, vexp } from "./vmath";
import { ceil8, packKeys, padValues } from "./pack";
import { pv1x8, pv4x8, qk1x8, qk4x8 } from "./gemm";

/** Query rows per block (a multiple of the 4-row micro-tile). */
export const BR: i32 = 16;
/** Keys per block (a multiple of the 8-key panel). 16×64 scores plus a 64-key K/V slice stay in L1. */
export const BC: i32 = 64;

export const MASK_NONE: i32 = 0;
export const MASK_ADDITIVE_F32: i32 = 1;
export const MASK_BOOL_U8: i32 = 2;

const NEG_INF: f32 = -Infinity;

/** Bytes of scratch `attention` needs, as f64 so huge shapes report a size instead of wrapping. */
export function scratchBytes(S: i32, D: i32, Dv: i32): f64 {
  const dv8 = <f64>ceil8(Dv);
  const keys = <f64>ceil8(S) * <f64>D;
  const values = (Dv & 7) != 0 ? <f64>S * dv8 : 0.0;
  const block = <f64>(BR * BC) + <f64>BR * dv8 + <f64>(3 * BR);
  return 4.0 * (keys + values + block);
}

/**
 * out (B,H,L,Dv) = softmax(q (B,H,L,D) · kᵀ (B,KVH,D,S) · scale + mask) · v (B,KVH,S,Dv).
 *
 * causal != 0 keeps key j for query i iff j ≤ i + causalOffset (0 = top-left, S − L = bottom-right).
 * The mask (maskKind: none / additive f32 / bool u8 with 1 = attend) is addressed with element strides
 * (msB, msH, msL, msS), 0 for a broadcast dimension. Query head h reads kv head ⌊h / (H / KVH)⌋.
 * A row with no admissible key is written as zeros.
 */
export function attention(
  q: usize, k: usize, v: usize, out: usize,
  B: i32, H: i32, KVH: i32, L: i32, S: i32, D: i32, Dv: i32,
  scale: f32, causal: i32, causalOffset: i32,
  mask: usize, maskKind: i32, msB: i32, msH: i32, msL: i32, msS: i32,
  scratch: usize,
): void {
  const dv8 = ceil8(Dv);
  const kpack = scratch;
  const vpad = kpack + (<usize>ceil8(S) * <usize>D << 2);
  const padV = (Dv & 7) != 0;
  const sBuf = vpad + (padV ? <usize>S * <usize>dv8 << 2 : 0);
  const acc = sBuf + (<usize>(BR * BC) << 2);
  const rowMax = acc + (<usize>BR * <usize>dv8 << 2);
  const rowSum = rowMax + (<usize>BR << 2);
  const rowCorr = rowSum + (<usize>BR << 2);
  const maskElt: usize = maskKind == MASK_BOOL_U8 ? 1 : 4;
  const group = H / KVH;
  const vStride = <usize>(padV ? dv8 : Dv) << 2;

  for (let b = 0; b < B; b++) {
    for (let kvh = 0; kvh < KVH; kvh++) {
      const kvIndex = <usize>(b * KVH + kvh);
      packKeys(k + kvIndex * <usize>S * <usize>D * 4, S, D, kpack);
      let vSrc = v + kvIndex * <usize>S * <usize>Dv * 4;
      if (padV) {
        padValues(vSrc, S, Dv, vpad);
        vSrc = vpad;
      }
      for (let g = 0; g < group; g++) {
        const h = kvh * group + g;
        const headIndex = <usize>(b * H + h);
        const qHead = q + headIndex * <usize>L * <usize>D * 4;
        const oHead = out + headIndex * <usize>L * <usize>Dv * 4;
        const mHead = mask + (<usize>b * <usize>msB + <usize>h * <usize>msH) * maskElt;
        for (let qb = 0; qb < L; qb += BR) {
          const rows = min(BR, L - qb);
          attendBlock(
            qHead + (<usize>qb * <usize>D << 2), oHead + (<usize>qb * <usize>Dv << 2), rows, qb,
            kpack, vSrc, vStride, S, D, Dv, dv8, scale, causal, causalOffset,
            mHead + <usize>qb * <usize>msL * maskElt, maskKind, msL, msS, maskElt,
            sBuf, acc, rowMax, rowSum, rowCorr,
          );
        }
      }
    }
  }
}

function attendBlock(
  q: usize, out: usize, rows: i32, qb: i32,
  kpack: usize, v: usize, vStride: usize, S: i32, D: i32, Dv: i32, dv8: i32,
  scale: f32, causal: i32, causalOffset: i32,
  mask: usize, maskKind: i32, msL: i32, msS: i32, maskElt: usize,
  sBuf: usize, acc: usize, rowMax: usize, rowSum: usize, rowCorr: usize,
): void {
  const qStride = <usize>D << 2;
  const sStride = <usize>BC << 2;
  const accStride = <usize>dv8 << 2;
  const rows4 = rows & ~3;
  for (let r = 0; r < rows; r++) {
    store<f32>(rowMax + (<usize>r << 2), NEG_INF);
    store<f32>(rowSum + (<usize>r << 2), 0);
  }
  memory.fill(acc, 0, <usize>rows * accStride);

  // Causal: the block's last row admits keys j ≤ qb + rows − 1 + offset; later key blocks are skipped whole.
  let kend = S;
  if (causal) kend = max(0, min(S, qb + rows + causalOffset));

  for (let kb = 0; kb < kend; kb += BC) {
    const cols = min(BC, kend - kb);
    const cols8 = ceil8(cols);
    const kPanel = kpack + (<usize>kb * <usize>D << 2);

    // s (rows, cols8) = q (rows, D) · kᵀ (D, cols8)
    let r = 0;
    for (; r < rows4; r += 4) {
      const qr = q + <usize>r * qStride;
      const sr = sBuf + <usize>r * sStride;
      for (let c = 0; c < cols8; c += 8) {
        qk4x8(qr, qStride, kPanel + (<usize>c * <usize>D << 2), D, sr + (<usize>c << 2), sStride);
      }
    }
    for (; r < rows; r++) {
      const qr = q + <usize>r * qStride;
      const sr = sBuf + <usize>r * sStride;
      for (let c = 0; c < cols8; c += 8) {
        qk1x8(qr, kPanel + (<usize>c * <usize>D << 2), D, sr + (<usize>c << 2));
      }
    }

    // Scores -> unnormalised weights, updating each row's running max and sum.
    for (r = 0; r < rows; r++) {
      let limit = cols;
      if (causal) limit = max(0, min(cols, qb + r + causalOffset + 1 - kb));
      const mRow = mask + (<usize>r * <usize>msL + <usize>kb * <usize>msS) * maskElt;
      onlineSoftmaxRow(
        sBuf + <usize>r * sStride, cols, limit, scale, mRow, maskKind, msS,
        rowMax + (<usize>r << 2), rowSum + (<usize>r << 2), rowCorr + (<usize>r << 2),
      );
    }

    // acc (rows, dv8) = acc · diag(corr) + p (rows, cols) · v (cols, dv8)
    const vBlock = v + <usize>kb * vStride;
    for (r = 0; r < rows4; r += 4) {
      const pr = sBuf + <usize>r * sStride;
      const ar = acc + <usize>r * accStride;
      const cr = rowCorr + (<usize>r << 2);
      for (let c = 0; c < dv8; c += 8) {
        pv4x8(pr, sStride, vBlock + (<usize>c << 2), vStride, cols, ar + (<usize>c << 2), accStride, cr);
      }
    }
    for (; r < rows; r++) {
      const pr = sBuf + <usize>r * sStride;
      const ar = acc + <usize>r * accStride;
      const cr = rowCorr + (<usize>r << 2);
      for (let c = 0; c < dv8; c += 8) {
        pv1x8(pr, vBlock + (<usize>c << 2), vStride, cols, ar + (<usize>c << 2), cr);
      }
    }
  }

  // out = acc / sum; a row that admitted no key has sum 0 and is written as zeros (PyTorch ≥ 2.5, ONNX).
  const outStride = <usize>Dv << 2;
  const dv4 = Dv & ~3;
  for (let r = 0; r < rows; r++) {
    const sum = load<f32>(rowSum + (<usize>r << 2));
    const inv: f32 = sum == 0 ? 0 : <f32>1 / sum;
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

/**
 * One row of one key block: s ← s·scale + mask (inadmissible → −∞), then p = e^(s − m_new) in place, with
 * m_new = max(m_old, max s), corr = e^(m_old − m_new) and sum ← sum·corr + Σp.
 * Subtracting the running max keeps every exponent ≤ 0, so nothing overflows however large the logits.
 * Lanes at and past `limit` (causal cut or block end) are inadmissible; groups are always 4 wide and the
 * scratch row is 8-padded, so there is no scalar tail.
 */
function onlineSoftmaxRow(
  s: usize, cols: i32, limit: i32, scale: f32, mask: usize, maskKind: i32, msS: i32,
  rowMax: usize, rowSum: usize, rowCorr: usize,
): void {
  const vscale = f32x4.splat(scale);
  const vlimit = i32x4.splat(limit);
  const step = v128.load(LANE_TABLE, 16);
  const ninf = f32x4.splat(NEG_INF);
  const zero = i32x4.splat(0);
  let lane = v128.load(LANE_TABLE);
  let vmax = ninf;
  // A mask broadcast along keys (msS = 0) is one value for the whole row.
  const maskStep: usize = msS != 0 ? (maskKind == MASK_BOOL_U8 ? 4 : 16) : 0;
  let maskRow = ninf;
  if (msS == 0) {
    if (maskKind == MASK_ADDITIVE_F32) maskRow = v128.load32_splat(mask);
    else if (maskKind == MASK_BOOL_U8) maskRow = i32x4.splat(<i32>load<u8>(mask));
  }
  let m = mask;
  for (let j = 0; j < cols; j += 4) {
    const ptr = s + (<usize>j << 2);
    let x = f32x4.mul(v128.load(ptr), vscale);
    let admissible = i32x4.lt_s(lane, vlimit);
    if (maskKind == MASK_ADDITIVE_F32) {
      x = f32x4.add(x, msS != 0 ? v128.load(m) : maskRow);
    } else if (maskKind == MASK_BOOL_U8) {
      const bits = msS != 0 ? i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(m))) : maskRow;
      admissible = v128.and(admissible, i32x4.ne(bits, zero));
    }
    x = v128.bitselect(x, ninf, admissible);
    v128.store(ptr, x);
    vmax = f32x4.pmax(vmax, x);
    lane = i32x4.add(lane, step);
    m += maskStep;
  }
  const mOld = load<f32>(rowMax);
  const mNew = max(mOld, hmax(vmax));
  // With nothing admissible yet, exponentiate against 0: e^(−∞ − 0) = 0, never e^(−∞ + ∞) = NaN.
  const mRef: f32 = mNew == NEG_INF ? 0 : mNew;
  const vref = f32x4.splat(mRef);
  let vsum = f32x4.splat(0);
  for (let j = 0; j < cols; j += 4) {
    const ptr = s + (<usize>j << 2);
    const p = vexp(f32x4.sub(v128.load(ptr), vref));
    v128.store(ptr, p);
    vsum = f32x4.add(vsum, p);
  }
  const corr = sexp(mOld - mRef);
  store<f32>(rowCorr, corr);
  store<f32>(rowSum, load<f32>(rowSum) * corr + hsum(vsum));
  store<f32>(rowMax, mNew);
}

/** Test hook: e^x elementwise over n floats in place (n a multiple of 4), so the exp's accuracy is measurable. */
export function expInPlace(ptr: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    const p = ptr + (<usize>i << 2);
    v128.store(p, vexp(v128.load(p)));
  }
}
