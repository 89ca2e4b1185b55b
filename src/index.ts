/**
 * Fused scaled-dot-product attention for JavaScript runtimes.
 *
 * ```ts
 * import { createAttention } from 'wasm-attention';
 * const engine = await createAttention();
 * const out = engine.attention(q, k, v, { batch: 1, heads: 8, seqQ: 128, seqK: 128, headDim: 64 });
 * ```
 * @module
 */
import { isBackendSupported } from './backends.js';
import { AttentionError } from './errors.js';
import { createJsAttention } from './js/index.js';
import type { AttentionEngine, BackendName, BackendRequest, EngineOptions } from './types.js';
import { createWasmEngine } from './wasm/engine.js';
import { memoryLimit } from './wasm/memory.js';
import { compiledThreadedModule, instantiate } from './wasm/loader.js';
import { createPool, threadsAvailable } from './wasm/pool.js';
import { DEFAULT_SPIN_MS, instantiateShared } from './wasm/work.js';
import { describe, readOptions } from './plan-util.js';

const ENGINE_OPTIONS: ReadonlySet<string> = new Set(['backend', 'maxMemoryBytes', 'threads', 'spinMs']);

const REQUESTS: Readonly<Record<BackendRequest, readonly BackendName[]>> = {
  auto: ['wasm-relaxed-simd', 'wasm-simd', 'js'],
  wasm: ['wasm-relaxed-simd', 'wasm-simd'],
  'wasm-relaxed-simd': ['wasm-relaxed-simd'],
  'wasm-simd': ['wasm-simd'],
  js: ['js'],
};

/**
 * Creates an attention engine on the best backend this runtime supports (or the one asked for).
 * Each wasm engine owns its own linear memory; create one per concurrent user and `dispose()` it when done.
 * With `threads: n > 1` the engine also starts n − 1 workers that share each call (see EngineOptions.threads);
 * `dispose()` stops them.
 * @throws AttentionError `'BACKEND_UNAVAILABLE'` when the requested backend cannot run here, or threads cannot
 *   (no SharedArrayBuffer, workers that fail to start), `'INVALID_OPTION'` for an unknown backend or option, or
 *   threads with the JS backend.
 */
export async function createAttention(engineOptions: EngineOptions = {}): Promise<AttentionEngine> {
  // One read of each option (getters and prototypes honoured, unknown names anywhere on the chain refused), as
  // for the options of a call.
  const options = readOptions<EngineOptions>(engineOptions, ENGINE_OPTIONS);
  const request = options.backend === undefined ? 'auto' : options.backend;
  const candidates = Object.hasOwn(REQUESTS, request) ? REQUESTS[request] : undefined;
  if (candidates === undefined) {
    throw new AttentionError('INVALID_OPTION',
      `must be one of ${Object.keys(REQUESTS).map((r) => `'${r}'`).join(', ')}, got ${describe(request)}`,
      'options.backend');
  }
  const maxBytes = memoryLimit(options.maxMemoryBytes);
  const threads = threadCount(options.threads);
  const spinMs = spinTime(options.spinMs);
  // A backend that cannot run here at all is the reason, with or without threads (relaxed SIMD without Node 20's flag).
  const runnable = candidates.filter((name) => isBackendSupported(name));
  if (runnable.length === 0) {
    throw new AttentionError('BACKEND_UNAVAILABLE',
      `none of ${candidates.join(', ')} can run in this runtime` +
      (request === 'wasm-relaxed-simd' ? ' (Node 20 needs --experimental-wasm-relaxed-simd)' : ''),
      'options.backend');
  }
  if (threads > 1) return createThreadedEngine(request, candidates, maxBytes, threads, spinMs);
  const name = runnable[0]!;
  return name === 'js' ? createJsAttention() : createWasmEngine(await instantiate(name), name, maxBytes);
}

/** Validates `options.threads`: an integer from 1 to 256. */
function threadCount(value: unknown): number {
  if (value === undefined) return 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 256) {
    throw new AttentionError('INVALID_OPTION', `must be an integer from 1 to 256, got ${describe(value)}`, 'options.threads');
  }
  return value;
}

/** Validates `options.spinMs`: a number of milliseconds from 0 to 1000. */
function spinTime(value: unknown): number {
  if (value === undefined) return DEFAULT_SPIN_MS;
  if (typeof value !== 'number' || !(value >= 0 && value <= 1000)) {
    throw new AttentionError('INVALID_OPTION', `must be a number of milliseconds from 0 to 1000, got ${describe(value)}`, 'options.spinMs');
  }
  return value;
}

/** A wasm engine whose calls are shared by `threads` threads on one shared memory. */
async function createThreadedEngine(
  request: BackendRequest, candidates: readonly BackendName[], maxBytes: number, threads: number, spinMs: number,
): Promise<AttentionEngine> {
  if (request === 'js') {
    throw new AttentionError('INVALID_OPTION', 'threads need a wasm backend; the JS backend is single-threaded', 'options.threads');
  }
  const why = threadsAvailable();
  if (why !== null) throw new AttentionError('BACKEND_UNAVAILABLE', why, 'options.threads');
  for (const name of candidates) {
    if (name === 'js' || !isBackendSupported(name)) continue;
    const module = await compiledThreadedModule(name);
    if (module === null) continue;
    const pages = Math.ceil(maxBytes / 65536);
    let memory: WebAssembly.Memory;
    try {
      // A shared memory reserves its maximum up front, since it can never move.
      memory = new WebAssembly.Memory({ initial: 1, maximum: pages, shared: true });
    } catch (cause) {
      throw new AttentionError('BACKEND_UNAVAILABLE',
        `could not reserve a shared wasm memory of ${pages * 65536} bytes (${String(cause)}); a smaller maxMemoryBytes may fit`,
        'options.threads');
    }
    const kernels = await instantiateShared(module, memory);
    const pool = await createPool(module, memory, threads, spinMs);
    return createWasmEngine(kernels, name, maxBytes, pool);
  }
  throw new AttentionError('BACKEND_UNAVAILABLE',
    `none of ${candidates.filter((c) => c !== 'js').join(', ')} can run with threads in this runtime`, 'options.threads');
}

export { BACKENDS, isBackendSupported } from './backends.js';
export type { BackendInfo } from './backends.js';
export { AttentionError } from './errors.js';
export type { AttentionErrorCode } from './errors.js';
export { attention as attentionJs, createJsAttention, linearAttention as linearAttentionJs } from './js/index.js';
export { ACTIVATIONS } from './plan.js';
export type {
  Activation, AttentionEngine, AttentionOptions, AttentionShape, AttentionTensor, AttentionWithWeights, BackendName,
  BackendRequest, CausalMode, EngineOptions, FeatureMap, Float16ArrayLike, HalfTensor, KVAppendOptions, KVAttendOptions,
  KVCache, KVCacheDtype, KVCacheOptions, LinearAttentionOptions, LinearState, LinearStateOptions, TensorInput, WasmTensor,
} from './types.js';
