// The memory of a wasm engine: its linear memory's buffers (and which views of them a call may use), growth within
// the engine's limit, the long-lived heap and its tensors, and the copies of a call's arguments in and its result
// out. src/wasm/engine.ts lays out and runs the calls on it; KV caches and linear attention use it too.
//   [long-lived blocks: alloc() tensors, KV caches (heap.ts) | per-call arena]
import { AttentionError } from '../errors.js';
import { describe } from '../plan-util.js';
import { allocateOutput, isFloat32Array, isUint8Array, unchangedLength } from '../plan.js';
import { EngineTensor, resolveArgument } from '../tensors.js';
import type { Resolved } from '../tensors.js';
import { Heap } from './heap.js';
import { DTYPE_FLOAT16 } from '../params.generated.js';
import type { KernelExports } from './loader.js';
import { decodeHalves, halfBits, isFloat16Array, isHalfTensor } from '../half.js';
import { engineCheckOf, registerEngineBuffer, setElements, viewBuffer, viewByteLength, viewByteOffset, viewLength } from '../views.js';

const PAGE_BYTES = 65536;
/** wasm32 addresses 2^32 bytes. */
export const WASM32_MAX_BYTES = 2 ** 32;

export const align16 = (n: number) => Math.ceil(n / 16) * 16;
const isShared = (b: ArrayBufferLike) => Object.prototype.toString.call(b) === '[object SharedArrayBuffer]';
const Float16 = (globalThis as { Float16Array?: new (b: ArrayBufferLike, at: number, n: number) => ArrayBufferView }).Float16Array;

/**
 * Validates `maxMemoryBytes` of createAttention: wasm memory grows in 64 KiB pages, so the cap is rounded down to
 * a whole page (at least one) and the engine never holds more than the cap.
 */
export function memoryLimit(value: unknown): number {
  if (value === undefined) return WASM32_MAX_BYTES;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < PAGE_BYTES) {
    throw new AttentionError('INVALID_OPTION', `must be a number of bytes ≥ ${PAGE_BYTES} (one wasm page), got ${describe(value)}`,
      'options.maxMemoryBytes');
  }
  return Math.floor(Math.min(value, WASM32_MAX_BYTES) / PAGE_BYTES) * PAGE_BYTES;
}

