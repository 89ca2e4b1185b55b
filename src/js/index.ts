// The synchronous pure-JS backend, importable on its own (`<package>/js`): no WebAssembly needed.
import { AttentionError } from '../errors.js';
import { allocateOutput, overlaps, planAttention, planLinear, weightsLength } from '../plan.js';
import type { AttentionEngine, AttentionOptions, AttentionWithWeights, LinearAttentionOptions } from '../types.js';
import { attentionRows } from './attention.js';
import { linearRows } from './linear.js';

function aliasesAny(out: Float32Array, inputs: readonly (ArrayBufferView | null)[]): boolean {
  return inputs.some((x) => x !== null && overlaps(out, x));
}

/**
 * Scaled-dot-product attention in plain JavaScript, synchronously. Same options, semantics and errors as
 * {@link AttentionEngine.attention}; results agree with the wasm backends to float32 rounding.
 */
export function attention(q: Float32Array, k: Float32Array, v: Float32Array, options: AttentionOptions & { returnWeights: true }): AttentionWithWeights;
export function attention(q: Float32Array, k: Float32Array, v: Float32Array, options: AttentionOptions): Float32Array;
export function attention(q: Float32Array, k: Float32Array, v: Float32Array, options: AttentionOptions): Float32Array | AttentionWithWeights {
  const plan = planAttention(q, k, v, options);
  const out = allocateOutput(plan.outLength, options.out);
  const weights = plan.returnWeights ? allocateOutput(weightsLength(plan), undefined, 'options.returnWeights') : null;
  // Rows are written while k and v are still being read: an `out` sharing their memory gets the result by copy.
  const aliased = aliasesAny(out, [q, k, v, plan.mask]);
  const target = aliased ? new Float32Array(plan.outLength) : out;
  attentionRows(target, weights, q, k, v, plan);
  if (aliased) out.set(target);
  return weights === null ? out : { output: out, weights };
}

/** Linear attention in plain JavaScript, synchronously; see {@link AttentionEngine.linearAttention}. */
export function linearAttention(q: Float32Array, k: Float32Array, v: Float32Array, options: LinearAttentionOptions): Float32Array {
  const plan = planLinear(q, k, v, options);
  const out = allocateOutput(plan.outLength, options.out);
  const aliased = aliasesAny(out, [q, k, v]);
  const target = aliased ? new Float32Array(plan.outLength) : out;
  linearRows(target, q, k, v, plan);
  if (aliased) out.set(target);
  return out;
}

/** A synchronous engine on the JS backend (what `createAttention({ backend: 'js' })` resolves to). */
export function createJsAttention(): AttentionEngine {
  let disposed = false;
  const live = () => {
    if (disposed) throw new AttentionError('DISPOSED', 'this engine was disposed');
  };
  return {
    backend: 'js',
    memoryBytes: 0,
    attention: ((q: Float32Array, k: Float32Array, v: Float32Array, options: AttentionOptions) => {
      live();
      return attention(q, k, v, options);
    }) as AttentionEngine['attention'],
    linearAttention(q, k, v, options) {
      live();
      return linearAttention(q, k, v, options);
    },
    dispose() {
      disposed = true;
    },
  };
}

export { AttentionError } from '../errors.js';
export type { AttentionErrorCode } from '../errors.js';
export type {
  Activation, AttentionEngine, AttentionOptions, AttentionWithWeights, CausalMode, LinearAttentionOptions,
} from '../types.js';
