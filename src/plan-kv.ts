// Validation of KV caches: their configuration, appends, and attend calls (planned as the equivalent one-shot call).
import { AttentionError } from './errors.js';
import { ATTENTION_OPTIONS, planAttention } from './plan.js';
import type { AttentionPlan } from './plan.js';
import { planRope } from './plan-model.js';
import type { RopePlan } from './plan-model.js';
import { describe, dimension, elementsOf, optionsObject, readOptions, tensor } from './plan-util.js';
import { DTYPE_NAMES } from './params.generated.js';
import { typedArrayKind, viewLength } from './views.js';
import type { AttentionOptions, KVAppendOptions, KVAttendOptions, KVCacheDtype, KVCacheOptions } from './types.js';

/** A validated KV-cache configuration. */
export interface KVCacheShape {
  readonly batch: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly headDimV: number;
  /** Tokens a row holds: all of them, or for a rolling cache the last `capacity` (a multiple of 8). */
  readonly capacity: number;
  readonly dtype: KVCacheDtype;
  /** DTYPE_* code of the stored keys and values. */
  readonly dtypeCode: number;
  /** Rolling cache: each query sees the last `window` positions up to its own; null = every token kept. */
  readonly window: number | null;
  /** Keys are stored rotated; queries are rotated at positionQ + length − seqQ + i. */
  readonly rope: RopePlan | null;
  /** `append` takes k and v as [rows, n, kvHeads, dim]. */
  readonly bshd: boolean;
}

const KV_CACHE_OPTIONS = new Set(['batch', 'kvHeads', 'headDim', 'headDimV', 'capacity', 'rope', 'layout', 'dtype', 'window']);
const KV_APPEND_OPTIONS = new Set(['rows']);
export const KV_ATTEND_OPTIONS = new Set([...[...ATTENTION_OPTIONS].filter((k) =>
  !['batch', 'kvHeads', 'seqK', 'headDim', 'headDimV', 'rope', 'keyLengths'].includes(k)), 'rows']);

/** Validates createKVCache options (both backends). */
export function planKVCache(options: KVCacheOptions): KVCacheShape {
  options = readOptions(options, KV_CACHE_OPTIONS);
  const batch = dimension(options.batch, 'options.batch');
  const kvHeads = dimension(options.kvHeads, 'options.kvHeads');
  const headDim = dimension(options.headDim, 'options.headDim');
  const headDimV = options.headDimV === undefined ? headDim : dimension(options.headDimV, 'options.headDimV');
  const window = options.window === undefined ? null : dimension(options.window, 'options.window');
  let capacity = options.capacity === undefined && window !== null ? window : dimension(options.capacity, 'options.capacity');
  if (window !== null) {
    if (capacity < window) {
      throw new AttentionError('INVALID_OPTION', `a rolling cache must hold at least its window of ${window} tokens, got ${capacity}`, 'options.capacity');
    }
    capacity = Math.ceil(capacity / 8) * 8; // whole 8-key panels: a block never wraps mid-panel
  }
  const rope = options.rope === undefined ? null : planRope(options.rope, headDim);
  const layout = options.layout === undefined ? 'bhsd' : options.layout;
  if (layout !== 'bhsd' && layout !== 'bshd') {
    throw new AttentionError('INVALID_OPTION', `must be 'bhsd' or 'bshd', got ${describe(layout)}`, 'options.layout');
  }
  const dtype = options.dtype === undefined ? 'float32' : options.dtype;
  const dtypeCode = DTYPE_NAMES.indexOf(dtype);
  if (dtypeCode < 0) {
    throw new AttentionError('INVALID_OPTION', `must be 'float32', 'float16' or 'int8', got ${describe(dtype)}`, 'options.dtype');
  }
  return { batch, kvHeads, headDim, headDimV, capacity, dtype, dtypeCode, window, rope, bshd: layout === 'bshd' };
}

