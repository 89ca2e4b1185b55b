// The JS backend's KV cache: per (row, kv head) — a "head" — `slots` token rows of keys and values, token t in
// slot t mod slots, stored as float32, binary16 bits or int8 with one float32 scale per (token, block of 32
// channels), rounded exactly as the wasm kernels round them. attentionRows (attention.ts) reads it through a
// CacheView, converting one row at a time as it goes.
import { AttentionError } from '../errors.js';
import { decodeHalves, halfBits, halfToNumber, isHalfTensor, numberToCacheHalf, numberToHalf, roundEven } from '../half.js';
import { DTYPE_FLOAT16, DTYPE_FLOAT32 } from '../params.generated.js';
import { allocateOutput, overlaps, unchangedArguments, weightsLength } from '../plan.js';
import { KV_ATTEND_OPTIONS, nonFiniteMessage, planAppend, planAttend, planKVCache, readAppendOptions, resetLengths } from '../plan-kv.js';
import type { KVCacheShape } from '../plan-kv.js';
import { readOptions } from '../plan-util.js';
import { rotated } from '../rope.js';
import type { AttentionTensor, AttentionWithWeights, KVAppendOptions, KVAttendOptions, KVCache, KVCacheOptions } from '../types.js';
import { attentionRows } from './attention.js';
import { setElements, viewLength } from '../views.js';

/** How attentionRows reads a cache: scores and weighted values of keys lo … hi − 1 of a head. */
export interface CacheView {
  /** Cache row of each batch entry, or null for rows 0 … batch − 1. */
  readonly rows: Int32Array | null;
  /** s[j] = q_row · k_j (q row at qRow of q). */
  dots(s: Float64Array, q: Float32Array, qRow: number, head: number, lo: number, hi: number): void;
  /** o = Σ p_j v_j. */
  weightedSum(o: Float64Array, p: Float64Array, head: number, lo: number, hi: number): void;
}

const QBLOCK = 32;

/** One kind of row storage (keys or values): width channels per token, in a dtype. */
class Rows {
  readonly data: Float32Array | Uint16Array | Int8Array;
  readonly scales: Float32Array | null;
  readonly blocks: number;

  constructor(readonly dtype: number, readonly width: number, readonly slots: number, heads: number) {
    const n = heads * slots * width;
    this.blocks = Math.ceil(width / QBLOCK);
    try {
      this.data = dtype === DTYPE_FLOAT32 ? new Float32Array(n) : dtype === DTYPE_FLOAT16 ? new Uint16Array(n) : new Int8Array(n);
      this.scales = dtype === DTYPE_FLOAT32 || dtype === DTYPE_FLOAT16 ? null : new Float32Array(heads * slots * this.blocks);
    } catch (cause) {
      throw new AttentionError('OUT_OF_MEMORY', `cannot allocate a KV cache of ${slots} tokens (${String(cause)})`, 'options.capacity');
    }
  }

  get bytes(): number {
    return this.data.byteLength + (this.scales?.byteLength ?? 0);
  }

  /** Stores x[at … at + width) as token `slot` of `head`. */
  write(head: number, slot: number, x: Float32Array, at: number): void {
    const w = this.width, row = (head * this.slots + slot) * w;
    if (this.dtype === DTYPE_FLOAT32) {
      // element by element: x may be the caller's array, whose subarray (species, or its own) could run its code
      const data = this.data as Float32Array;
      for (let c = 0; c < w; c++) data[row + c] = x[at + c]!;
    } else if (this.dtype === DTYPE_FLOAT16) {
      for (let c = 0; c < w; c++) this.data[row + c] = numberToCacheHalf(x[at + c]!);
    } else {
      for (let b = 0; b < this.blocks; b++) {
        const from = b * QBLOCK, to = Math.min(w, from + QBLOCK);
        let amax = 0;
        for (let c = from; c < to; c++) amax = Math.max(amax, Math.abs(x[at + c]!));
        const scale = Math.fround(amax / 127); // float32 division, as the kernels
        this.scales![(head * this.slots + slot) * this.blocks + b] = scale;
        for (let c = from; c < to; c++) {
          this.data[row + c] = scale === 0 ? 0 : Math.max(-127, Math.min(127, roundEven(Math.fround(x[at + c]! / scale))));
        }
      }
    }
  }

  /** Token `slot` of `head` as numbers into `into` (width of them). */
  read(head: number, slot: number, into: Float64Array): Float64Array {
    const w = this.width, t = head * this.slots + slot, row = t * w;
    if (this.dtype === DTYPE_FLOAT32) for (let c = 0; c < w; c++) into[c] = this.data[row + c]!;
    else if (this.dtype === DTYPE_FLOAT16) for (let c = 0; c < w; c++) into[c] = halfToNumber(this.data[row + c]!);
    else for (let c = 0; c < w; c++) into[c] = this.data[row + c]! * this.scales![t * this.blocks + Math.floor(c / QBLOCK)]!;
    return into;
  }
}

/** A view of keys and values for attentionRows, with `rows` mapping batch entries to cache rows. */
function viewOf(keys: Rows, values: Rows, rows: Int32Array | null): CacheView {
  const kRow = new Float64Array(keys.width), vRow = new Float64Array(values.width);
  const slots = keys.slots;
  return {
    rows,
    dots(s, q, qRow, head, lo, hi) {
      for (let j = lo; j < hi; j++) {
        keys.read(head, j % slots, kRow);
        let dot = 0;
        for (let d = 0; d < kRow.length; d++) dot += q[qRow + d]! * kRow[d]!;
        s[j] = dot;
      }
    },
    weightedSum(o, p, head, lo, hi) {
      o.fill(0);
      for (let j = lo; j < hi; j++) {
        const pj = p[j]!;
        values.read(head, j % slots, vRow);
        for (let c = 0; c < vRow.length; c++) o[c] = o[c]! + pj * vRow[c]!;
      }
    },
  };
}

