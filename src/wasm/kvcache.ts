// KV caches of a wasm engine: one long-lived block of engine memory in the kernels' layout (assembly/kvcache.ts:
// keys, values, then int8 scales, for every (row, kv head)), the per-row lengths, and the calls that append to it
// and attend over it. The engine lends its memory management and its attention call (engine.ts).
import { AttentionError } from '../errors.js';
import { decodeHalves, halfBits, isHalfTensor } from '../half.js';
import { DTYPE_FLOAT16, DTYPE_FLOAT32, writeParams } from '../params.generated.js';
import { unchangedLength } from '../plan.js';
import type { AttentionPlan } from '../plan.js';
import { KV_ATTEND_OPTIONS, nonFiniteMessage, planAppend, planAttend, planKVCache, readAppendOptions, resetLengths } from '../plan-kv.js';
import { readOptions } from '../plan-util.js';
import { ropeTable, rotated } from '../rope.js';
import type { Resolved } from '../tensors.js';
import type {
  AttentionTensor, AttentionWithWeights, KVAppendOptions, KVAttendOptions, KVCache, KVCacheOptions,
} from '../types.js';
import type { Heap } from './heap.js';
import type { KernelExports } from './loader.js';
import { emptyParams } from './params.js';
import { bytesOf, viewByteLength, viewLength } from '../views.js';

/** A cache as an attention call reads it (the parameter block's resident fields). */
export interface ResidentCache {
  readonly kPtr: number;
  readonly vPtr: number;
  readonly kScales: number;
  readonly vScales: number;
  /** Slots per (row, kv head), a multiple of 8. */
  readonly capacity: number;
  readonly kType: number;
  readonly vType: number;
  /** Cache row of each batch entry of q, or null for rows 0 … batch − 1. */
  readonly rows: Int32Array | null;
}

/** What a cache needs from its engine. */
export interface CacheHost {
  live(): KernelExports;
  resolve(value: unknown, name: string): Resolved;
  reserve(kx: KernelExports, end: number): ArrayBuffer;
  allocateBlock(kx: KernelExports, bytes: number): number;
  tooBig(end: number): AttentionError;
  readonly heap: Heap;
  readonly paramsPtr: number;
  readonly maxBytes: number;
  attend(
    kx: KernelExports, q: Resolved, out: Resolved | null, plan: AttentionPlan, options: { out?: unknown }, resident: ResidentCache,
  ): Float32Array | AttentionWithWeights;
  /** The cache is disposed: the engine stops tracking it. */
  forget(cache: object): void;
  /** Whether the engine still holds its memory. */
  alive(): boolean;
}

const align16 = (n: number) => Math.ceil(n / 16) * 16;
const typeOf = (x: unknown) => (isHalfTensor(x) ? DTYPE_FLOAT16 : DTYPE_FLOAT32);

