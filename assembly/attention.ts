// Fused scaled-dot-product attention with online ("flash") softmax and the alternative activations.
// For each block of BR query rows we sweep the keys in blocks of BC: scores for the block go to a BR×BC
// scratch, are turned into weights (for softmax: unnormalised, against a running row max), and are
// immediately multiplied into a BR×Dv accumulator. Extra memory is O(S·D) for the packed keys plus
// O(BR·(BC + Dv)); the full seqQ × seqK score matrix never exists unless the caller asks for the weights.
import { LANE_TABLE, LOG2E, hmax, hsum, sexp2, vexp, vexp2, vtanh } from "./vmath";
import { ceil8, x32_packk_8, x32_packq_4, x32_padv_8 } from "./pack";
import { BLOCK_STRIDE, f32_pv_1x32, f32_pv_1x8, f32_pv_4x8, f32_pv_4x8b, f32_qk_1x32, f32_qk_1x8, f32_qk_4x8p } from "./gemm";

/** Query rows per block (a multiple of the 4-row micro-tile); 64 measured best of 16/32/64 on S1–S3. */
export const BR: i32 = 64;
/**
 * Keys per block (a multiple of the 8-key panel). 128 against 64: +2 % on S1, +1 % on S2, S3, S5 in interleaved A/B
 * runs; 256 no better. gemm.ts BLOCK_STRIDE is BC·4.
 */
export const BC: i32 = 128;

export const MASK_NONE: i32 = 0;
export const MASK_ADDITIVE_F32: i32 = 1;
export const MASK_BOOL_U8: i32 = 2;

// Activations. The first two normalise with a running max; the others map each score on its own.
export const ACT_SOFTMAX: i32 = 0;
export const ACT_SOFTMAX1: i32 = 1;
export const ACT_SQUARED: i32 = 2;
export const ACT_SIGMOID: i32 = 3;
export const ACT_RELU: i32 = 4;
export const ACT_POLYNOMIAL: i32 = 5;

const NEG_INF: f32 = -Infinity;

/** Bytes of scratch `attention` needs, as f64 so huge shapes report a size instead of wrapping. */
export function scratchBytes(S: i32, D: i32, Dv: i32, weights: i32, resident: i32): f64 {
  const dv8 = <f64>ceil8(Dv);
  const keys = resident != 0 ? 0.0 : <f64>ceil8(S) * <f64>D;
  const values = resident == 0 && (Dv & 7) != 0 ? <f64>S * dv8 : 0.0;
  const block = <f64>BR * <f64>blockWidth(S, weights) + <f64>BR * dv8 + <f64>(3 * BR) + <f64>BR * <f64>D;
  return 4.0 * (keys + values + block);
}

/**
 * Keys per block for a block of fewer than 4 query rows (decode): as many as the BR×BC score scratch holds for
 * them (BR·BC / rows, rounded down to 64), up to every key. Decode streams the whole KV cache once; 64-key blocks
 * spent a third of a step on per-block work (S4 step 10.4 → 7.6 ms in an interleaved A/B).
 */
// @ts-ignore: decorator
@inline function decodeWidth(S: i32, rows: i32): i32 {
  return min(ceil8(S), ((BR * BC) / rows) & ~63);
}

/** Keys per block: BC, or every key at once when the caller wants the normalised weights. */
// @ts-ignore: decorator
@inline function blockWidth(S: i32, weights: i32): i32 {
  return weights != 0 ? ceil8(S) : BC;
}

/** Work items of one call: one per (batch, query head, block of BR query rows); `attention` runs a range of them. */
export function workItems(B: i32, H: i32, L: i32): i32 {
  return B * H * ((L + BR - 1) / BR);
}

/** Which (batch, kv head) has its keys (and padded values) in this instance's scratch, or −1. */
let packedKv: i32 = -1;

/**
 * out (B,H,L,Dv) = act(q (B,H,L,D) · kᵀ (B,KVH,D,S) · scale [softcapped] + mask) · v (B,KVH,S,Dv), for the work
 * items first … first + count − 1 (see workItems; item = (b·H + h)·⌈L/BR⌉ + query block). One call with every item
 * is the whole attention; threads share a call's items, each instance with its own scratch. fresh != 0 says the
 * inputs are new (a new call): keys packed by an earlier call of this instance are not reused.
 *
 * causal != 0 keeps key j for query i iff j ≤ i + causalOffset (0 = top-left, S − L = bottom-right).
 * The mask (maskKind: none / additive f32 / bool u8 with 1 = attend) is addressed with element strides
 * (msB, msH, msL, msS), 0 for a broadcast dimension. Query head h reads kv head ⌊h / (H / KVH)⌋.
 * softcap > 0 replaces each scaled score s by softcap·tanh(s / softcap) before the mask.
 * `param` is the activation's constant: epsilon (squared), bias (sigmoid), 1/S (relu), 1/√S (polynomial);
 * `power` the polynomial's exponent. weights != 0 also writes the (B,H,L,S) weight matrix there.
 * resident != 0: k and v are a KV cache of `capacity` tokens per (batch, kv head), already in the kernels'
 * layouts (k as packed panels, v as rows padded to ceil8(Dv); see kvAppend), so nothing is repacked per call.
 * A row with no admissible key is written as zeros.
 */
