// The score stage: the one place where a row of raw q·kᵀ products becomes weights. Every per-score rule lives
// here, one line each, in this order: scale, soft-cap, ALiBi, mask (added, or bool), exclusions (key lengths,
// causal, window, −∞), activation (softmax with sinks). The flash loop (attention.ts) asks `rowLo`/`rowHi` which
// keys a row may admit (to skip whole blocks), calls `weighRow` once per query row and key block, and finally
// divides its accumulator by `rowScale`. Query i of batch row b sits at key position i + off_b, off_b = keys_b − L.
import {
  ACT_POLYNOMIAL, ACT_RELU, ACT_SIGMOID, ACT_SOFTMAX, ACT_SOFTMAX1, ACT_SQUARED, CAUSAL_BOTTOM_RIGHT, CAUSAL_NONE,
  MASK_ADDITIVE_F32, MASK_BOOL_U8, MASK_NONE, Params,
} from "./params.generated";
import { LANE_TABLE, LOG2E, hmax, hsum, vexp, vexp2, vmadd, vsoftcap } from "./vmath";
import { finishSoftmaxRow, fusedExponents, fusedRef, refError, softmaxExponents } from "./score4";

const NEG_INF: f32 = -Infinity;

/** Keys batch row b uses: keyLengths[b], or S. */
// @ts-ignore: decorator
@inline export function keysOf(p: Params, b: i32): i32 {
  return p.keyLengths != 0 ? load<i32>(p.keyLengths + (<usize>b << 2)) : p.S;
}

/** The activation's constant for batch row b: from its own key count where it depends on it (rowParams), else p.param. */
// @ts-ignore: decorator
@inline function paramOf(p: Params, b: i32): f32 {
  return p.rowParams != 0 ? load<f32>(p.rowParams + (<usize>b << 2)) : p.param;
}

/** One past the last key query i may admit (off = off_b, keys = keys_b); the exclusions by position. */
// @ts-ignore: decorator
@inline export function rowHi(p: Params, i: i32, off: i32, keys: i32): i32 {
  let hi = keys;                                                                      // key lengths
  if (p.causal != CAUSAL_NONE) hi = min(hi, i + (p.causal == CAUSAL_BOTTOM_RIGHT ? off : 0) + 1); // causal
  return min(hi, i + off + p.windowRight + 1);                                         // window, right
}

/** The first key query i may admit. */
// @ts-ignore: decorator
@inline export function rowLo(p: Params, i: i32, off: i32): i32 {
  return max(0, i + off - p.windowLeft);                                               // window, left
}

/**
 * Starts `rows` rows of query head h: running max −∞, sum 0 and weight factor exponent ε 0; with a sink σ, max σ and sum 1 — the sink is one
 * more logit, e^(σ − m), in the denominator only (softmax1 is the sink 0). Squared keeps the running max of |s|,
 * from 0.
 */
export function startRows(p: Params, h: i32, hStep: i32, rows: i32, rowMax: usize, rowSum: usize, rowEps: usize): void {
  const squared = p.activation == ACT_SQUARED;
  for (let r = 0; r < rows; r++) {
    let sink = NEG_INF;
    if (p.activation == ACT_SOFTMAX1 || squared) sink = 0; // squared: max |s| so far (with sum 0 below)
    else if (p.sinks != 0) sink = load<f32>(p.sinks + (<usize>(h + r * hStep) << 2)); // row r is head h + r·hStep
    store<f32>(rowMax + (<usize>r << 2), sink);
    store<f32>(rowSum + (<usize>r << 2), sink == NEG_INF || squared ? 0 : 1);
    store<f32>(rowEps + (<usize>r << 2), 0); // the sum's 1 carries no factor 2^ε (score4.ts fusedRef)
  }
}

/** What a mask tile admits: nothing (skipped), everything (computed as if unmasked) or some keys. */
export const TILE_EMPTY = 0;
export const TILE_FULL = 1;
export const TILE_PARTIAL = 2;

/**
 * Classifies a mask tile of `rows` rows (msL elements apart) and `cols` keys (`mask` at its first row and key): every entry bool 0 or
 * float −∞ is TILE_EMPTY, every entry bool non-zero or float +0 is TILE_FULL. This is FlexAttention's block mask,
 * found per call: a packed-documents mask costs what its density says, and its dense tiles take the unmasked
 * fast path. A mixed tile is found by its first two differing vectors, a uniform one reads rows·cols entries
 * (1/(D+Dv) of the tile's arithmetic, or less).
 */