/** Cache rows an append or attend addresses: `rows` (distinct when `distinct`), or every row. */
function rowsOf(value: unknown, batch: number, distinct: boolean, name: string): Int32Array {
  if (value === undefined) return Int32Array.from({ length: batch }, (_, b) => b);
  if (!Array.isArray(value) && typedArrayKind(value) === undefined) {
    throw new AttentionError('INVALID_TYPE', `must be an array of row indices, got ${describe(value)}`, name);
  }
  const list = elementsOf(value, name);
  if (list.length === 0) throw new AttentionError('SHAPE_MISMATCH', 'must name at least one row', name);
  const bad = list.findIndex((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= batch);
  if (bad >= 0) throw new AttentionError('INVALID_OPTION', `must be integers from 0 to ${batch - 1}, element ${bad} is ${describe(list[bad])}`, name);
  if (distinct && new Set(list).size !== list.length) throw new AttentionError('INVALID_OPTION', 'names a row twice', name);
  return Int32Array.from(list as number[]);
}

/** `cache.reset(row?)` on the rows' lengths, for both backends: every row, or one validated row. */
export function resetLengths(lengths: Int32Array, row: unknown): void {
  if (row === undefined) {
    lengths.fill(0);
    return;
  }
  const batch = lengths.length;
  if (typeof row !== 'number' || !Number.isInteger(row) || row < 0 || row >= batch) {
    throw new AttentionError('INVALID_OPTION', `must be a row from 0 to ${batch - 1}, got ${describe(row)}`, 'row');
  }
  lengths[row] = 0;
}

/** A validated append: n tokens for each of `rows`, the first at `positions` (their lengths). */
export interface AppendPlan {
  readonly n: number;
  readonly rows: Int32Array;
  readonly positions: Int32Array;
}

/** Why an append to a float16 or int8 cache was refused; `rotated`: keys checked after RoPE turned them. */
export function nonFiniteMessage(dtype: string, rotated: boolean): string {
  return `holds a NaN or ±Infinity${rotated ? ' (or a key that RoPE turns beyond float32)' : ''}: a ${dtype} cache stores ` +
    'finite values only (nothing was appended)';
}

/**
 * The options of an append, read once (getters run here). Callers read them before checking that the cache and
 * engine are alive, so a getter that disposes either ends the append with DISPOSED before anything is written.
 */
export function readAppendOptions(raw: unknown): KVAppendOptions {
  return raw === undefined ? {} : readOptions<KVAppendOptions>(raw, KV_APPEND_OPTIONS);
}

/**
 * Validates an append of k [rows, kvHeads, n, headDim] ([rows, n, kvHeads, headDim] for 'bshd') and v to a cache
 * whose rows hold `lengths` tokens, with `options` from readAppendOptions.
 */
export function planAppend(k: unknown, v: unknown, options: KVAppendOptions, cache: KVCacheShape, lengths: Int32Array): AppendPlan {
  const { kvHeads, headDim, headDimV, capacity, bshd } = cache;
  const rows = rowsOf(options.rows, cache.batch, true, 'options.rows');
  const perToken = rows.length * kvHeads * headDim;
  const kLength = viewLength(tensor(k, 'k', -1, '', true)); // the real length (src/views.ts)
  if (kLength === 0 || kLength % perToken !== 0) {
    throw new AttentionError('SHAPE_MISMATCH',
      `length ${kLength} is not a positive multiple of rows·kvHeads·headDim = ${perToken} (${bshd ? '[rows, n, kvHeads, headDim]' : '[rows, kvHeads, n, headDim]'})`, 'k');
  }
  const n = kLength / perToken;
  tensor(v, 'v', rows.length * kvHeads * n * headDimV, bshd
    ? `[rows, n, kvHeads, headDimV] = [${rows.length}, ${n}, ${kvHeads}, ${headDimV}]`
    : `[rows, kvHeads, n, headDimV] = [${rows.length}, ${kvHeads}, ${n}, ${headDimV}]`, true);
  const positions = Int32Array.from(rows, (r) => lengths[r]!);
  for (let i = 0; i < rows.length; i++) {
    const length = positions[i]!;
    if (cache.window === null && length + n > capacity) {
      throw new AttentionError('CAPACITY_EXCEEDED', `appending ${n} tokens to ${length} exceeds the capacity of ${capacity}` +
        (rows.length < cache.batch || cache.batch > 1 ? ` (row ${rows[i]})` : ''), 'k');
    }
    if (length + n > 2 ** 31 - 1) throw new AttentionError('CAPACITY_EXCEEDED', 'a row would exceed 2^31 − 1 positions', 'k');
  }
  return { n, rows, positions };
}

/** A validated attend: the plan of the equivalent one-shot call, the cache rows read, and where RoPE puts q. */
export interface AttendPlan {
  /** rope is null: q is rotated by the cache (ropeQ). */
  readonly plan: AttentionPlan;
  /** Cache row of each batch entry of q; null when they are rows 0 … batch − 1. */
  readonly rows: Int32Array | null;
  /** RoPE of q: position of its row 0 in each batch entry; null without rope. */
  readonly ropeQ: { readonly rope: RopePlan; readonly first: Int32Array } | null;
}

/** Validates an attend on a cache whose rows hold `lengths` tokens. */
export function planAttend(q: unknown, out: unknown, options: KVAttendOptions, cache: KVCacheShape, lengths: Int32Array): AttendPlan {
  optionsObject(options, KV_ATTEND_OPTIONS);
  const { batch, kvHeads, headDim, headDimV, window } = cache;
  const rows = rowsOf(options.rows, batch, false, 'options.rows');
  const keys = Int32Array.from(rows, (r) => lengths[r]!);
  // The longest row is the call's seqK; when every row read is empty, one key slot that no row admits (a row with
  // no token gives zeros, whether or not other rows hold tokens).
  const seqK = Math.max(1, keys.reduce((m, x) => Math.max(m, x), 0));
  const ragged = keys.some((x) => x !== seqK);
  const identity = rows.length === batch && rows.every((r, i) => r === i);
  const { rows: _rows, ...rest } = options;
  const full = {
    ...rest, batch: rows.length, kvHeads, seqK, headDim, headDimV, ...(ragged ? { keyLengths: keys } : {}),
    ...(out === undefined ? {} : { out }),
  };
  let plan = planAttention(q, null, null, full as AttentionOptions, true);
  if (window !== null) {
    if (plan.returnWeights) {
      throw new AttentionError('INVALID_OPTION', 'is not available on a rolling cache (its keys are not kept in order)', 'options.returnWeights');
    }
    // The cache's window joins the caller's: query i admits keys from i + off_b − (window − 1) on.
    const reach = plan.seqQ + plan.seqK;
    const left = Math.min(plan.window?.[0] ?? reach, window - 1);
    const right = plan.window?.[1] ?? reach;
    if (seqK > cache.capacity && plan.seqQ + left > cache.capacity) {
      throw new AttentionError('CAPACITY_EXCEEDED',
        `${plan.seqQ} queries with a window of ${left + 1} need the last ${plan.seqQ + left} tokens, but this rolling cache keeps ` +
        `${cache.capacity}: create it with capacity ≥ window − 1 + seqQ`, 'q');
    }
    plan = { ...plan, window: [left, right] };
  }
  const rope = cache.rope;
  // Query row i of batch entry b sits at position positionQ + length_b − seqQ + i (negative positions rotate too).
  const ropeQ = rope === null ? null : { rope, first: Int32Array.from(keys, (len) => rope.positionQ + len - plan.seqQ) };
  return { plan: { ...plan, rope: null }, rows: identity ? null : rows, ropeQ };
}