export function attention(
  first: i32, count: i32, fresh: i32,
  q: usize, k: usize, v: usize, out: usize,
  B: i32, H: i32, KVH: i32, L: i32, S: i32, D: i32, Dv: i32,
  scale: f32, causal: i32, causalOffset: i32,
  mask: usize, maskKind: i32, msB: i32, msH: i32, msL: i32, msS: i32,
  activation: i32, softcap: f32, param: f32, power: i32, weights: usize,
  resident: i32, capacity: i32, scratch: usize,
): void {
  const dv8 = ceil8(Dv);
  const bw = blockWidth(S, <i32>(weights != 0));
  const kpack = scratch;
  const vpad = kpack + (resident != 0 ? 0 : <usize>ceil8(S) * <usize>D << 2);
  const padV = resident == 0 && (Dv & 7) != 0;
  const sBuf = vpad + (padV ? <usize>S * <usize>dv8 << 2 : 0);
  const acc = sBuf + (<usize>BR * <usize>bw << 2);
  const rowState = acc + (<usize>BR * <usize>dv8 << 2);
  const qpack = rowState + (<usize>(3 * BR) << 2);
  const maskElt: usize = maskKind == MASK_BOOL_U8 ? 1 : 4;
  const group = H / KVH;
  const vStride = <usize>(padV || resident != 0 ? dv8 : Dv) << 2;
  const kHeadBytes = resident != 0 ? <usize>ceil8(capacity) * <usize>D << 2 : <usize>S * <usize>D << 2;
  const vHeadBytes = resident != 0 ? <usize>capacity * <usize>dv8 << 2 : <usize>S * <usize>Dv << 2;
  const blocks = (L + BR - 1) / BR;
  if (fresh != 0) packedKv = -1;

  for (let item = first; item < first + count; item++) {
    const headIndex = item / blocks; // b·H + h
    const qb = (item - headIndex * blocks) * BR;
    const b = headIndex / H;
    const h = headIndex - b * H;
    const kvIndex = b * KVH + h / group;
    let kSrc = k + <usize>kvIndex * kHeadBytes;
    let vSrc = v + <usize>kvIndex * vHeadBytes;
    if (resident == 0) {
      // Items of one kv head are consecutive, so a thread packs each kv head it meets once per call.
      if (kvIndex != packedKv) {
        x32_packk_8(kSrc, S, D, kpack);
        if (padV) x32_padv_8(vSrc, S, Dv, vpad);
        packedKv = kvIndex;
      }
      kSrc = kpack;
      if (padV) vSrc = vpad;
    }
    const qHead = q + <usize>headIndex * <usize>L * <usize>D * 4;
    const oHead = out + <usize>headIndex * <usize>L * <usize>Dv * 4;
    const wHead = weights != 0 ? weights + <usize>headIndex * <usize>L * <usize>S * 4 : 0;
    const mHead = mask + (<usize>b * <usize>msB + <usize>h * <usize>msH) * maskElt;
    const rows = min(BR, L - qb);
    attendBlock(
      qHead + (<usize>qb * <usize>D << 2), oHead + (<usize>qb * <usize>Dv << 2), rows, qb,
      kSrc, vSrc, vStride, S, D, Dv, dv8, rows < 4 && weights == 0 ? decodeWidth(S, rows) : bw, scale, causal, causalOffset,
      mHead + <usize>qb * <usize>msL * maskElt, maskKind, msL, msS, maskElt,
      activation, softcap, param, power,
      wHead != 0 ? wHead + (<usize>qb * <usize>S << 2) : 0,
      sBuf, acc, rowState, qpack,
    );
  }
}

