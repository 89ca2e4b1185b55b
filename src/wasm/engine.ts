// An engine over one wasm instance: its attention calls, tensors, KV caches and linear attention, on the memory of
// memory.ts. The arena is laid out afresh by every call ([q | k | v | mask | out | weights | scratch], skipping
// tensors already in place) and memory grows only when a call needs more than any call before it, so repeated calls
// never grow it again. Growing detaches the old ArrayBuffer (a shared memory instead hands out a new
// SharedArrayBuffer object for the same memory): views are created after any growth. Each call is
// described to the kernels by one parameter block (src/params.generated.ts), a long-lived block of the engine
// written once the call's pointers are known; threads read the same block from the shared memory.
import { allocateOutput, attentionOptions, dimension, planAttention, unchangedLength, weightsLength } from '../plan.js';
import type { AttentionPlan } from '../plan.js';
import { EngineTensor } from '../tensors.js';
import type { Resolved } from '../tensors.js';
import type {
  AttentionEngine, AttentionOptions, AttentionWithWeights, KVCache, KVCacheOptions, TensorInput,
} from '../types.js';
import type { KernelExports, WasmVariant } from './loader.js';
import { DTYPE_FLOAT16, DTYPE_FLOAT32, PARAMS_BYTES, ParamsBlock } from '../params.generated.js';
import { setAttentionParams } from './params.js';
import { createLinearOps } from './linear.js';
import { ropeTable } from '../rope.js';
import { splitPolicy } from './pool.js';
import type { ThreadPool } from './pool.js';
import { createWasmKVCache } from './kvcache.js';
import { itemsPerUnit } from './staging.js';
import type { ResidentCache } from './kvcache.js';
import { Layout, align16, createEngineMemory } from './memory.js';
import { viewByteLength, viewLength } from '../views.js';

const I32_MAX = 2 ** 31 - 1;
const NO_INPUTS: readonly Resolved[] = [];
const fitsI32 = (...dims: number[]) => dims.every((d) => d <= I32_MAX);

