// The synchronous pure-JS backend, importable on its own (`<package>/js`): no WebAssembly needed.
import { AttentionError } from '../errors.js';
import { allocateOutput, attentionOptions, dimension, overlaps, planAttention, weightsLength } from '../plan.js';
import { LINEAR_OPTIONS, planLinear } from '../plan-linear.js';
import { LinearStateHandle, planLinearState } from '../linear-state.js';
import { KV_ATTEND_OPTIONS, planAppend, planAttend, planKVCache } from '../plan-kv.js';
import { readOptions } from '../plan-util.js';
import { EngineTensor } from '../tensors.js';
import type {
  AttentionEngine, AttentionOptions, AttentionWithWeights, KVAttendOptions, KVCache, KVCacheOptions,
  LinearAttentionOptions, LinearState, LinearStateOptions, TensorInput,
} from '../types.js';
import { attentionRows } from './attention.js';
import { jsLinearState, linearRows, resetJsLinearState } from './linear.js';
import type { JsLinearState } from './linear.js';
import { rotated } from '../rope.js';

/** The Float32Array behind an argument (a tensor's view, or the argument itself for validation to judge). */
function arrayOf(value: unknown, name: string): unknown {
  if (value instanceof EngineTensor) {
    if (value.freed) throw new AttentionError('DISPOSED', 'this tensor was freed', name);
    return value.array;
  }
  return value;
}

function aliasesAny(out: Float32Array, inputs: readonly (ArrayBufferView | null)[]): boolean {
  return inputs.some((x) => x !== null && overlaps(out, x));
}

/** Runs `compute` into `out`, through a temporary when `out` shares memory with an input being read. */
function intoOutput(out: Float32Array, inputs: readonly (ArrayBufferView | null)[], compute: (target: Float32Array) => void): void {
  const aliased = aliasesAny(out, inputs);
  const target = aliased ? new Float32Array(out.length) : out;
  compute(target);
  if (aliased) out.set(target);
}

/**
 * Scaled-dot-product attention in plain JavaScript, synchronously. Same options, semantics and errors as
 * {@link AttentionEngine.attention}; results agree with the wasm backends to float32 rounding.
 */
export function attention(q: TensorInput, k: TensorInput, v: TensorInput, options: AttentionOptions & { returnWeights: true }): AttentionWithWeights;
export function attention(q: TensorInput, k: TensorInput, v: TensorInput, options: AttentionOptions): Float32Array;
export function attention(q: TensorInput, k: TensorInput, v: TensorInput, raw: AttentionOptions): Float32Array | AttentionWithWeights {
  const options = attentionOptions(raw); // the only read of the caller's object
  const qa = arrayOf(q, 'q') as Float32Array, ka = arrayOf(k, 'k') as Float32Array, va = arrayOf(v, 'v') as Float32Array;
  const outArg = options?.out === undefined ? undefined : (arrayOf(options.out, 'options.out') as Float32Array);
  const plan = planAttention(qa, ka, va, outArg === undefined ? options : { ...options, out: outArg });
  const out = allocateOutput(plan.outLength, outArg);
  const weights = plan.returnWeights ? allocateOutput(weightsLength(plan), undefined, 'options.returnWeights') : null;
  // Rows are written while k and v are still being read: an `out` sharing their memory gets the result by copy.
  intoOutput(out, [qa, ka, va, plan.mask], (target) => attentionRows(target, weights, qa, ka, va, plan));
  return weights === null ? out : { output: out, weights };
}

/** Owner of no state: the standalone function takes states only through the engine that made them. */
const STANDALONE = {};

/**
 * Linear attention in plain JavaScript, synchronously; see {@link AttentionEngine.linearAttention}. A `state` is
 * accepted only by `engine.linearAttention` of the engine that created it.
 */
export function linearAttention(q: TensorInput, k: TensorInput, v: TensorInput, raw: LinearAttentionOptions): Float32Array {
  return linearCall(q, k, v, readOptions<LinearAttentionOptions>(raw, LINEAR_OPTIONS), STANDALONE);
}

/** A linear-attention call on options already read once (a snapshot), for the engine `owner`. */
function linearCall(q: TensorInput, k: TensorInput, v: TensorInput, options: LinearAttentionOptions, owner: object): Float32Array {
  const qa = arrayOf(q, 'q') as Float32Array, ka = arrayOf(k, 'k') as Float32Array, va = arrayOf(v, 'v') as Float32Array;
  const outArg = options?.out === undefined ? undefined : (arrayOf(options.out, 'options.out') as Float32Array);
  const plan = planLinear(qa, ka, va, outArg === undefined ? options : { ...options, out: outArg }, owner);
  const out = allocateOutput(plan.outLength, outArg);
  const state = plan.state as LinearStateHandle<JsLinearState> | null;
  intoOutput(out, [qa, ka, va], (target) => linearRows(target, qa, ka, va, plan, state?.data ?? null));
  state?.advance(plan.seqK);
  return out;
}

