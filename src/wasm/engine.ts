// An engine over one wasm instance. Its linear memory holds, from heapBase():
//   [long-lived blocks: alloc() tensors, KV caches (heap.ts) | per-call arena]
// The arena is laid out afresh by every call ([q | k | v | mask | out | weights | scratch], skipping tensors
// already in place) and memory grows only when a call needs more than any call before it, so repeated calls
// never grow it again. Growing detaches the old ArrayBuffer: views are created after any growth. Each call is
// described to the kernels by one parameter block (src/params.generated.ts), a long-lived block of the engine
// written once the call's pointers are known; threads read the same block from the shared memory.
import { AttentionError } from '../errors.js';
import { allocateOutput, dimension, isFloat32Array, planAttention, planLinear, weightsLength } from '../plan.js';
import { planAppend, planAttend, planKVCache } from '../plan-kv.js';
import type { AttentionPlan, ShapePlan } from '../plan.js';
import { EngineTensor, resolveArgument } from '../tensors.js';
import type { Resolved } from '../tensors.js';
import type {
  AttentionEngine, AttentionOptions, AttentionWithWeights, KVAttendOptions, KVCache, KVCacheOptions,
  LinearAttentionOptions, TensorInput,
} from '../types.js';
import { Heap } from './heap.js';
import type { KernelExports, WasmVariant } from './loader.js';
import { PARAMS_BYTES, writeParams } from '../params.generated.js';
import type { Params } from '../params.generated.js';
import type { ThreadPool } from './pool.js';

const PAGE_BYTES = 65536;
/** wasm32 addresses 2^32 bytes. */
export const WASM32_MAX_BYTES = 2 ** 32;
const I32_MAX = 2 ** 31 - 1;

const align16 = (n: number) => Math.ceil(n / 16) * 16;
const fitsI32 = (...dims: number[]) => dims.every((d) => d <= I32_MAX);

/** Validates `maxMemoryBytes` of createAttention. */
export function memoryLimit(value: unknown): number {
  if (value === undefined) return WASM32_MAX_BYTES;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new AttentionError('INVALID_OPTION', `must be a positive number of bytes, got ${String(value)}`,
      'options.maxMemoryBytes');
  }
  return Math.min(value, WASM32_MAX_BYTES);
}

/** A parameter block with every field 0. */
function emptyParams(): Params {
  return {
    q: 0, k: 0, v: 0, out: 0, mask: 0, weights: 0, B: 0, H: 0, KVH: 0, L: 0, S: 0, D: 0, Dv: 0,
    scale: 0, softcap: 0, causal: 0, causalOffset: 0, maskKind: 0, msB: 0, msH: 0, msL: 0, msS: 0,
    activation: 0, param: 0, power: 0, returnWeights: 0, resident: 0, capacity: 0, cacheK: 0, cacheV: 0, cachePos: 0,
  };
}

/** The shape fields of a call's parameter block (pointers still 0). */
function shapeParams(plan: ShapePlan): Params {
  return {
    ...emptyParams(), B: plan.batch, H: plan.heads, KVH: plan.kvHeads, L: plan.seqQ, S: plan.seqK,
    D: plan.headDim, Dv: plan.headDimV, causal: plan.causal ? 1 : 0, causalOffset: plan.causalOffset,
  };
}