function attendBlock(
  q: usize, out: usize, rows: i32, qb: i32,
  kpack: usize, v: usize, vStride: usize, S: i32, D: i32, Dv: i32, dv8: i32, bw: i32,
  scale: f32, causal: i32, causalOffset: i32,
  mask: usize, maskKind: i32, msL: i32, msS: i32, maskElt: usize,
  activation: i32, softcap: f32, param: f32, power: i32, weights: usize,
  sBuf: usize, acc: usize, rowState: usize, qpack: usize,
): void {
  const qStride = <usize>D << 2;
  const sStride = <usize>bw << 2;
  const accStride = <usize>dv8 << 2;
  const rowMax = rowState;
  const rowSum = rowState + (<usize>BR << 2);
  const rowCorr = rowSum + (<usize>BR << 2);
  const rows4 = rows & ~3;
  // softmax1's extra "1" in the denominator is e^(0 − m): start the running max at 0 with sum 1.
  const quiet = activation == ACT_SOFTMAX1;
  for (let r = 0; r < rows; r++) {
    store<f32>(rowMax + (<usize>r << 2), quiet ? 0 : NEG_INF);
    store<f32>(rowSum + (<usize>r << 2), quiet ? 1 : 0);
  }
  memory.fill(acc, 0, <usize>rows * accStride);
  // The block's full 4-row groups, packed [D][4] once for all its key blocks.
  for (let r = 0; r < rows4; r += 4) x32_packq_4(q + <usize>r * qStride, qStride, D, qpack + (<usize>r * <usize>D << 2));

  // Causal: the block's last row admits keys j ≤ qb + rows − 1 + offset; later key blocks are skipped whole.
  let kend = S;
  if (causal) kend = max(0, min(S, qb + rows + causalOffset));

  for (let kb = 0; kb < kend; kb += bw) {
    const cols = min(bw, kend - kb);
    const cols8 = ceil8(cols);
    const kPanel = kpack + (<usize>kb * <usize>D << 2);

    // s (rows, cols8) = q (rows, D) · kᵀ (D, cols8)
    let r = 0;
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
      let limit = cols;
      if (causal) limit = max(0, min(cols, qb + r + causalOffset + 1 - kb));
      const mRow = mask + (<usize>r * <usize>msL + <usize>kb * <usize>msS) * maskElt;
      const ro = <usize>r << 2;
      weighRow(
        sBuf + <usize>r * sStride, cols, limit, scale, softcap, mRow, maskKind, msS,
        activation, param, power, rowMax + ro, rowSum + ro, rowCorr + ro,
      );
    }

    // With every key in one block the weights are final once divided by the row's denominator.
    if (weights != 0) normaliseAndStore(sBuf, sStride, rows, cols, S, activation, param, rowSum, rowCorr, weights);

    // acc (rows, dv8) = acc · diag(corr) + p (rows, cols) · v (cols, dv8)
    const vBlock = v + <usize>kb * vStride;
    for (r = 0; r < rows4; r += 4) {
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
  // Keys past the causal end of the block have weight 0 in every row.
  if (weights != 0 && kend < S) {
    for (let r = 0; r < rows; r++) {
      memory.fill(weights + (<usize>r * <usize>S + <usize>max(kend, 0) << 2), 0, <usize>(S - max(kend, 0)) << 2);
    }
  }

  // out = acc / denominator. A row that admitted no key has acc = 0 and is written as zeros
  // (PyTorch ≥ 2.5, ONNX), never 0/0.
  const outStride = <usize>Dv << 2;
  const dv4 = Dv & ~3;
  for (let r = 0; r < rows; r++) {
    const inv = weights != 0 ? <f32>1 : reciprocalDenominator(activation, load<f32>(rowSum + (<usize>r << 2)), param);
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

/** 1 / the row's denominator: Σp for softmax, Σp² + ε for squared, 1 otherwise; 0 for a zero denominator. */
// @ts-ignore: decorator
@inline function reciprocalDenominator(activation: i32, sum: f32, param: f32): f32 {
  if (activation == ACT_SOFTMAX || activation == ACT_SOFTMAX1) return sum == 0 ? 0 : <f32>1 / sum;
  if (activation == ACT_SQUARED) {
    const d = sum + param;
    return d == 0 ? 0 : <f32>1 / d; // ε = 0 and nothing admissible (or all scores exactly 0): zeros, not 0/0
  }
  return 1;
}

/** Weights mode: p ← p / denominator in place (so the P·V product yields the output directly) and copied out. */
function normaliseAndStore(
  sBuf: usize, sStride: usize, rows: i32, cols: i32, S: i32, activation: i32, param: f32,
  rowSum: usize, rowCorr: usize, weights: usize,
): void {
  for (let r = 0; r < rows; r++) {
    const inv = f32x4.splat(reciprocalDenominator(activation, load<f32>(rowSum + (<usize>r << 2)), param));
    const p = sBuf + <usize>r * sStride;
    for (let j = 0; j < cols; j += 4) {
      v128.store(p + (<usize>j << 2), f32x4.mul(v128.load(p + (<usize>j << 2)), inv));
    }
    memory.copy(weights + (<usize>r * <usize>S << 2), p, <usize>cols << 2);
    store<f32>(rowCorr + (<usize>r << 2), 0); // the accumulator starts from zero
  }
}

/**
 * One row of one key block: x ← s·scale, softcapped, plus the additive mask; inadmissible keys (causal cut,
 * block end, bool mask 0, float mask −∞) get weight exactly 0. Then per activation:
 * - softmax family (in base 2: x is multiplied by log2 e, so p = 2^(x − m) = e^(s − m/log2 e)):
 *   p = 2^(x − m_new) with m_new = max(m_old, max x), corr = 2^(m_old − m_new), sum ← sum·corr + Σp.
 *   Subtracting the running max keeps every exponent ≤ 0, so nothing overflows however large the logits.
 * - the others: p = f(x) directly, corr = 1, sum ← sum + Σp (only squared divides by it).
 * Groups are always 4 wide and the scratch row is 8-padded, so there is no scalar tail.
 */
function weighRow(
  s: usize, cols: i32, limit: i32, scale: f32, softcap: f32, mask: usize, maskKind: i32, msS: i32,
  activation: i32, param: f32, power: i32, rowMax: usize, rowSum: usize, rowCorr: usize,
): void {
  const softmaxFamily = activation <= ACT_SOFTMAX1;
  let vmax = f32x4.splat(NEG_INF);
  let vsum = f32x4.splat(0);
  if (softmaxFamily && maskKind == MASK_NONE && softcap == 0 && limit >= cols && (cols & 3) == 0 && scale > 0) {
    // The common case, a block with nothing to mask: the max of the raw scores times the positive scale is the
    // max of the scaled ones, so the scores need not be stored back before exponentiation.
    for (let j = 0; j < cols; j += 4) vmax = f32x4.pmax(vmax, v128.load(s + (<usize>j << 2)));
    const c = scale * LOG2E;
    const mOld = load<f32>(rowMax);
    const mNew = max(mOld, hmax(vmax) * c);
    const mRef: f32 = mNew == NEG_INF ? 0 : mNew;
    const vc = f32x4.splat(c);
    const vref = f32x4.splat(mRef);
    for (let j = 0; j < cols; j += 4) {
      const ptr = s + (<usize>j << 2);
      // Rounded product, then subtraction (not one fused op): the row's max then gets exactly 2^0 = 1.
      const p = vexp2(f32x4.sub(f32x4.mul(v128.load(ptr), vc), vref));
      v128.store(ptr, p);
      vsum = f32x4.add(vsum, p);
    }
    finishSoftmaxRow(mOld, mNew, mRef, vsum, rowMax, rowSum, rowCorr);
    return;
  }

  const vscale = f32x4.splat(scale);
  const vlimit = i32x4.splat(limit);
  const step = v128.load(LANE_TABLE, 16);
  const ninf = f32x4.splat(NEG_INF);
  const zero = i32x4.splat(0);
  const capped = softcap > 0;
  const vcap = f32x4.splat(softcap);
  const vinvcap = f32x4.splat(<f32>1 / softcap);
  const vlog2e = f32x4.splat(softmaxFamily ? LOG2E : 1);
  let lane = v128.load(LANE_TABLE);
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
    if (capped) x = f32x4.mul(vtanh(f32x4.mul(x, vinvcap)), vcap);
    let admissible = i32x4.lt_s(lane, vlimit);
    if (maskKind == MASK_ADDITIVE_F32) {
      x = f32x4.add(x, msS != 0 ? v128.load(m) : maskRow);
    } else if (maskKind == MASK_BOOL_U8) {
      const bits = msS != 0 ? i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(m))) : maskRow;
      admissible = v128.and(admissible, i32x4.ne(bits, zero));
    }
    if (softmaxFamily) {
      x = v128.bitselect(f32x4.mul(x, vlog2e), ninf, admissible);
      vmax = f32x4.pmax(vmax, x);
    } else {
      // A −∞ score (float mask, or ±∞ inputs) is an excluded key for every activation, whatever f(−∞) is.
      admissible = v128.and(admissible, f32x4.ne(x, ninf));
      x = v128.and(mapScore(x, activation, param, power), admissible);
      vsum = f32x4.add(vsum, x);
    }
    v128.store(ptr, x);
    lane = i32x4.add(lane, step);
    m += maskStep;
  }
  if (!softmaxFamily) {
    store<f32>(rowCorr, 1);
    store<f32>(rowSum, load<f32>(rowSum) + hsum(vsum));
    return;
  }
  const mOld = load<f32>(rowMax);
  const mNew = max(mOld, hmax(vmax));
  // With nothing admissible yet, exponentiate against 0: 2^(−∞ − 0) = 0, never 2^(−∞ + ∞) = NaN.
  const mRef: f32 = mNew == NEG_INF ? 0 : mNew;
  const vref = f32x4.splat(mRef);
  for (let j = 0; j < cols; j += 4) {
    const ptr = s + (<usize>j << 2);
    const p = vexp2(f32x4.sub(v128.load(ptr), vref));
    v128.store(ptr, p);
    vsum = f32x4.add(vsum, p);
  }
  finishSoftmaxRow(mOld, mNew, mRef, vsum, rowMax, rowSum, rowCorr);
}