/** A KV cache in plain JS memory: [batch, kvHeads, capacity, headDim] keys and values, filled in order. */
function createJsKVCache(options: KVCacheOptions, engineAlive: () => void): KVCache {
  const shape = planKVCache(options);
  const { batch, kvHeads, headDim, headDimV, capacity } = shape;
  let keys: Float32Array, values: Float32Array;
  try {
    keys = new Float32Array(batch * kvHeads * capacity * headDim);
    values = new Float32Array(batch * kvHeads * capacity * headDimV);
  } catch (cause) {
    throw new AttentionError('OUT_OF_MEMORY', `cannot allocate a KV cache of ${capacity} tokens (${String(cause)})`, 'options.capacity');
  }
  let length = 0;
  let disposed = false;
  const alive = () => {
    if (disposed) throw new AttentionError('DISPOSED', 'this KV cache was disposed');
    engineAlive();
  };
  return {
    batch, kvHeads, headDim, headDimV, capacity,
    get length() {
      return length;
    },
    append(k: TensorInput, v: TensorInput) {
      alive();
      const ka = arrayOf(k, 'k') as Float32Array, va = arrayOf(v, 'v') as Float32Array;
      const n = planAppend(ka, va, shape, length);
      // Keys are stored rotated at their own positions, so attend never rotates the cache again.
      const kr = shape.rope === null ? ka : rotated(ka, batch, kvHeads, n, headDim, shape.bshd, shape.rope, shape.rope.positionK + length);
      for (let b = 0; b < batch; b++) {
        for (let h = 0; h < kvHeads; h++) {
          const dst = (b * kvHeads + h) * capacity + length;
          for (let t = 0; t < n; t++) {
            // token t of (b, h): [batch, kvHeads, n, ·], or [batch, n, kvHeads, ·] with 'bshd'
            const src = shape.bshd ? (b * n + t) * kvHeads + h : (b * kvHeads + h) * n + t;
            keys.set(kr.subarray(src * headDim, (src + 1) * headDim), (dst + t) * headDim);
            values.set(va.subarray(src * headDimV, (src + 1) * headDimV), (dst + t) * headDimV);
          }
        }
      }
      length += n;
    },
    attend: ((q: TensorInput, raw: KVAttendOptions) => {
      const options = readOptions<KVAttendOptions>(raw, KV_ATTEND_OPTIONS);
      alive();
      const qa = arrayOf(q, 'q') as Float32Array;
      const outArg = options?.out === undefined ? undefined : (arrayOf(options.out, 'options.out') as Float32Array);
      const plan = planAttend(qa, outArg, options, shape, length);
      const out = allocateOutput(plan.outLength, outArg);
      const weights = plan.returnWeights ? allocateOutput(weightsLength(plan), undefined, 'options.returnWeights') : null;
      intoOutput(out, [qa, plan.mask], (target) => attentionRows(target, weights, qa, keys, values, plan, capacity));
      return weights === null ? out : { output: out, weights };
    }) as KVCache['attend'],
    reset() {
      alive();
      length = 0;
    },
    dispose() {
      disposed = true;
    },
  };
}

/** A synchronous engine on the JS backend (what `createAttention({ backend: 'js' })` resolves to). */
export function createJsAttention(): AttentionEngine {
  let disposed = false;
  const self = {};
  const tensors = new Set<EngineTensor>();
  const live = () => {
    if (disposed) throw new AttentionError('DISPOSED', 'this engine was disposed');
  };
  return {
    backend: 'js',
    threads: 1,
    memoryBytes: 0,
    // Options are read before the liveness check: a getter that disposes the engine is seen.
    attention: ((q: TensorInput, k: TensorInput, v: TensorInput, raw: AttentionOptions) => {
      const options = attentionOptions(raw);
      live();
      return attention(q, k, v, options);
    }) as AttentionEngine['attention'],
    linearAttention(q, k, v, raw) {
      const options = readOptions<LinearAttentionOptions>(raw, LINEAR_OPTIONS);
      live();
      return linearCall(q, k, v, options, self);
    },
    createLinearState(options: LinearStateOptions): LinearState {
      live();
      const shape = planLinearState(options);
      let data: JsLinearState;
      try {
        data = jsLinearState(shape.batch, shape.heads, shape.headDim, shape.headDimV);
      } catch (cause) {
        throw new AttentionError('OUT_OF_MEMORY', `cannot allocate a linear-attention state (${String(cause)})`, 'options');
      }
      return new LinearStateHandle(self, shape, data, { alive: live, reset: () => resetJsLinearState(data), release() {} });
    },
    alloc(length: number) {
      live();
      dimension(length, 'length');
      const array = allocateOutput(length, undefined, 'length');
      const t = new EngineTensor(self, 0, length, () => array, (x) => tensors.delete(x));
      tensors.add(t);
      return t;
    },
    createKVCache(options: KVCacheOptions) {
      live();
      return createJsKVCache(options, live);
    },
    dispose() {
      disposed = true;
      for (const t of tensors) t.invalidate();
      tensors.clear();
    },
  };
}

export { AttentionError } from '../errors.js';
export type { AttentionErrorCode } from '../errors.js';
export type {
  Activation, AttentionEngine, AttentionOptions, AttentionWithWeights, CausalMode, KVAttendOptions, KVCache,
  KVCacheOptions, LinearAttentionOptions, LinearState, LinearStateOptions, FeatureMap, TensorInput, WasmTensor,
} from '../types.js';