/** The parameter block of an attention call (pointers still 0): the plan, field for field. */
function attentionParams(plan: AttentionPlan, resident: { capacity: number } | null): Params {
  const [msB, msH, msL, msS] = plan.maskStrides;
  return {
    ...shapeParams(plan), scale: plan.scale, softcap: plan.softcap, maskKind: plan.maskKind, msB, msH, msL, msS,
    activation: plan.activation, param: plan.param, power: plan.power, returnWeights: plan.returnWeights ? 1 : 0,
    resident: resident === null ? 0 : 1, capacity: resident?.capacity ?? 0,
  };
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
}

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
  const caches = new Set<{ invalidate(): void }>();
  const self = {};
  if (initial.paramsBytes() !== PARAMS_BYTES) throw new Error('wasm-attention: kernel binary and host disagree on the parameter block');
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
    return memory.buffer;
  }

  /** A long-lived block: checked against the limit and grown into before the heap changes. */
  function allocateBlock(kx: KernelExports, bytes: number): number {
    const top = heap.topAfter(bytes);
    reserve(kx, top);
    return heap.allocate(bytes);
  }

  function lookup(array: Float32Array): EngineTensor | undefined {
    if (kernels === null || array.buffer !== kernels.memory.buffer) return undefined;
    const t = tensors.get(array.byteOffset);
    return t !== undefined && t.length === array.length ? t : undefined;
  }

  const resolve = (value: unknown, name: string) => resolveArgument(value, name, self, lookup);

  function copyIn(buffer: ArrayBuffer, at: number, arg: Resolved | Float32Array | Uint8Array): void {
    if (!ArrayBuffer.isView(arg)) {
      if (arg.inPlace !== null) return;
      arg = arg.array as Float32Array;
    }
    if (isFloat32Array(arg)) new Float32Array(buffer, at, arg.length).set(arg);
    else new Uint8Array(buffer, at, arg.length).set(arg);
  }

  /**
   * Where the kernel writes its output: straight into an in-place `out` tensor unless that overlaps an in-place
   * input (then through the arena and a copy), else an arena region copied out to the returned array.
   */
  function outputTarget(out: Resolved | null, layout: Layout, bytes: number, inputs: readonly Resolved[]) {
    if (out !== null && out.inPlace !== null) {
      const o = out.inPlace;
      const clash = inputs.some((x) => x.inPlace !== null && x.inPlace < o + bytes && o < x.inPlace + (x.array as Float32Array).byteLength);
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

  /** The call's result: the filled array, or a fresh view of an in-place `out` (memory may have grown). */
  function deliver(
    kx: KernelExports, target: { ptr: number; inPlace: boolean }, out: Resolved | null, outArg: unknown,
    result: Float32Array | null, length: number,
  ): Float32Array {
    const buffer = kx.memory.buffer;
    const fresh = () => (outArg instanceof EngineTensor ? outArg.array : new Float32Array(buffer, out!.inPlace!, length));
    if (target.inPlace) return fresh();
    const src = new Float32Array(buffer, target.ptr, length);
    const dst = result ?? fresh();
    dst.set(src);
    return dst;
  }

  function runAttention(
    kx: KernelExports, q: Resolved, k: Resolved | null, v: Resolved | null, out: Resolved | null,
    plan: AttentionPlan, options: { out?: unknown }, resident: { kPtr: number; vPtr: number; capacity: number } | null,
  ): Float32Array | AttentionWithWeights {
    const { seqK: S, headDim: D, headDimV: Dv, mask } = plan;
    const layout = new Layout(heap.top);
    const qArray = q.array as Float32Array;
    const qPtr = layout.input(q, qArray.byteLength);
    const kPtr = resident?.kPtr ?? layout.input(k!, (k!.array as Float32Array).byteLength);
    const vPtr = resident?.vPtr ?? layout.input(v!, (v!.array as Float32Array).byteLength);
    const maskPtr = layout.region(mask === null ? 0 : mask.byteLength);
    const target = outputTarget(out, layout, plan.outLength * 4, resident === null ? [q, k!, v!] : [q]);
    const wLength = plan.returnWeights ? weightsLength(plan) : 0;
    const weightsPtr = layout.region(wLength * 4);
    const params = attentionParams(plan, resident);
    let scratchBytes = Infinity;
    if (fitsI32(S, D, Dv)) {
      writeParams(kx.memory.buffer, paramsPtr, params);
      scratchBytes = align16(kx.scratchBytes(paramsPtr));
    }
    const scratchPtr = layout.region(scratchBytes * threads);
    if (layout.end > maxBytes) throw tooBig(layout.end);
    const result = target.inPlace ? null : outputArray(out, plan.outLength);
    const weights = plan.returnWeights ? allocateOutput(wLength, undefined, 'options.returnWeights') : null;
    const buffer = reserve(kx, layout.end);

    copyIn(buffer, qPtr, q);
    if (resident === null) {
      copyIn(buffer, kPtr, k!);
      copyIn(buffer, vPtr, v!);
    }
    if (mask !== null) copyIn(buffer, maskPtr, mask);
    Object.assign(params, { q: qPtr, k: kPtr, v: vPtr, out: target.ptr, mask: maskPtr, weights: weightsPtr });
    writeParams(buffer, paramsPtr, params);
    const items = kx.workItems(paramsPtr);
    if (pool !== null && items > 1) pool.run(kx, paramsPtr, items, scratchPtr, scratchBytes);
    else kx.attention(0, items, 1, paramsPtr, scratchPtr);
    const output = deliver(kx, target, out, options.out, result, plan.outLength);
    if (weights === null) return output;
    weights.set(new Float32Array(kx.memory.buffer, weightsPtr, wLength));
    return { output, weights };
  }

  function attention(q: TensorInput, k: TensorInput, v: TensorInput, options: AttentionOptions): Float32Array | AttentionWithWeights {
    const kx = live();
    const rq = resolve(q, 'q');
    const rk = resolve(k, 'k');
    const rv = resolve(v, 'v');
    const ro = options?.out === undefined ? null : resolve(options.out, 'options.out');
    const plan = planAttention(rq.array, rk.array, rv.array,
      ro === null ? options : { ...options, out: ro.array as Float32Array });
    return runAttention(kx, rq, rk, rv, ro, plan, options, null);
  }

  function linearAttention(q: TensorInput, k: TensorInput, v: TensorInput, options: LinearAttentionOptions): Float32Array {
    const kx = live();
    const rq = resolve(q, 'q');
    const rk = resolve(k, 'k');
    const rv = resolve(v, 'v');
    const ro = options?.out === undefined ? null : resolve(options.out, 'options.out');
    const plan = planLinear(rq.array, rk.array, rv.array, ro === null ? options : { ...options, out: ro.array as Float32Array });
    const layout = new Layout(heap.top);
    const qPtr = layout.input(rq, (rq.array as Float32Array).byteLength);
    const kPtr = layout.input(rk, (rk.array as Float32Array).byteLength);
    const vPtr = layout.input(rv, (rv.array as Float32Array).byteLength);
    const target = outputTarget(ro, layout, plan.outLength * 4, [rq, rk, rv]);
    const params = shapeParams(plan);
    params.param = plan.epsilon;
    let scratchBytes = Infinity;
    if (fitsI32(plan.headDim, plan.headDimV)) {
      writeParams(kx.memory.buffer, paramsPtr, params);
      scratchBytes = kx.linearScratchBytes(paramsPtr);
    }
    const scratchPtr = layout.region(scratchBytes);
    if (layout.end > maxBytes) throw tooBig(layout.end);
    const result = target.inPlace ? null : outputArray(ro, plan.outLength);
    const buffer = reserve(kx, layout.end);
    copyIn(buffer, qPtr, rq);
    copyIn(buffer, kPtr, rk);
    copyIn(buffer, vPtr, rv);
    Object.assign(params, { q: qPtr, k: kPtr, v: vPtr, out: target.ptr });
    writeParams(buffer, paramsPtr, params);
    kx.linearAttention(paramsPtr, scratchPtr);
    return deliver(kx, target, ro, options.out, result, plan.outLength);
  }

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
    const kx = live();
    const shape = planKVCache(options);
    const { batch, kvHeads, headDim, headDimV, capacity } = shape;
    const kBytes = 4 * batch * kvHeads * Math.ceil(capacity / 8) * 8 * headDim;
    const vBytes = 4 * batch * kvHeads * capacity * Math.ceil(headDimV / 8) * 8;
    if (!fitsI32(capacity, headDim, headDimV) || heap.topAfter(kBytes + vBytes) > maxBytes) throw tooBig(heap.top + kBytes + vBytes);
    const kCache = allocateBlock(kx, kBytes + vBytes);
    const vCache = kCache + kBytes;
    let length = 0;
    let disposed = false;
    const alive = () => {
      if (disposed) throw new AttentionError('DISPOSED', 'this KV cache was disposed');
      return live();
    };
    const cache: KVCache & { invalidate(): void } = {
      batch, kvHeads, headDim, headDimV, capacity,
      get length() {
        return length;
      },
      append(k: TensorInput, v: TensorInput) {
        const kx = alive();
        const rk = resolve(k, 'k');
        const rv = resolve(v, 'v');
        const n = planAppend(rk.array, rv.array, shape, length);
        const layout = new Layout(heap.top);
        const kPtr = layout.input(rk, (rk.array as Float32Array).byteLength);
        const vPtr = layout.input(rv, (rv.array as Float32Array).byteLength);
        const buffer = reserve(kx, layout.end);
        copyIn(buffer, kPtr, rk);
        copyIn(buffer, vPtr, rv);
        writeParams(buffer, paramsPtr, {
          ...emptyParams(), k: kPtr, v: vPtr, B: batch, KVH: kvHeads, S: n, D: headDim, Dv: headDimV,
          capacity, cacheK: kCache, cacheV: vCache, cachePos: length,
        });
        kx.kvAppend(paramsPtr);
        length += n;
      },
      attend: ((q: TensorInput, options: KVAttendOptions) => {
        const kx = alive();
        const rq = resolve(q, 'q');
        const ro = options?.out === undefined ? null : resolve(options.out, 'options.out');
        const plan = planAttend(rq.array, ro?.array, options, shape, length);
        return runAttention(kx, rq, null, null, ro, plan, options, { kPtr: kCache, vPtr: vCache, capacity });
      }) as KVCache['attend'],
      reset() {
        alive();
        length = 0;
      },
      dispose() {
        if (disposed) return;
        disposed = true;
        caches.delete(cache);
        if (kernels !== null) heap.release(kCache, kBytes + vBytes);
      },
      invalidate() {
        disposed = true;
      },
    };
    caches.add(cache);
    return cache;
  }

  return {
    backend,
    threads,
    get memoryBytes() {
      return kernels === null ? 0 : kernels.memory.buffer.byteLength;
    },
    attention: attention as AttentionEngine['attention'],
    linearAttention,
    alloc,
    createKVCache,
    dispose() {
      if (kernels === null) return;
      kernels = null;
      pool?.stop();
      for (const t of tensors.values()) t.invalidate();
      tensors.clear();
      for (const c of caches) c.invalidate();
      caches.clear();
    },
  };
}