// @ts-ignore: decorator
@inline function finishSoftmaxRow(
  mOld: f32, mNew: f32, mRef: f32, vsum: v128, rowMax: usize, rowSum: usize, rowCorr: usize,
): void {
  const corr = sexp2(mOld - mRef);
  store<f32>(rowCorr, corr);
  store<f32>(rowSum, load<f32>(rowSum) * corr + hsum(vsum));
  store<f32>(rowMax, mNew);
}

/** The non-softmax activations of one score vector (masking is applied by the caller). */
// @ts-ignore: decorator
@inline function mapScore(x: v128, activation: i32, param: f32, power: i32): v128 {
  if (activation == ACT_SQUARED) return f32x4.mul(x, x);
  if (activation == ACT_RELU) return f32x4.mul(f32x4.pmax(x, f32x4.splat(0)), f32x4.splat(param));
  if (activation == ACT_SIGMOID) {
    // σ(y) from e = e^(−|y|) ≤ 1: 1/(1+e) for y ≥ 0, e/(1+e) below, so neither branch overflows.
    const y = f32x4.add(x, f32x4.splat(param));
    const e = vexp(f32x4.neg(f32x4.abs(y)));
    const r = f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), e));
    return v128.bitselect(r, f32x4.mul(e, r), f32x4.ge(y, f32x4.splat(0)));
  }
  // Polynomial: x^power by binary exponentiation, times 1/√S.
  let result = f32x4.splat(param);
  let base = x;
  let e = power;
  while (e != 0) {
    if (e & 1) result = f32x4.mul(result, base);
    base = f32x4.mul(base, base);
    e >>= 1;
  }
  return result;
}