/** Every element finite (by index: no method of a caller's array runs). */
function allFinite(x: Float32Array): boolean {
  const n = viewLength(x);
  for (let i = 0; i < n; i++) if (!Number.isFinite(x[i]!)) return false;
  return true;
}

/** A float32 copy of a float32 or 16-bit tensor (the JS backend reads numbers). */
const asFloat32 = (x: unknown): Float32Array => (isHalfTensor(x) ? decodeHalves(halfBits(x)) : (x as Float32Array));

/** A KV cache in plain JS memory (see KVCacheShape); `engineAlive` throws once the engine is disposed. */
export function createJsKVCache(options: KVCacheOptions, engineAlive: () => void, arrayOf: (x: unknown, name: string) => unknown): KVCache {
  const shape: KVCacheShape = planKVCache(options);
  const { batch, kvHeads, headDim, headDimV, capacity, rope, dtypeCode } = shape;
  const keys = new Rows(dtypeCode, headDim, capacity, batch * kvHeads);
  const values = new Rows(dtypeCode, headDimV, capacity, batch * kvHeads);
  const lengths = new Int32Array(batch);
  let disposed = false;
  const alive = () => {
    if (disposed) throw new AttentionError('DISPOSED', 'this KV cache was disposed');
    engineAlive();
  };

  function append(k: AttentionTensor, v: AttentionTensor, raw?: KVAppendOptions): void {
    const options = readAppendOptions(raw);
    alive();
    const ka = arrayOf(k, 'k'), va = arrayOf(v, 'v');
    const { n, rows, positions } = planAppend(ka, va, options, shape, lengths);
    const kf = asFloat32(ka), vf = asFloat32(va);
    // Keys are stored rotated at their own positions, so attend never rotates the cache again.
    const kr = rope === null ? kf : rotated(kf, rows.length, kvHeads, n, headDim, shape.bshd, rope, positions.map((p) => rope.positionK + p));
    // What is stored must be finite (the rotated keys, as the wasm kernels check them).
    if (dtypeCode !== DTYPE_FLOAT32) {
      for (const [x, name] of [[kr, 'k'], [vf, 'v']] as const) {
        if (!allFinite(x)) throw new AttentionError('INVALID_OPTION', nonFiniteMessage(shape.dtype, rope !== null && name === 'k'), name);
      }
    }
    for (let i = 0; i < rows.length; i++) {
      for (let h = 0; h < kvHeads; h++) {
        const head = rows[i]! * kvHeads + h;
        for (let t = 0; t < n; t++) {
          // token t of (entry i, h): [rows, kvHeads, n, ·], or [rows, n, kvHeads, ·] with 'bshd'
          const src = shape.bshd ? (i * n + t) * kvHeads + h : (i * kvHeads + h) * n + t;
          const slot = (positions[i]! + t) % capacity;
          keys.write(head, slot, kr, src * headDim);
          values.write(head, slot, vf, src * headDimV);
        }
      }
    }
    for (const r of rows) lengths[r]! += n;
  }

  function attend(q: AttentionTensor, raw: KVAttendOptions): Float32Array | AttentionWithWeights {
    const options = readOptions<KVAttendOptions>(raw, KV_ATTEND_OPTIONS);
    alive();
    const qa = arrayOf(q, 'q');
    const outArg = options?.out === undefined ? undefined : arrayOf(options.out, 'options.out');
    const { plan, rows, ropeQ } = planAttend(qa, outArg, options, shape, lengths);
    unchangedArguments(plan, qa as Float32Array, null, null, outArg as Float32Array | undefined);
    let qf = asFloat32(qa);
    if (ropeQ !== null) qf = rotated(qf, plan.batch, plan.heads, plan.seqQ, headDim, plan.layout === 'bshd', ropeQ.rope, ropeQ.first);
    const halfOut = isHalfTensor(outArg);
    const out = halfOut ? new Float32Array(plan.outLength) : allocateOutput(plan.outLength, outArg as Float32Array | undefined);
    const weights = plan.returnWeights ? allocateOutput(weightsLength(plan), undefined, 'options.returnWeights') : null;
    // Rows are written while q and the mask are still being read: an `out` sharing their memory gets the result by copy.
    const aliased = [qf, plan.mask].some((x) => x !== null && overlaps(out, x));
    const target = aliased ? new Float32Array(viewLength(out)) : out;
    attentionRows(target, weights, qf, qf, qf, plan, viewOf(keys, values, rows));
    if (target !== out) setElements(out, target);
    const result = halfOut ? encodeInto(out, outArg) : out;
    return weights === null ? result : { output: result, weights };
  }

  return {
    batch, kvHeads, headDim, headDimV, capacity, dtype: shape.dtype, window: shape.window, bytes: keys.bytes + values.bytes,
    get lengths() {
      return Int32Array.from(lengths);
    },
    get length() {
      return lengths.reduce((m, x) => Math.max(m, x), 0);
    },
    append,
    attend: attend as KVCache['attend'],
    reset(row?: number) {
      alive();
      resetLengths(lengths, row);
    },
    dispose() {
      disposed = true;
    },
  };
}

/** Writes float32 values into a 16-bit `out` (rounded to nearest even) and returns `out`. */
export function encodeInto(values: Float32Array, out: unknown): Float32Array {
  const bits = halfBits(out);
  for (let i = 0; i < values.length; i++) bits[i] = numberToHalf(values[i]!);
  return out as Float32Array;
}
