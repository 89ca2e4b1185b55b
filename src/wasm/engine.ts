// An engine over one wasm instance. Its linear memory holds, from heapBase():
//   [long-lived blocks: alloc() tensors, KV caches (heap.ts) | per-call arena]
// The arena is laid out afresh by every call ([q | k | v | mask | out | weights | scratch], skipping tensors
// already in place) and memory grows only when a call needs more than any call before it, so repeated calls
// never grow it again. Growing detaches the old ArrayBuffer (a shared memory instead hands out a new
// SharedArrayBuffer object for the same memory): views are created after any growth. Each call is
// described to the kernels by one parameter block (src/params.generated.ts), a long-lived block of the engine
// written once the call's pointers are known; threads read the same block from the shared memory.
import { AttentionError } from '../errors.js';
import { allocateOutput, attentionOptions, dimension, isFloat32Array, isUint8Array, planAttention, weightsLength } from '../plan.js';
import type { AttentionPlan } from '../plan.js';
import { EngineTensor, resolveArgument } from '../tensors.js';
import type { Resolved } from '../tensors.js';
import type {
  AttentionEngine, AttentionOptions, AttentionWithWeights, KVAttendOptions, KVCache, KVCacheOptions, TensorInput,
} from '../types.js';
import { Heap } from './heap.js';
import type { KernelExports, WasmVariant } from './loader.js';
import { DTYPE_FLOAT16, DTYPE_FLOAT32, PARAMS_BYTES, ParamsBlock } from '../params.generated.js';
import { setAttentionParams } from './params.js';
import { createLinearOps } from './linear.js';
import { ropeTable } from '../rope.js';
import { splitPolicy } from './pool.js';
import type { ThreadPool } from './pool.js';
import { createWasmKVCache } from './kvcache.js';
import type { ResidentCache } from './kvcache.js';
import { decodeHalves, halfBits, isFloat16Array, isHalfTensor } from '../half.js';
import { engineCheckOf, registerEngineBuffer, setElements, viewBuffer, viewByteLength, viewByteOffset, viewLength } from '../views.js';

const PAGE_BYTES = 65536;
/** wasm32 addresses 2^32 bytes. */
export const WASM32_MAX_BYTES = 2 ** 32;
const I32_MAX = 2 ** 31 - 1;
const NO_INPUTS: readonly Resolved[] = [];

const align16 = (n: number) => Math.ceil(n / 16) * 16;
const isShared = (b: ArrayBufferLike) => Object.prototype.toString.call(b) === '[object SharedArrayBuffer]';
const Float16 = (globalThis as { Float16Array?: new (b: ArrayBufferLike, at: number, n: number) => ArrayBufferView }).Float16Array;
const fitsI32 = (...dims: number[]) => dims.every((d) => d <= I32_MAX);

/**
 * Validates `maxMemoryBytes` of createAttention: wasm memory grows in 64 KiB pages, so the cap is rounded down to
 * a whole page (at least one) and the engine never holds more than the cap.
 */
export function memoryLimit(value: unknown): number {
  if (value === undefined) return WASM32_MAX_BYTES;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < PAGE_BYTES) {
    throw new AttentionError('INVALID_OPTION', `must be a number of bytes ≥ ${PAGE_BYTES} (one wasm page), got ${String(value)}`,
      'options.maxMemoryBytes');
  }
  return Math.floor(Math.min(value, WASM32_MAX_BYTES) / PAGE_BYTES) * PAGE_BYTES;
}

/** Floating-point operations of an attention call, 2·B·H·L·S·(D + Dv), halved for causal (the threads' cost model). */
function callFlops(p: AttentionPlan): number {
  return 2 * p.batch * p.heads * p.seqQ * p.seqK * (p.headDim + p.headDimV) * (p.causal ? 0.5 : 1);
}