export function maskTile(p: Params, mask: usize, msL: i32, rows: i32, cols: i32): i32 {
  const msS = p.msS;
  const bool = p.maskKind == MASK_BOOL_U8;
  const elt: usize = bool ? 1 : 4;
  const n = msS != 0 ? cols : 1;      // a mask broadcast along keys has one value per row
  const r1 = msL != 0 ? rows : 1;     // …and along queries one row
  const ninf = f32x4.splat(NEG_INF);
  // Per row, OR and AND of every vector (one test per row, not per vector): `some` has a lane that admits,
  // `every` has all lanes admitting unchanged (bool non-zero; float +0 by bit pattern: −0 and NaN are partial).
  let some = i32x4.splat(0), every = i32x4.splat(-1);
  for (let r = 0; r < r1; r++) {
    const row = mask + <usize>r * <usize>msL * elt;
    let j = 0;
    if (bool) {
      const zero = i8x16.splat(0);
      for (; j + 16 <= n; j += 16) {
        const x = v128.load(row + <usize>j);
        some = v128.or(some, x);
        every = v128.and(every, i8x16.ne(x, zero));
      }
      for (; j < n; j++) {
        const x = load<u8>(row + <usize>j) != 0 ? -1 : 0;
        some = v128.or(some, i32x4.splat(x));
        every = v128.and(every, i32x4.splat(x));
      }
    } else {
      for (; j + 4 <= n; j += 4) {
        const x = v128.load(row + (<usize>j << 2));
        some = v128.or(some, f32x4.ne(x, ninf));
        every = v128.and(every, i32x4.eq(x, i32x4.splat(0)));
      }
      for (; j < n; j++) {
        const x = load<i32>(row + (<usize>j << 2));
        some = v128.or(some, i32x4.splat(reinterpret<f32>(x) != NEG_INF ? -1 : 0));
        every = v128.and(every, i32x4.splat(x == 0 ? -1 : 0));
      }
    }
    if (v128.any_true(some) && !i8x16.all_true(every)) return TILE_PARTIAL;
  }
  return i8x16.all_true(every) ? TILE_FULL : v128.any_true(some) ? TILE_PARTIAL : TILE_EMPTY;
}

/**
 * The ALiBi row of a key block: bias[t] = −slope·|m0 + t| for t < n (float32 product, as the score stage adds
 * it). Row r of the block reads it from t = rows − 1 − r, so one table of rows + cols entries serves every row.
 */
export function alibiTable(bias: usize, slope: f32, m0: i32, n: i32): void {
  const vslope = f32x4.splat(-slope);
  let m = i32x4.add(i32x4.splat(m0), v128.load(LANE_TABLE));
  const step = v128.load(LANE_TABLE, 16);
  for (let t = 0; t < n; t += 4) {
    v128.store(bias + (<usize>t << 2), f32x4.mul(vslope, f32x4.abs(f32x4.convert_i32x4_s(m))));
    m = i32x4.add(m, step);
  }
}

/**
 * One row of one key block, in place: s[0 … cols) raw products → weights, x = s·scale (p.scale, or 1 where the
 * block's scores were scaled in float64: range.ts). Keys outside [start, limit) (the
 * row's admissible range, relative to the block), with a bool-mask 0 or with a −∞ score get weight exactly 0.
 * `bias` (0 = none) is the row's ALiBi, one float per key (alibiTable). `maskKind` is this tile's: MASK_NONE for a
 * tile the mask admits whole. Then per activation:
 * - softmax family: p = e^(x − m_new) = 2^((x − m_new)·log2 e), m_new = max(m_old, max x),
 *   corr = e^(m_old − m_new), sum ← sum·corr + Σp. Scores and maxima stay in natural units and log2 e multiplies
 *   the difference, which is ≤ 0: every finite score behaves as a finite number (a score of −3.4e38, PyTorch's
 *   finfo.min padding, is not −∞), and nothing overflows however large the logits.
 * - squared, scale-free like softmax so Σs² never overflows where the result is finite: p = (x / m_new)², m the
 *   running max of |x|, corr = (m_old / m_new)², sum ← sum·corr + Σp; the denominator's ε becomes ε / m².
 * - the others: p = f(x), corr = 1, sum ← sum + Σp.
 * `mask` points at this row's first key of the block. Groups are 4 wide and the scratch row is 8-padded, so
 * there is no scalar tail.
 */
