// Validation of KV caches: their configuration, appends, and attend calls (planned as the equivalent one-shot call).
import { AttentionError } from './errors.js';
import { ATTENTION_OPTIONS, planAttention } from './plan.js';
import type { AttentionPlan } from './plan.js';
import { planRope } from './plan-model.js';
import type { RopePlan } from './plan-model.js';
import { describe, dimension, isFloat32Array, optionsObject, readOptions, tensor } from './plan-util.js';
import type { AttentionOptions, KVAttendOptions, KVCacheOptions } from './types.js';

/** A validated KV-cache configuration. */
export interface KVCacheShape {
  readonly batch: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly headDimV: number;
  readonly capacity: number;
  /** Keys are stored rotated; queries are rotated at positionQ + length − seqQ + i. */
  readonly rope: RopePlan | null;
  /** `append` takes k and v as [batch, n, kvHeads, dim]. */
  readonly bshd: boolean;
}

const KV_CACHE_OPTIONS = new Set(['batch', 'kvHeads', 'headDim', 'headDimV', 'capacity', 'rope', 'layout']);
export const KV_ATTEND_OPTIONS = new Set([...ATTENTION_OPTIONS].filter((k) =>
  !['batch', 'kvHeads', 'seqK', 'headDim', 'headDimV', 'rope', 'keyLengths'].includes(k)));

/** Validates createKVCache options (both backends). */
export function planKVCache(options: KVCacheOptions): KVCacheShape {
  options = readOptions(options, KV_CACHE_OPTIONS);
  const batch = dimension(options.batch, 'options.batch');
  const kvHeads = dimension(options.kvHeads, 'options.kvHeads');
  const headDim = dimension(options.headDim, 'options.headDim');
  const headDimV = options.headDimV === undefined ? headDim : dimension(options.headDimV, 'options.headDimV');
  const capacity = dimension(options.capacity, 'options.capacity');
  const rope = options.rope === undefined ? null : planRope(options.rope, headDim);
  const layout = options.layout === undefined ? 'bhsd' : options.layout;
  if (layout !== 'bhsd' && layout !== 'bshd') {
    throw new AttentionError('INVALID_OPTION', `must be 'bhsd' or 'bshd', got ${describe(layout)}`, 'options.layout');
  }
  return { batch, kvHeads, headDim, headDimV, capacity, rope, bshd: layout === 'bshd' };
}

/** Validates an append of k [batch, kvHeads, n, headDim] ([batch, n, kvHeads, headDim] for 'bshd') and v to a cache holding `length` tokens; returns n. */
export function planAppend(k: unknown, v: unknown, cache: KVCacheShape, length: number): number {
  const { batch, kvHeads, headDim, headDimV, capacity, bshd } = cache;
  const perToken = batch * kvHeads * headDim;
  const kArray = isFloat32Array(k) ? k : tensor(k, 'k', perToken, '');
  if (kArray.length === 0 || kArray.length % perToken !== 0) {
    throw new AttentionError('SHAPE_MISMATCH',
      `length ${kArray.length} is not a positive multiple of batch·kvHeads·headDim = ${perToken} (${bshd ? '[batch, n, kvHeads, headDim]' : '[batch, kvHeads, n, headDim]'})`, 'k');
  }
  const n = kArray.length / perToken;
  tensor(v, 'v', batch * kvHeads * n * headDimV, bshd
    ? `[batch, n, kvHeads, headDimV] = [${batch}, ${n}, ${kvHeads}, ${headDimV}]`
    : `[batch, kvHeads, n, headDimV] = [${batch}, ${kvHeads}, ${n}, ${headDimV}]`);
  if (length + n > capacity) {
    throw new AttentionError('CAPACITY_EXCEEDED', `appending ${n} tokens to ${length} exceeds the capacity of ${capacity}`, 'k');
  }
  return n;
}

/** Validates an attend on a cache holding `length` tokens: the plan of the equivalent one-shot call. */
export function planAttend(q: unknown, out: unknown, options: KVAttendOptions, cache: KVCacheShape, length: number): AttentionPlan {
  optionsObject(options, KV_ATTEND_OPTIONS);
  if (length === 0) throw new AttentionError('SHAPE_MISMATCH', 'the KV cache holds no tokens yet', 'cache');
  const { batch, kvHeads, headDim, headDimV } = cache;
  const full = { ...options, batch, kvHeads, seqK: length, headDim, headDimV, ...(out === undefined ? {} : { out }) };
  const plan = planAttention(q, null, null, full as AttentionOptions, true);
  if (cache.rope === null) return plan;
  // Query row i sits at position length − seqQ + i of the cache's sequence.
  return { ...plan, rope: { ...cache.rope, positionQ: cache.rope.positionQ + length - plan.seqQ } };
}