/** Byte offsets of one call's arena regions; `end` is checked before anything is written. */
class Layout {
  end: number;
  constructor(base: number) {
    this.end = align16(base);
  }
  region(bytes: number): number {
    const at = this.end;
    this.end = align16(this.end + bytes);
    return at;
  }
  /** An input's offset: in place, or a fresh region it will be copied to. */
  input(arg: Resolved, bytes: number): number {
    return arg.inPlace ?? this.region(bytes);
  }
  /** A region for a small per-call array (the plan's own copies), or 0 for none. */
  small(x: ArrayBufferView | null): number {
    return x === null ? 0 : this.region(viewByteLength(x));
  }
}

/**
 * Threaded engines dropped without dispose(): their workers (OS threads, each holding the shared memory) are
 * stopped once the engine is garbage-collected. The registry holds only the pool, never the engine.
 */
const unreachable = typeof FinalizationRegistry === 'function'
  ? new FinalizationRegistry<ThreadPool>((pool) => pool.stop()) : null;

/**
 * An engine on the kernels `initial`; with a `pool`, attention calls are shared among its threads (`initial` is then
 * an instance of a threaded build on the pool's shared memory) and every thread gets its own scratch region.
 */
export function createWasmEngine(
  initial: KernelExports, backend: WasmVariant, maxBytes: number, pool: ThreadPool | null = null,
): AttentionEngine {
  const threads = pool?.threads ?? 1;
  let kernels: KernelExports | null = initial;
  const heap = new Heap(initial.heapBase());
  const tensors = new Map<number, EngineTensor>();
  const caches = new Set<object>();
  const self = {};
  if (initial.paramsBytes() !== PARAMS_BYTES) throw new Error('wasm-attention: kernel binary and host disagree on the parameter block');
  /**
   * Every buffer object of this engine's memory a view can be over is registered with this engine's check
   * (views.ts), so options the plans copy are checked like tensors. A non-shared memory detaches its old buffer
   * when it grows, so only the current one counts (a detached view is refused by validation). A shared memory
   * never detaches: growing it hands out a new SharedArrayBuffer object for the same memory, and views over the
   * old objects still reach it at the same offsets, so every registered object counts. The object changes only
   * when memory grows, and the engine grows it only in reserve(), which registers the new one.
   */
  const shared = isShared(initial.memory.buffer);
  const checkView = (view: ArrayBufferView, name: string): void => void locate(view, name);
  let current: ArrayBuffer | null = null;
  function bufferOf(kx: KernelExports): ArrayBuffer {
    const buffer = kx.memory.buffer;
    if (buffer !== current) {
      current = buffer;
      registerEngineBuffer(buffer, checkView);
    }
    return buffer;
  }
  bufferOf(initial);
  const paramsPtr = allocateBlock(initial, PARAMS_BYTES);

  function live(): KernelExports {
    if (kernels === null) throw new AttentionError('DISPOSED', 'this engine was disposed');
    return kernels;
  }

  function tooBig(end: number): AttentionError {
    return new AttentionError('OUT_OF_MEMORY',
      `this needs ${end} bytes of wasm memory, more than the limit of ${maxBytes} bytes` +
      (maxBytes === WASM32_MAX_BYTES ? ' (wasm32 addresses at most 4 GiB)' : ' (maxMemoryBytes)'));
  }

  /** Refuses an end offset that cannot fit, then grows memory to reach it; returns the current buffer. */
  function reserve(kx: KernelExports, end: number): ArrayBuffer {
    if (end > maxBytes) throw tooBig(end);
    const memory = kx.memory;
    const have = memory.buffer.byteLength;
    if (end > have) {
      try {
        memory.grow(Math.ceil((end - have) / PAGE_BYTES));
      } catch (cause) {
        throw new AttentionError('OUT_OF_MEMORY', `the runtime refused to grow wasm memory to ${end} bytes (${String(cause)})`);
      }
    }
    return bufferOf(kx);
  }

  /** A long-lived block: checked against the limit and grown into before the heap changes. */
  function allocateBlock(kx: KernelExports, bytes: number): number {
    const top = heap.topAfter(bytes);
    reserve(kx, top);
    return heap.allocate(bytes);
  }

  /**
   * The byte offset of a view of this engine's memory (of any element type: float32, 16-bit, a Uint8Array mask),
   * or null for any other array. A view must lie inside a live tensor: anything else would read arena memory of an
   * earlier call (stale) or freed memory. The view's real buffer, offset and length decide (src/views.ts).
   */
  function locate(view: ArrayBufferView, name: string): number | null {
    if (kernels === null) return null;
    const buffer = viewBuffer(view);
    if (buffer !== bufferOf(kernels) && !(shared && engineCheckOf(buffer) === checkView)) return null;
    const start = viewByteOffset(view), end = start + viewByteLength(view);
    for (const t of tensors.values()) {
      if (start >= t.byteOffset && end <= t.byteOffset + t.length * 4) return start;
    }
    throw new AttentionError('INVALID_TYPE',
      'is a view of engine memory outside any live tensor (it would read memory the engine reuses): use a tensor from alloc() or a copy', name);
  }

  const resolve = (value: unknown, name: string) => resolveArgument(value, name, self, locate);

  /**
   * Whole-memory views of `buffer` (the memory's current buffer), made again only when memory has grown: a call
   * copies through them by offset instead of creating views of its own.
   */
  let views: { buffer: ArrayBufferLike | null; u8: Uint8Array; i32: Int32Array; f32: Float32Array } =
    { buffer: null, u8: new Uint8Array(0), i32: new Int32Array(0), f32: new Float32Array(0) };
  function viewsOf(buffer: ArrayBufferLike) {
    if (views.buffer !== buffer) views = { buffer, u8: new Uint8Array(buffer), i32: new Int32Array(buffer), f32: new Float32Array(buffer) };
    return views;
  }

  /**
   * Copies an argument to `at`. With `rotated` (its element count, taken before the call grew memory) the argument
   * gets a float32 copy of its own that RoPE rotates: a tensor already in engine memory is copied too, a 16-bit one
   * decoded. Without it an argument in place is left where it is, and a 16-bit one is copied as its bits.
   */
  function copyIn(
    buffer: ArrayBufferLike, at: number, arg: Resolved | Float32Array | Uint8Array | Int32Array, rotated: number | null = null,
  ): void {
    const { u8, i32, f32 } = viewsOf(buffer);
    if (!ArrayBuffer.isView(arg)) {
      if (arg.inPlace !== null) {
        // Memory may have grown since the view was taken (a detached view reads as length 0): the tensor is read
        // by offset in the current buffer.
        if (rotated === null) return;
        const from = arg.inPlace;
        if (isHalfTensor(arg.array)) decodeHalves(new Uint16Array(buffer, from, rotated), f32.subarray(at >> 2, (at >> 2) + rotated) as Float32Array<ArrayBuffer>);
        else f32.copyWithin(at >> 2, from >> 2, (from >> 2) + rotated);
        return;
      }
      arg = arg.array as Float32Array;
    }
    if (isFloat32Array(arg)) f32.set(arg, at >> 2);
    else if (isUint8Array(arg)) u8.set(arg, at);
    else if (isHalfTensor(arg)) {
      const bits = halfBits(arg), n = viewLength(bits);
      if (rotated !== null) decodeHalves(bits, f32.subarray(at >> 2, (at >> 2) + n) as Float32Array<ArrayBuffer>);
      else new Uint16Array(buffer, at, n).set(bits);
    } else i32.set(arg, at >> 2);
  }

  /**
   * Where the kernel writes its output: straight into an in-place `out` tensor unless that overlaps an in-place
   * input (then through the arena and a copy), else an arena region copied out to the returned array.
   */
  function outputTarget(out: Resolved | null, layout: Layout, bytes: number, inputs: readonly Resolved[]) {
    if (out !== null && out.inPlace !== null) {
      const o = out.inPlace;
      const clash = inputs.some((x) => x.inPlace !== null && x.inPlace < o + bytes && o < x.inPlace + viewByteLength(x.array as Float32Array));
      if (!clash) return { ptr: o, inPlace: true };
    }
    return { ptr: layout.region(bytes), inPlace: false };
  }

  /** The array an output is copied to after the run (allocated before anything is written), or null when the
   * output lands in engine memory (an in-place `out`). */
  function outputArray(out: Resolved | null, length: number): Float32Array | null {
    if (out === null) return allocateOutput(length, undefined);
    return out.inPlace === null ? (out.array as Float32Array) : null;
  }

  /** `out` as the caller sees it after the call: a view of the same elements and type in the current buffer,
   * should the call have grown memory (which detaches every earlier view of a non-shared memory). */
  function outView(buffer: ArrayBufferLike, out: Resolved, outArg: unknown, length: number): Float32Array {
    if (EngineTensor.is(outArg)) return outArg.array;
    if (shared || viewBuffer(outArg as ArrayBufferView) === buffer) return outArg as Float32Array;
    if (!isHalfTensor(outArg)) return new Float32Array(buffer, out.inPlace!, length);
    const half = isFloat16Array(outArg) && Float16 !== undefined ? new Float16(buffer, out.inPlace!, length) : new Uint16Array(buffer, out.inPlace!, length);
    return half as unknown as Float32Array; // (callers hold 16-bit tensors as Float32Array)
  }

  /** The call's result: the filled array, or for an `out` in engine memory `out` itself (see outView). */
  function deliver(
    kx: KernelExports, target: { ptr: number; inPlace: boolean }, out: Resolved | null, outArg: unknown,
    result: Float32Array | null, length: number,
  ): Float32Array {
    const buffer = kx.memory.buffer;
    if (target.inPlace) return outView(buffer, out!, outArg, length);
    const dst = result ?? outView(buffer, out!, outArg, length);
    if (!isFloat32Array(dst) && isHalfTensor(dst)) { // a 16-bit out
      setElements(halfBits(dst), new Uint16Array(buffer, target.ptr, length));
      return dst;
    }
    const f32 = viewsOf(buffer).f32;
    const from = target.ptr >> 2;
    if (length <= 256) { // a loop is cheaper than a view for a few rows (decode steps, tiny calls)
      for (let i = 0; i < length; i++) dst[i] = f32[from + i]!;
    } else {
      setElements(dst, f32.subarray(from, from + length));
    }
    return dst;
  }

  /** The call's parameter block, mirrored in JS and copied into wasm memory at paramsPtr once its pointers are known. */
  const block = new ParamsBlock();

  function runAttention(
    kx: KernelExports, q: Resolved, k: Resolved | null, v: Resolved | null, out: Resolved | null,
    plan: AttentionPlan, options: { out?: unknown }, resident: ResidentCache | null,
  ): Float32Array | AttentionWithWeights {
    const { heads: H, kvHeads: KVH, seqQ: L, seqK: S, headDim: D, headDimV: Dv, mask, rope } = plan;
    const layout = new Layout(heap.top);
    const qArray = q.array as Float32Array;
    // Element counts, taken before the call grows memory (which would detach a view in place to length 0), and
    // from the arrays' internal slots (src/views.ts), as validation took them.
    const qLength = viewLength(qArray), kLength = resident === null ? viewLength(k!.array as Float32Array) : 0;
    // RoPE rotates the call's own float32 copies of q and k (16-bit ones decoded into them): tensors in place are
    // copied too, never modified.
    const qPtr = rope !== null ? layout.region(qLength * 4) : layout.input(q, viewByteLength(qArray));
    const kBytes = resident === null ? viewByteLength(k!.array as Float32Array) : 0;
    const kPtr = resident !== null ? resident.kPtr
      : rope !== null ? layout.region(kLength * 4) : layout.input(k!, kBytes);
    const vPtr = resident !== null ? resident.vPtr : layout.input(v!, viewByteLength(v!.array as Float32Array));
    const maskBytes = mask === null ? 0 : viewByteLength(mask); // taken now: growing memory detaches a view of it
    const maskPtr = layout.region(maskBytes);
    const maskAt = mask === null ? null : locate(mask, 'options.mask'); // a mask in engine memory is read by offset
    const outBytes = plan.outLength * (plan.types.out === DTYPE_FLOAT16 ? 2 : 4);
    const target = outputTarget(out, layout, outBytes, out === null ? NO_INPUTS : resident === null ? [q, k!, v!] : [q]);
    const wLength = plan.returnWeights ? weightsLength(plan) : 0;
    const weightsPtr = layout.region(wLength * 4);
    // The per-call arrays the score stage reads (copied by validation) and RoPE's cos/sin tables.
    const keyLengthsPtr = layout.small(plan.keyLengths), alibiPtr = layout.small(plan.alibiSlopes), sinksPtr = layout.small(plan.sinks);
    const cacheRows = resident === null ? null : resident.rows, cacheRowsPtr = layout.small(cacheRows);
    const qTable = rope === null ? null : ropeTable(rope, rope.positionQ, L);
    const kTable = rope === null || resident !== null ? null : ropeTable(rope, rope.positionK, S);
    const qTablePtr = layout.small(qTable), kTablePtr = layout.small(kTable);
    // Every pointer is known before the scratch (the last region), so the block is complete when the kernel
    // sizes its scratch from it.
    setAttentionParams(block, plan, resident);
    block.q = qPtr;
    block.k = kPtr;
    block.v = vPtr;
    block.out = target.ptr;
    block.mask = maskPtr;
    block.weights = weightsPtr;
    block.keyLengths = keyLengthsPtr;
    block.alibi = alibiPtr;
    block.sinks = sinksPtr;
    block.cacheRows = cacheRowsPtr;
    if (rope !== null) { // the rotated copies are float32
      block.qType = DTYPE_FLOAT32;
      block.kInType = DTYPE_FLOAT32;
    }
    let scratchBytes = Infinity;
    if (fitsI32(S, D, Dv)) {
      viewsOf(kx.memory.buffer).u8.set(block.bytes, paramsPtr);
      scratchBytes = align16(kx.scratchBytes(paramsPtr));
    }
    const scratchPtr = layout.region(scratchBytes * threads);
    if (layout.end > maxBytes) throw tooBig(layout.end);
    const result = target.inPlace ? null : outputArray(out, plan.outLength);
    const weights = plan.returnWeights ? allocateOutput(wLength, undefined, 'options.returnWeights') : null;
    const buffer = reserve(kx, layout.end);

    copyIn(buffer, qPtr, q, rope !== null ? qLength : null);
    if (resident === null) {
      copyIn(buffer, kPtr, k!, rope !== null ? kLength : null);
      copyIn(buffer, vPtr, v!);
    }
    if (mask !== null) {
      if (maskAt === null) copyIn(buffer, maskPtr, mask);
      else viewsOf(buffer).u8.copyWithin(maskPtr, maskAt, maskAt + maskBytes);
    }
    if (plan.keyLengths !== null) copyIn(buffer, keyLengthsPtr, plan.keyLengths);
    if (plan.alibiSlopes !== null) copyIn(buffer, alibiPtr, plan.alibiSlopes);
    if (plan.sinks !== null) copyIn(buffer, sinksPtr, plan.sinks);
    if (qTable !== null) copyIn(buffer, qTablePtr, qTable);
    if (kTable !== null) copyIn(buffer, kTablePtr, kTable);
    if (cacheRows !== null) copyIn(buffer, cacheRowsPtr, cacheRows);
    if (rope !== null) {
      kx.ropeInPlace(paramsPtr, qPtr, H, L, qTablePtr, 0);
      if (kTable !== null) kx.ropeInPlace(paramsPtr, kPtr, KVH, S, kTablePtr, 0);
    }
    const items = kx.workItems(paramsPtr);
    if (pool !== null && items > 1 && callFlops(plan) >= splitPolicy.minFlops) pool.run(kx, paramsPtr, items, scratchPtr, scratchBytes);
    else kx.attention(0, items, 1, paramsPtr, scratchPtr);
    const output = deliver(kx, target, out, options.out, result, plan.outLength);
    if (weights === null) return output;
    weights.set(new Float32Array(kx.memory.buffer, weightsPtr, wLength));
    return { output, weights };
  }

  function attention(q: TensorInput, k: TensorInput, v: TensorInput, raw: AttentionOptions): Float32Array | AttentionWithWeights {
    const options = attentionOptions(raw); // the only read of the caller's object
    const kx = live();
    const rq = resolve(q, 'q');
    const rk = resolve(k, 'k');
    const rv = resolve(v, 'v');
    const ro = options?.out === undefined ? null : resolve(options.out, 'options.out');
    const plan = planAttention(rq.array, rk.array, rv.array,
      ro === null ? options : { ...options, out: ro.array as Float32Array });
    return runAttention(kx, rq, rk, rv, ro, plan, options, null);
  }

  // Linear attention and its states (src/wasm/linear.ts), on the calling thread.
  const linear = createLinearOps({
    owner: self, heap, paramsPtr, maxBytes, live, arena: () => new Layout(heap.top), tooBig, reserve, allocateBlock, resolve,
    copyIn: (buffer, at, arg) => copyIn(buffer, at, arg), outputTarget, outputArray, deliver,
    track: (x) => caches.add(x), untrack: (x) => caches.delete(x),
  });

  function alloc(length: number): EngineTensor {
    const kx = live();
    dimension(length, 'length');
    const offset = allocateBlock(kx, length * 4);
    new Float32Array(kx.memory.buffer, offset, length).fill(0);
    const t = new EngineTensor(self, offset, length,
      (x) => new Float32Array(live().memory.buffer, x.byteOffset, x.length),
      (x) => {
        tensors.delete(x.byteOffset);
        heap.release(x.byteOffset, x.length * 4);
      });
    tensors.set(offset, t);
    return t;
  }

  function createKVCache(options: KVCacheOptions): KVCache {
    const cache = createWasmKVCache({
      live, resolve, reserve, allocateBlock, tooBig, heap, paramsPtr, maxBytes,
      attend: (kx, rq, ro, plan, options, resident) => runAttention(kx, rq, null, null, ro, plan, options, resident),
      forget: (c) => caches.delete(c),
      alive: () => kernels !== null,
    }, options);
    caches.add(cache);
    return cache;
  }

  const engine: AttentionEngine = {
    backend,
    threads,
    get memoryBytes() {
      return kernels === null ? 0 : kernels.memory.buffer.byteLength;
    },
    attention: attention as AttentionEngine['attention'],
    linearAttention: linear.linearAttention,
    createLinearState: linear.createLinearState,
    alloc,
    createKVCache,
    dispose() {
      if (kernels === null) return;
      kernels = null;
      current = null; // the engine may stay reachable: it must not keep its memory
      viewsOf(new ArrayBuffer(0)); // drop the views that would keep the memory alive
      if (pool !== null) {
        unreachable?.unregister(engine);
        pool.stop();
      }
      for (const t of tensors.values()) t.invalidate();
      tensors.clear();
      for (const c of caches) (c as { invalidate(): void }).invalidate();
      caches.clear();
    },
  };
  if (pool !== null) unreachable?.register(engine, pool, engine);
  return engine;
}