/** Floating-point operations of an attention call, 2·B·H·L·S·(D + Dv), halved for causal (the threads' cost model). */
function callFlops(p: AttentionPlan): number {
  return 2 * p.batch * p.heads * p.seqQ * p.seqK * (p.headDim + p.headDimV) * (p.causal ? 0.5 : 1);
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
  const caches = new Set<object>();
  const self = {};
  if (initial.paramsBytes() !== PARAMS_BYTES) throw new Error('wasm-attention: kernel binary and host disagree on the parameter block');
  const mem = createEngineMemory(initial, maxBytes, self);
  const {
    heap, tensors, live, tooBig, reserve, allocateBlock, locate, resolve, viewsOf, copyIn, copyPart, copyOutPart,
    outputTarget, outputArray, deliver, unchanged,
  } = mem;
  const paramsPtr = allocateBlock(initial, PARAMS_BYTES);

  /** The call's parameter block, mirrored in JS and copied into wasm memory at paramsPtr once its pointers are known. */
  const block = new ParamsBlock();

  function runAttention(
    kx: KernelExports, q: Resolved, k: Resolved | null, v: Resolved | null, out: Resolved | null,
    plan: AttentionPlan, options: { out?: unknown }, resident: ResidentCache | null,
  ): Float32Array | AttentionWithWeights {
    const { batch: B, heads: H, kvHeads: KVH, seqQ: L, seqK: S, headDim: D, headDimV: Dv, mask, rope } = plan;
    // No caller code runs from here on: arguments that option getters changed during planning are refused now.
    unchanged(q, B * H * L * D, plan.types.q, 'q');
    if (resident === null) {
      unchanged(k, B * KVH * S * D, plan.types.k, 'k');
      unchanged(v, B * KVH * S * Dv, plan.types.v, 'v');
    }
    unchanged(out, plan.outLength, plan.types.out, 'options.out');
    if (mask !== null) unchangedLength(mask, plan.maskLength, 'options.mask');
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
    const rowParamsPtr = layout.small(plan.rowParams);
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
    block.rowParams = rowParamsPtr;
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
    const items = kx.workItems(paramsPtr);
    const split = pool !== null && items > 1 && callFlops(plan) >= splitPolicy.minFlops;
    // Threads: q, k and v are copied in and a float32 result out unit by unit while the workers compute (staging.ts),
    // into a result array made now.
    const perUnit = split && resident === null ? itemsPerUnit(plan) : 0;
    const stageOut = perUnit !== 0 && !target.inPlace && plan.types.out === DTYPE_FLOAT32 && (out === null || out.inPlace === null);
    const result = target.inPlace ? null : outputArray(out, plan.outLength, stageOut);
    const weights = plan.returnWeights ? allocateOutput(wLength, undefined, 'options.returnWeights') : null;
    const buffer = reserve(kx, layout.end);
    if (perUnit === 0) {
      copyIn(buffer, qPtr, q, rope !== null ? qLength : null);
      if (resident === null) {
        copyIn(buffer, kPtr, k!, rope !== null ? kLength : null);
        copyIn(buffer, vPtr, v!);
      }
    }
    if (mask !== null) {
      if (maskAt === null) copyIn(buffer, maskPtr, mask);
      else viewsOf(buffer).u8.copyWithin(maskPtr, maskAt, maskAt + maskBytes);
    }
    if (plan.keyLengths !== null) copyIn(buffer, keyLengthsPtr, plan.keyLengths);
    if (plan.rowParams !== null) copyIn(buffer, rowParamsPtr, plan.rowParams);
    if (plan.alibiSlopes !== null) copyIn(buffer, alibiPtr, plan.alibiSlopes);
    if (plan.sinks !== null) copyIn(buffer, sinksPtr, plan.sinks);
    if (qTable !== null) copyIn(buffer, qTablePtr, qTable);
    if (kTable !== null) copyIn(buffer, kTablePtr, kTable);
    if (cacheRows !== null) copyIn(buffer, cacheRowsPtr, cacheRows);
    if (rope !== null) {
      kx.ropeInPlace(paramsPtr, qPtr, H, L, qTablePtr, 0);
      if (kTable !== null) kx.ropeInPlace(paramsPtr, kPtr, KVH, S, kTablePtr, 0);
    }
    if (perUnit !== 0) {
      const units = plan.batch * KVH;
      const qUnit = viewByteLength(qArray) / units, kUnit = kBytes / units;
      const vUnit = viewByteLength(v!.array as Float32Array) / units, oUnit = (plan.outLength / units) * 4;
      pool!.run(kx, paramsPtr, items, scratchPtr, scratchBytes, {
        units, perUnit,
        copyIn(u) {
          copyPart(buffer, qPtr, q, u * qUnit, (u + 1) * qUnit);
          copyPart(buffer, kPtr, k!, u * kUnit, (u + 1) * kUnit);
          copyPart(buffer, vPtr, v!, u * vUnit, (u + 1) * vUnit);
        },
        copyOut: stageOut ? (u) => copyOutPart(buffer, target.ptr, result!, u * oUnit, (u + 1) * oUnit) : null,
      });
    } else if (split) pool!.run(kx, paramsPtr, items, scratchPtr, scratchBytes);
    else kx.attention(0, items, 1, paramsPtr, scratchPtr);
    const output = stageOut ? result! : deliver(kx, target, out, options.out, result, plan.outLength);
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
      alive: mem.alive,
    }, options);
    caches.add(cache);
    return cache;
  }

  const engine: AttentionEngine = {
    backend,
    threads,
    get memoryBytes() {
      return mem.bytes();
    },
    attention: attention as AttentionEngine['attention'],
    linearAttention: linear.linearAttention,
    createLinearState: linear.createLinearState,
    alloc,
    createKVCache,
    dispose() {
      if (!mem.alive()) return;
      mem.release();
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