/** A KV cache in the memory of the engine `host`. */
export function createWasmKVCache(host: CacheHost, options: KVCacheOptions): KVCache & { invalidate(): void } {
  const kx0 = host.live();
  const shape = planKVCache(options);
  const { batch, kvHeads, headDim, headDimV, dtypeCode, rope } = shape;
  // Slots per head: whole 8-key panels (float32) or 32-key super-panels (float16, int8), so no block wraps mid-panel.
  const unit = dtypeCode === DTYPE_FLOAT32 ? 8 : 32;
  const slots = Math.ceil(shape.capacity / unit) * unit;
  if (slots > 2 ** 31 - 1) throw host.tooBig(Infinity);
  // Per-head sizes from the kernels' own layout, then the block: [keys | values | key scales | value scales].
  const described = { ...emptyParams(), D: headDim, Dv: headDimV, capacity: slots, kType: dtypeCode, vType: dtypeCode };
  writeParams(kx0.memory.buffer, host.paramsPtr, described);
  const heads = batch * kvHeads;
  const parts = [0, 1, 2, 3].map((part) => align16(heads * kx0.kvLayout(host.paramsPtr, part)));
  const bytes = parts.reduce((a, b) => a + b, 0);
  if (host.heap.topAfter(bytes) > host.maxBytes) throw host.tooBig(host.heap.top + bytes);
  const base = host.allocateBlock(kx0, bytes);
  // Zeroed: slots not yet written hold 0 (finite), which the int8 kernels may read past a block's last key.
  new Uint8Array(kx0.memory.buffer, base, bytes).fill(0);
  const kCache = base, vCache = kCache + parts[0]!, kScales = vCache + parts[1]!, vScales = kScales + parts[2]!;
  const resident = { kPtr: kCache, vPtr: vCache, kScales, vScales, capacity: slots, kType: dtypeCode, vType: dtypeCode };

  const lengths = new Int32Array(batch);
  let disposed = false;
  const alive = () => {
    if (disposed) throw new AttentionError('DISPOSED', 'this KV cache was disposed');
    return host.live();
  };

  function append(k: AttentionTensor, v: AttentionTensor, raw?: KVAppendOptions): void {
    const options = readAppendOptions(raw);
    const kx = alive();
    const rk = host.resolve(k, 'k');
    const rv = host.resolve(v, 'v');
    const { n, rows, positions } = planAppend(rk.array, rv.array, options, shape, lengths);
    const kArray = rk.array as Float32Array, vArray = rv.array as Float32Array;
    // Taken before the append grows memory, which would detach a view in place (k or v inside a tensor) to length 0.
    // From the internal slots (src/views.ts), as validation took it.
    const kLength = viewLength(kArray);
    // The call's arena: [k | v | rows | positions | RoPE tables | scratch]. With RoPE the new keys are rotated (at
    // their positions in their rows) in a float32 copy of their own.
    let end = align16(host.heap.top);
    const region = (b: number) => {
      const at = end;
      end = align16(end + b);
      return at;
    };
    const kPtr = rope !== null ? region(kLength * 4) : rk.inPlace ?? region(viewByteLength(kArray));
    const vPtr = rv.inPlace ?? region(viewByteLength(vArray));
    const rowsPtr = region(rows.byteLength), positionsPtr = region(positions.byteLength);
    const tables = rope === null ? [] : Array.from(positions, (p) => ropeTable(rope, rope.positionK + p, n));
    const tableBytes = tables[0]?.byteLength ?? 0;
    const tablePtr = region(tableBytes * tables.length);
    const scratchPtr = region((headDim + headDimV) * 4);
    const buffer = host.reserve(kx, end);
    const u8 = new Uint8Array(buffer);
    const put = (at: number, x: ArrayBufferView) => u8.set(bytesOf(x), at);
    if (rope !== null) { // a float32 copy of k to rotate; keys in place are read by offset in the current buffer
      const f = new Float32Array(buffer, kPtr, kLength);
      const half = isHalfTensor(kArray);
      if (rk.inPlace !== null) {
        if (half) decodeHalves(new Uint16Array(buffer, rk.inPlace, kLength), f);
        else f.set(new Float32Array(buffer, rk.inPlace, kLength));
      } else if (half) decodeHalves(halfBits(kArray), f);
      else f.set(kArray);
    } else if (rk.inPlace === null) put(kPtr, isHalfTensor(kArray) ? halfBits(kArray) : kArray);
    if (rv.inPlace === null) put(vPtr, isHalfTensor(vArray) ? halfBits(vArray) : vArray);
    put(rowsPtr, rows);
    put(positionsPtr, positions);
    tables.forEach((t, i) => put(tablePtr + i * tableBytes, t));
    writeParams(buffer, host.paramsPtr, {
      ...emptyParams(), k: kPtr, v: vPtr, B: rows.length, KVH: kvHeads, S: n, D: headDim, Dv: headDimV,
      capacity: slots, kType: dtypeCode, vType: dtypeCode, kScales, vScales, cacheRows: rowsPtr,
      cacheK: kCache, cacheV: vCache, cachePositions: positionsPtr, bshd: shape.bshd ? 1 : 0,
      ropeDims: rope?.dims ?? 0, ropeInterleaved: rope?.interleaved ? 1 : 0,
      kInType: rope !== null ? DTYPE_FLOAT32 : typeOf(kArray), vInType: typeOf(vArray),
    });
    if (rope !== null) kx.ropeInPlace(host.paramsPtr, kPtr, kvHeads, n, tablePtr, tableBytes);
    const refused = kx.kvAppend(host.paramsPtr, scratchPtr);
    if (refused !== 0) {
      throw new AttentionError('INVALID_OPTION', nonFiniteMessage(shape.dtype, rope !== null && refused === 1), refused === 1 ? 'k' : 'v');
    }
    for (const r of rows) lengths[r]! += n;
  }

  function attend(q: AttentionTensor, raw: KVAttendOptions): Float32Array | AttentionWithWeights {
    const options = readOptions<KVAttendOptions>(raw, KV_ATTEND_OPTIONS);
    const kx = alive();
    let rq = host.resolve(q, 'q');
    const ro = options?.out === undefined ? null : host.resolve(options.out, 'options.out');
    let { plan, rows, ropeQ } = planAttend(rq.array, ro?.array, options, shape, lengths);
    if (rq.inPlace === null) unchangedLength(rq.array as Float32Array, plan.batch * plan.heads * plan.seqQ * headDim, 'q'); // RoPE reads it first
    if (ropeQ !== null) {
      // Query row i of batch entry b is rotated at its row's position (first[b] + i), here, once per call.
      const x = rq.array as Float32Array;
      const values = isHalfTensor(x) ? decodeHalves(halfBits(x)) : rq.inPlace === null ? x : new Float32Array(kx.memory.buffer, rq.inPlace, viewLength(x));
      const r = rotated(values, plan.batch, plan.heads, plan.seqQ, headDim, plan.layout === 'bshd', ropeQ.rope, ropeQ.first);
      rq = { array: r, inPlace: null };
      plan = { ...plan, types: { ...plan.types, q: DTYPE_FLOAT32 } };
    }
    return host.attend(kx, rq, ro, plan, options, { ...resident, rows });
  }

  function reset(row?: number): void {
    alive();
    resetLengths(lengths, row);
  }

  const cache = {
    batch, kvHeads, headDim, headDimV, capacity: shape.capacity, dtype: shape.dtype, window: shape.window, bytes,
    get lengths() {
      return Int32Array.from(lengths);
    },
    get length() {
      return lengths.reduce((m, x) => Math.max(m, x), 0);
    },
    append,
    attend: attend as KVCache['attend'],
    reset,
    dispose() {
      if (disposed) return;
      disposed = true;
      host.forget(cache);
      if (host.alive()) host.heap.release(base, bytes);
    },
    invalidate() {
      disposed = true;
    },
  };
  return cache;
}