/** Byte offsets of one call's arena regions; `end` is checked before anything is written. */
export class Layout {
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

/** An engine's memory (see the file header); `release()` lets it go when the engine is disposed. */
export type EngineMemory = ReturnType<typeof createEngineMemory>;

/** The memory of an engine on the kernels `initial`, never above `maxBytes`; `self` owns its tensors. */
export function createEngineMemory(initial: KernelExports, maxBytes: number, self: object) {
  let kernels: KernelExports | null = initial;
  const heap = new Heap(initial.heapBase());
  const tensors = new Map<number, EngineTensor>();
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
   * Refuses an argument that changed after validation: option getters run while a call is planned, after its
   * tensors were checked, and may detach or resize an array's buffer or free a tensor. Checked once no caller code
   * can run any more and before anything is written: an array must still have its `elements`, a tensor in place
   * must still lie in a live tensor (`dtype`: DTYPE_FLOAT16 for a 16-bit one; its view may have been detached by a
   * call that grew memory, so its bytes come from the plan).
   */
  function unchanged(arg: Resolved | null, elements: number, dtype: number, name: string): void {
    if (arg === null) return;
    if (arg.inPlace === null) return unchangedLength(arg.array as Float32Array, elements, name);
    const bytes = elements * (dtype === DTYPE_FLOAT16 ? 2 : 4);
    for (const t of tensors.values()) if (arg.inPlace >= t.byteOffset && arg.inPlace + bytes <= t.byteOffset + t.length * 4) return;
    throw new AttentionError('DISPOSED', 'its tensor was freed while the call read its options', name);
  }

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
        if (isHalfTensor(arg.array)) decodeHalves(new Uint16Array(buffer, from, rotated), new Float32Array(buffer, at, rotated) as Float32Array<ArrayBuffer>);
        else f32.copyWithin(at >> 2, from >> 2, (from >> 2) + rotated);
        return;
      }
      arg = arg.array as Float32Array;
    }
    if (isFloat32Array(arg)) f32.set(arg, at >> 2);
    else if (isUint8Array(arg)) u8.set(arg, at);
    else if (isHalfTensor(arg)) {
      const bits = halfBits(arg), n = viewLength(bits);
      if (rotated !== null) decodeHalves(bits, new Float32Array(buffer, at, n) as Float32Array<ArrayBuffer>);
      else new Uint16Array(buffer, at, n).set(bits);
    } else i32.set(arg, at >> 2);
  }

  /**
   * Copies bytes [from, to) of an input tensor to the same bytes of its region at `at` (staging.ts: part of a
   * call's q, k or v); one already in place stays where it is.
   */
  function copyPart(buffer: ArrayBufferLike, at: number, arg: Resolved, from: number, to: number): void {
    if (arg.inPlace !== null || to <= from) return;
    const x = arg.array as ArrayBufferView;
    new Uint8Array(buffer, at + from, to - from).set(new Uint8Array(viewBuffer(x), viewByteOffset(x) + from, to - from));
  }

  /** Copies bytes [from, to) of the output region at `at` to the same bytes of a float32 result array (staging.ts). */
  function copyOutPart(buffer: ArrayBufferLike, at: number, dst: Float32Array, from: number, to: number): void {
    const n = (to - from) >> 2;
    setElements(new Float32Array(viewBuffer(dst), viewByteOffset(dst) + from, n), new Float32Array(buffer, at + from, n));
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

  /**
   * The array an output is copied to after the run: the caller's `out`; with none, a new array made now when
   * `early` (a call with state, which a failure after the run must not have advanced) or else at delivery (null,
   * as for an in-place `out`).
   */
  function outputArray(out: Resolved | null, length: number, early = false): Float32Array | null {
    if (out === null) return early ? allocateOutput(length, undefined) : null;
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
    // No `out` and no array made before the run: a copy of the region, which the Float32Array constructor makes
    // without zeroing it first (that cost as much as the copy: 1.5 MiB, S2), and from a view built by the
    // constructor, so no Symbol.species runs (slice or subarray would run an overridden one: caller code).
    if (out === null && result === null && length > 256) {
      return allocateOutput(length, undefined, 'options.out', new Float32Array(buffer, target.ptr, length));
    }
    const dst = result ?? (out === null ? allocateOutput(length, undefined) : outView(buffer, out, outArg, length));
    if (!isFloat32Array(dst) && isHalfTensor(dst)) { // a 16-bit out
      setElements(halfBits(dst), new Uint16Array(buffer, target.ptr, length));
      return dst;
    }
    const f32 = viewsOf(buffer).f32;
    const from = target.ptr >> 2;
    if (length <= 256) { // a loop is cheaper than a view for a few rows (decode steps, tiny calls)
      for (let i = 0; i < length; i++) dst[i] = f32[from + i]!;
    } else {
      setElements(dst, new Float32Array(buffer, target.ptr, length)); // a view by constructor: no Symbol.species
    }
    return dst;
  }

  /** After dispose: no kernels, and nothing that keeps the memory alive (the engine object may stay reachable). */
  function release(): void {
    kernels = null;
    current = null;
    viewsOf(new ArrayBuffer(0));
  }

  return {
    heap, tensors, live, tooBig, reserve, allocateBlock, locate, resolve, viewsOf, copyIn, copyPart, copyOutPart, outputTarget, outputArray, deliver, unchanged,
    release,
    alive: () => kernels !== null,
    bytes: () => (kernels === null ? 0 : kernels.memory.buffer.byteLength),
  };
}