export function weighRow(
  p: Params, b: i32, s: usize, cols: i32, start: i32, limit: i32, bias: usize, maskKind: i32, mask: usize,
  rowMax: usize, rowSum: usize, rowCorr: usize, rowEps: usize, scale: f32,
): void {
  const activation = p.activation;
  const softcap = p.softcap;
  const softmaxFamily = activation <= ACT_SOFTMAX1;
  const squared = activation == ACT_SQUARED;
  let vmax = f32x4.splat(NEG_INF);
  let vsum = f32x4.splat(0);
  const plain = softmaxFamily && maskKind == MASK_NONE && softcap == 0 && start <= 0 && limit >= cols && (cols & 3) == 0;
  if (plain && bias != 0) {
    // Every key admissible, ALiBi only: x = s·scale + bias, max, then the exponent pass below.
    const vscale = f32x4.splat(scale);
    for (let j = 0; j < cols; j += 4) {
      const o = <usize>j << 2;
      const x = f32x4.add(f32x4.mul(v128.load(s + o), vscale), v128.load(bias + o));
      vmax = f32x4.pmax(vmax, x);
      v128.store(s + o, x);
    }
    softmaxExponents(s, cols, vmax, rowMax, rowSum, rowCorr, rowEps);
    return;
  }
  if (plain && scale > 0) {
    // The common case, a block with nothing to mask: the max of the raw scores times the positive scale is the
    // max of the scaled ones, so the scores need not be stored back before exponentiation.
    for (let j = 0; j < cols; j += 4) vmax = f32x4.pmax(vmax, v128.load(s + (<usize>j << 2)));
    const mOld = load<f32>(rowMax);
    const mNew = max(mOld, hmax(vmax) * scale);
    const mRef: f32 = mNew == NEG_INF ? 0 : mNew;
    const ref2 = mRef * LOG2E;
    let eps: f32 = 0;
    const c = f32x4.splat(scale * LOG2E);
    if (fusedRef(f32x4.splat(ref2), c)) {
      // softmaxRows4's one-op argument, the same operations: the same bits for a row in a 4-row group or alone
      // (unless another row of its group is past REF_LIMIT, which sends the whole group to the two-rounding form).
      eps = f32x4.extract_lane(refError(f32x4.splat(mRef), f32x4.splat(ref2)), 0);
      vsum = fusedExponents(s, cols, c, f32x4.splat(-ref2));
    } else {
      const vscale = f32x4.splat(scale);
      const vlog2e = f32x4.splat(LOG2E);
      const vref = f32x4.splat(mRef);
      for (let j = 0; j < cols; j += 4) {
        const ptr = s + (<usize>j << 2);
        // Rounded product, then subtraction (not one fused op): the row's max then gets exactly 2^0 = 1.
        const e = vexp2(f32x4.mul(f32x4.sub(f32x4.mul(v128.load(ptr), vscale), vref), vlog2e));
        v128.store(ptr, e);
        vsum = f32x4.add(vsum, e);
      }
    }
    finishSoftmaxRow(mOld, mNew, mRef, eps, vsum, rowMax, rowSum, rowCorr, rowEps);
    return;
  }

  const param = paramOf(p, b);
  const power = p.power;
  const msS = p.msS;
  const vscale = f32x4.splat(scale);
  const vlimit = i32x4.splat(limit);
  const vstart = i32x4.splat(start - 1);
  const biased = bias != 0;
  const step = v128.load(LANE_TABLE, 16);
  const ninf = f32x4.splat(NEG_INF);
  const zero = i32x4.splat(0);
  const capped = softcap > 0;
  const vcap = f32x4.splat(softcap);
  const vinvcap = f32x4.splat(<f32>1 / softcap);
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
    let x = f32x4.mul(v128.load(ptr), vscale);                                    // scale
    if (capped) x = vsoftcap(x, vcap, vinvcap);                                   // soft-cap
    if (biased) x = f32x4.add(x, v128.load(bias + (<usize>j << 2)));                // ALiBi
    let admissible = v128.and(i32x4.gt_s(lane, vstart), i32x4.lt_s(lane, vlimit)); // key lengths, causal, window
    if (maskKind == MASK_ADDITIVE_F32) {                                          // float mask; −∞ excludes
      const mv = msS != 0 ? v128.load(m) : maskRow;                               // (NaN + −∞ would be NaN)
      x = f32x4.add(x, mv);
      admissible = v128.and(admissible, f32x4.ne(mv, ninf));
    } else if (maskKind == MASK_BOOL_U8) {                                        // bool mask
      const bits = msS != 0 ? i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(m))) : maskRow;
      admissible = v128.and(admissible, i32x4.ne(bits, zero));
    }
    if (softmaxFamily) {
      x = v128.bitselect(x, ninf, admissible);
      vmax = f32x4.pmax(vmax, x);
    } else if (squared) {
      x = v128.and(x, v128.and(admissible, f32x4.ne(x, ninf)));
      vmax = f32x4.pmax(vmax, f32x4.abs(x));
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
  if (softmaxFamily) softmaxExponents(s, cols, vmax, rowMax, rowSum, rowCorr, rowEps);
  else if (squared) squares(s, cols, vmax, rowMax, rowSum, rowCorr);
  else {
    store<f32>(rowCorr, 1);
    store<f32>(rowSum, load<f32>(rowSum) + hsum(vsum));
  }
}

