// The synchronous pure-JS backend, importable on its own (`<package>/js`): no WebAssembly needed.
import { AttentionError } from '../errors.js';
import { allocateOutput, attentionOptions, dimension, overlaps, planAttention, unchangedArguments, weightsLength } from '../plan.js';
import { LINEAR_OPTIONS, planLinear } from '../plan-linear.js';
import { LinearStateHandle, planLinearState } from '../linear-state.js';
import { readOptions } from '../plan-util.js';
import { EngineTensor } from '../tensors.js';
import type {
  AttentionEngine, AttentionOptions, AttentionTensor, AttentionWithWeights, HalfTensor, KVCacheOptions,
  LinearAttentionOptions, LinearState, LinearStateOptions, TensorInput,
} from '../types.js';
import { attentionRows } from './attention.js';
import { jsLinearState, linearRows, resetJsLinearState } from './linear.js';
import type { JsLinearState } from './linear.js';
import { createJsKVCache, encodeInto } from './kvcache.js';
import { decodeHalves, halfBits, isHalfTensor } from '../half.js';
import { DTYPE_FLOAT32 } from '../params.generated.js';
import { setElements, viewLength } from '../views.js';

/** The Float32Array behind an argument (a tensor's view, or the argument itself for validation to judge). */
function arrayOf(value: unknown, name: string): unknown {
  if (EngineTensor.is(value)) {
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
  const target = aliased ? new Float32Array(viewLength(out)) : out;
  compute(target);
  if (aliased) setElements(out, target);
}

/**
 * Scaled-dot-product attention in plain JavaScript, synchronously. Same options, semantics and errors as
 * {@link AttentionEngine.attention}; results agree with the wasm backends to float32 rounding.
 */
export function attention(q: AttentionTensor, k: AttentionTensor, v: AttentionTensor, options: AttentionOptions & { returnWeights: true }): AttentionWithWeights;
export function attention<O extends HalfTensor>(q: AttentionTensor, k: AttentionTensor, v: AttentionTensor, options: AttentionOptions & { out: O }): O;
export function attention(q: AttentionTensor, k: AttentionTensor, v: AttentionTensor, options: AttentionOptions): Float32Array;
export function attention(q: AttentionTensor, k: AttentionTensor, v: AttentionTensor, raw: AttentionOptions): Float32Array | AttentionWithWeights {
  const options = attentionOptions(raw); // the only read of the caller's object
  const qa = arrayOf(q, 'q') as Float32Array, ka = arrayOf(k, 'k') as Float32Array, va = arrayOf(v, 'v') as Float32Array;
  const outArg = options?.out === undefined ? undefined : (arrayOf(options.out, 'options.out') as Float32Array);
  const plan = planAttention(qa, ka, va, outArg === undefined ? options : { ...options, out: outArg });
  unchangedArguments(plan, qa, ka, va, outArg);
  // 16-bit tensors are read as numbers: decoded once here (the wasm kernels decode while packing).
  const half = plan.types.q !== DTYPE_FLOAT32 || plan.types.k !== DTYPE_FLOAT32 || plan.types.v !== DTYPE_FLOAT32;
  const qf = half && isHalfTensor(qa) ? decodeHalves(halfBits(qa)) : qa;
  const kf = half && isHalfTensor(ka) ? decodeHalves(halfBits(ka)) : ka;
  const vf = half && isHalfTensor(va) ? decodeHalves(halfBits(va)) : va;
  const halfOut = plan.types.out !== DTYPE_FLOAT32;
  const out = halfOut ? new Float32Array(plan.outLength) : allocateOutput(plan.outLength, outArg);
  const weights = plan.returnWeights ? allocateOutput(weightsLength(plan), undefined, 'options.returnWeights') : null;
  // Rows are written while k and v are still being read: an `out` sharing their memory gets the result by copy.
  intoOutput(out, [qf, kf, vf, plan.mask], (target) => attentionRows(target, weights, qf, kf, vf, plan));
  const result = halfOut ? encodeInto(out, outArg) : out;
  return weights === null ? result : { output: result, weights };
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
    attention: ((q: AttentionTensor, k: AttentionTensor, v: AttentionTensor, raw: AttentionOptions) => {
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
      return createJsKVCache(options, live, arrayOf);
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
  Activation, AttentionEngine, AttentionOptions, AttentionTensor, AttentionWithWeights, CausalMode, FeatureMap,
  Float16ArrayLike, HalfTensor, KVAppendOptions, KVAttendOptions, KVCache, KVCacheDtype, KVCacheOptions,
  LinearAttentionOptions, LinearState, LinearStateOptions, TensorInput, WasmTensor,
} from '../types.js';