/**
 * Appends n tokens to a resident KV cache at position `pos`: k (B,KVH,n,D) into packed key panels
 * ([ceil8(capacity)/8][D][8] per batch and kv head) and v (B,KVH,n,Dv) into rows padded to ceil8(Dv)
 * ([capacity][ceil8(Dv)] per batch and kv head). Only the new tokens are touched.
 */
export function kvAppend(
  kCache: usize, vCache: usize, k: usize, v: usize, B: i32, KVH: i32, n: i32, D: i32, Dv: i32, pos: i32, capacity: i32,
): void {
  const dv8 = ceil8(Dv);
  const kHeadBytes = <usize>ceil8(capacity) * <usize>D << 2;
  const vHeadBytes = <usize>capacity * <usize>dv8 << 2;
  for (let h = 0; h < B * KVH; h++) {
    const kHead = kCache + <usize>h * kHeadBytes;
    const vHead = vCache + <usize>h * vHeadBytes;
    for (let t = 0; t < n; t++) {
      const j = pos + t;
      const src = k + ((<usize>h * <usize>n + <usize>t) * <usize>D << 2);
      // token j lives in panel j/8, lane j%8: element d at panel + (d·8 + j%8)·4
      let dst = kHead + (<usize>(j >> 3) * <usize>D << 5) + (<usize>(j & 7) << 2);
      for (let d = 0; d < D; d++) {
        store<f32>(dst, load<f32>(src + (<usize>d << 2)));
        dst += 32;
      }
      const vRow = vHead + (<usize>j * <usize>dv8 << 2);
      memory.copy(vRow, v + ((<usize>h * <usize>n + <usize>t) * <usize>Dv << 2), <usize>Dv << 2);
      if (dv8 != Dv) memory.fill(vRow + (<usize>Dv << 2), 0, <usize>(dv8 - Dv) << 2);
    }
  }
}

/** Bytes of one resident cache's key and value storage. */
export function kvCacheBytes(B: i32, KVH: i32, capacity: i32, D: i32, Dv: i32): f64 {
  return 4.0 * <f64>B * <f64>KVH * (<f64>ceil8(capacity) * <f64>D + <f64>capacity * <f64>ceil8(Dv));
}
