// The flash-attention driver. A call is a list of work items, one per (batch, query head, block of BR query
// rows); `attention` runs a range of them, so threads share a call by claiming items, and packs each kv head's
// keys and values once per thread. block.ts sweeps a block's keys in blocks of BC: scores go to a BR×BC scratch,
// the score stage (score.ts, score4.ts) turns them into weights against a running row max, and they are
// multiplied straight into a BR×Dv accumulator. Extra memory is O(S·D)
// for the packed keys plus O(BR·(BC + Dv)); the seqQ × seqK score matrix exists only when the caller asks for
// the weights.
import { BC, BR, DTYPE_FLOAT16, MASK_BOOL_U8, Params } from "./params.generated";
import { finiteBound } from "./range";
import { ceil8, x32_packk_8, x32_packv_8, x32_padv_8 } from "./pack";
import { x16_packk_8, x16_padv_8 } from "./pack16";
import { keyMaxAt, kvHeadBytes } from "./kvcache";
import { typedScratchBytes } from "./kvtypes";
import { attendBlock } from "./block";

/** Bytes of scratch one thread needs for a call, as f64 so huge shapes report a size instead of wrapping. */
export function scratchBytes(params: usize): f64 {
  const p = changetype<Params>(params);
  const S = p.S, D = p.D, Dv = p.Dv, resident = p.resident != 0;
  const dv8 = <f64>ceil8(Dv);
  const keys = resident ? 0.0 : <f64>ceil8(S) * <f64>D;
  const values = padsValues(p) || panelValues(p) ? <f64>S * dv8 : 0.0;
  const R = <f64>blockRows(p); // one query row needs one row of scores, not BR
  const block = scoreFloats(p) + R * dv8 + <f64>(4 * BR) + R * <f64>D; // 4·BR: row max, sum, corr, ε
  return 4.0 * (keys + values + block + <f64>biasLength(p)) + typedScratchBytes(p);
}

/**
 * Whether v is copied to padded float32 rows: Dv not a multiple of 8, or a float16 tensor (decoded there), when
 * it is not packed into panels (panelValues).
 */
// @ts-ignore: decorator
@inline function padsValues(p: Params): bool {
  return p.resident == 0 && !panelValues(p) && ((p.Dv & 7) != 0 || p.vInType == DTYPE_FLOAT16);
}

/**
 * Whether values are packed into 8-column panels [ceil8(Dv)/8][S][8] (x32_packv_8) rather than read as rows: then
 * an f32-pv tile streams 32 contiguous bytes per key instead of touching a new cache line of a full value row for
 * each (PV at 83 % of peak on S3 with rows). Calls of at least PANEL_V_ROWS query rows, so the pack is paid back.
 * A float16 v tensor is decoded to padded float32 rows instead (padsValues): x32_packv_8 reads float32 only.
 */
// @ts-ignore: decorator
@inline function panelValues(p: Params): bool {
  return p.resident == 0 && p.L >= PANEL_V_ROWS && p.vInType != DTYPE_FLOAT16;
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

/**
 * Which (batch, kv head) has its keys (and padded values) in this instance's scratch, or −1; max |k| and |v| of its
 * finite keys and values (range.ts; +∞: not known).
 */
let packedKv: i32 = -1;
let packedKmax: f32 = 0;
let packedVmax: f32 = Infinity;

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
  const padV = padsValues(p);
  const R = <usize>blockRows(p); // rows of the largest block (scratchBytes)
  const sBuf = vpad + (padV || panelV ? <usize>S * <usize>dv8 << 2 : 0);
  const acc = sBuf + (<usize>scoreFloats(p) << 2); // fits: the host reserved scratchBytes
  const rowState = acc + (R * <usize>dv8 << 2);
  const qpack = rowState + (<usize>(4 * BR) << 2);
  const bias = qpack + (R * <usize>D << 2);
  // Element sizes (float32, or binary16 tensors) and row strides in bytes: (B, seq, heads, dim) rows of one
  // head are `heads` rows apart.
  const qElt: usize = p.qType == DTYPE_FLOAT16 ? 2 : 4, oElt: usize = p.outType == DTYPE_FLOAT16 ? 2 : 4;
  const kElt: usize = p.kInType == DTYPE_FLOAT16 ? 2 : 4, vElt: usize = p.vInType == DTYPE_FLOAT16 ? 2 : 4;
  const qStride = <usize>(bshd ? H * D : D) * qElt;
  const oStride = <usize>(bshd ? H * Dv : Dv) * oElt;
  const kStride = <usize>(bshd && !resident ? KVH * D : D) * kElt;
  const vRowStride = <usize>(bshd && !resident ? KVH * Dv : Dv) * vElt;
  const vStride: usize = panelV ? 32 : padV || resident ? <usize>dv8 << 2 : vRowStride;
  const vPanel: usize = panelV ? <usize>S << 5 : 32; // bytes between 8-column groups of values
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
    let kmax: f32 = 0, vmax: f32 = Infinity; // of the finite keys and values (range.ts)
    if (resident) {
      // The cache head: batch row b reads cache row cacheRows[b] (ragged batches), else row b.
      head = (p.cacheRows != 0 ? load<i32>(p.cacheRows + (<usize>b << 2)) : b) * KVH + kvh;
      kSrc = p.k + <usize>head * <usize>kvHeadBytes(p, 0);
      vSrc = p.v + <usize>head * <usize>kvHeadBytes(p, 1);
      kmax = load<f32>(keyMaxAt(p, p.kScales + <usize>head * <usize>kvHeadBytes(p, 2))); // kvcache.ts writeKey
    } else {
      // First key row of (b, kv head): (B, KVH, S, ·), or (B, S, KVH, ·) with bshd.
      const kvRow0 = bshd ? <usize>b * <usize>S * <usize>KVH + <usize>kvh : <usize>kvIndex * <usize>S;
      kSrc = p.k + kvRow0 * <usize>D * kElt;
      vSrc = p.v + kvRow0 * <usize>Dv * vElt;
      // Items of one kv head are consecutive, so a thread packs each kv head it meets once per call; a binary16
      // k or v is decoded while packing (a binary16 v never goes to panels: panelValues).
      if (kvIndex != packedKv) {
        const km = kElt == 2 ? x16_packk_8(kSrc, kStride, S, D, kpack) : x32_packk_8(kSrc, kStride, S, D, kpack);
        packedKmax = finiteBound(km, kpack, ceil8(S) * D);
        packedVmax = Infinity;
        if (panelV) packedVmax = finiteBound(x32_packv_8(vSrc, vRowStride, S, Dv, vpad), vpad, S * dv8);
        else if (padV) {
          if (vElt == 2) x16_padv_8(vSrc, vRowStride, S, Dv, vpad);
          else x32_padv_8(vSrc, vRowStride, S, Dv, vpad);
        }
        packedKv = kvIndex;
      }
      kSrc = kpack;
      kmax = packedKmax;
      vmax = packedVmax;
      if (padV || panelV) vSrc = vpad;
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
      kSrc, vSrc, vStride, vPanel, (rows < 4 || grouping) && weights == 0 ? decodeWidth(S, rows) : bw,
      mask, grouping ? p.msH : p.msL, maskElt, weights != 0 ? weights + (row0 * <usize>S << 2) : 0,
      sBuf, acc, rowState, qpack, bias, head, bias + (<usize>biasLength(p) << 2), kmax, vmax,
    );
  }
}
