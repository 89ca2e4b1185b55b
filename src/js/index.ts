// The synchronous pure-JS backend, importable on its own (`<package>/js`): no WebAssembly needed.
import { AttentionError } from '../errors.js';
import { allocateOutput, overlaps, planAttention } from '../plan.js';
import type { AttentionEngine, AttentionOptions } from '../types.js';
import { attentionRows } from './attention.js';

/**
 * Scaled-dot-product attention in plain JavaScript, synchronously. Same options, semantics and errors as
 * {@link AttentionEngine.attention}; results agree with the wasm backends to float32 rounding.
 */
export function attention(q: Float32Array, k: Float32Array, v: Float32Array, options: AttentionOptions): Float32Array {
  const plan = planAttention(q, k, v, options);
  const out = allocateOutput(plan, options.out);
  // Rows are written while k and v are still being read: an `out` sharing their memory gets the result by copy.
  const aliased = overlaps(out, q) || overlaps(out, k) || overlaps(out, v) || (plan.mask !== null && overlaps(out, plan.mask));
  const target = aliased ? new Float32Array(plan.outLength) : out;
  attentionRows(target, q, k, v, plan);
  if (aliased) out.set(target);
  return out;
}

/** A synchronous engine on the JS backend (what `createAttention({ backend: 'js' })` resolves to). */
export function createJsAttention(): AttentionEngine {
  let disposed = false;
  return {
    backend: 'js',
    memoryBytes: 0,
    attention(q, k, v, options) {
      if (disposed) throw new AttentionError('DISPOSED', 'this engine was disposed');
      return attention(q, k, v, options);
    },
    dispose() {
      disposed = true;
    },
  };
}

export { AttentionError } from '../errors.js';
export type { AttentionErrorCode } from '../errors.js';
export type { AttentionEngine, AttentionOptions, CausalMode } from '../types.js';