/** Squared's pass over a row of scores whose max |x| is in vmax: p = (x / m_new)², running sum and max. */
// @ts-ignore: decorator
@inline function squares(s: usize, cols: i32, vmax: v128, rowMax: usize, rowSum: usize, rowCorr: usize): void {
  const mOld = load<f32>(rowMax);
  const mNew = max(mOld, hmax(vmax));
  let vsum = f32x4.splat(0);
  if (mNew != 0) { // else every score so far is 0 and so is every p (stored x are 0)
    const vm = f32x4.splat(mNew);
    for (let j = 0; j < cols; j += 4) {
      const ptr = s + (<usize>j << 2);
      const r = f32x4.div(v128.load(ptr), vm); // a division: 1/m overflows for a subnormal m
      const q = f32x4.mul(r, r);
      v128.store(ptr, q);
      vsum = f32x4.add(vsum, q);
    }
  }
  const ratio: f32 = mNew == 0 ? 1 : mOld / mNew;
  const corr = ratio * ratio;
  store<f32>(rowCorr, corr);
  store<f32>(rowSum, load<f32>(rowSum) * corr + hsum(vsum));
  store<f32>(rowMax, mNew);
}

/** The non-softmax activations of one score vector (masking is applied by the caller). */
// @ts-ignore: decorator
@inline function mapScore(x: v128, activation: i32, param: f32, power: i32): v128 {
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
 * 1 / the row's denominator: Σp for softmax, Σ(s/m)² + ε/m² for squared (m = rowMax, the largest |s|), 1
 * otherwise; 0 for a zero denominator.
 */
export function rowScale(p: Params, sum: f32, rowMax: f32): f32 {
  const activation = p.activation;
  if (activation == ACT_SOFTMAX || activation == ACT_SOFTMAX1) return sum == 0 ? 0 : <f32>1 / sum;
  if (activation == ACT_SQUARED) {
    // Nothing admissible, or every score exactly 0: zeros (ε / 0² would be ∞, or 0/0 with ε = 0).
    if (rowMax == 0) return 0;
    const d = sum + p.param / rowMax / rowMax; // ε/m² in two divisions: m² alone may underflow or overflow
    return d == 0 ? 0 : <f32>1 / d;
  }
  return 1;
}

/**
 * Weights mode (every key in one block): p ← p / denominator in place, so the P·V product yields the output
 * directly, and the row copied to `weights` (S apart); the accumulator restarts from zero (corr 0).
 */
export function normaliseAndStore(
  p: Params, sBuf: usize, sStride: usize, rows: i32, cols: i32, rowMax: usize, rowSum: usize, rowCorr: usize, weights: usize,
): void {
  const S = p.S;
  for (let r = 0; r < rows; r++) {
    const inv = f32x4.splat(rowScale(p, load<f32>(rowSum + (<usize>r << 2)), load<f32>(rowMax + (<usize>r << 2))));
    const row = sBuf + <usize>r * sStride;
    for (let j = 0; j < cols; j += 4) {
      v128.store(row + (<usize>j << 2), f32x4.mul(v128.load(row + (<usize>j << 2)), inv));
    }
    memory.copy(weights + (<usize>r * <usize>S << 2), row, <usize>cols << 2);
    store<f32>(rowCorr + (<usize>r << 2), 0);
  }
}
