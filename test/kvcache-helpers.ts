// Shared by the KV-cache suites: token slices of [B, KVH, S, d] tensors and the two accuracy checks of a float16 or
// int8 cache — tight against float64 on the values the cache stores, bounded against float64 on the values given.
import { expect } from 'vitest';
import type { KVCacheDtype } from '../src/index.js';
import { closeTo, maxAbsError } from './runtimes/cases.mjs';

export const DTYPES: readonly KVCacheDtype[] = ['float32', 'float16', 'int8'];

/** Issue 11's bounds: max |out − float64 on the values given| ≤ bound · max |out|. */
export const BOUND: Record<KVCacheDtype, number> = { float32: 1e-5, float16: 2e-3, int8: 3e-2 };

/**
 * Against float64 on the values stored: float32 and float16 caches compute exactly as float32 arithmetic on them
 * (the suite's 1e-5); int8 also quantizes queries and weights to int16 (≤ 2^−16 of their block's largest), so
 * 2e-4 · max(1, max |ref|).
 */
export function expectStored(got: ArrayLike<number>, want: ArrayLike<number>, dtype: KVCacheDtype, label: string): void {
  const { err, tol } = closeTo(got, want);
  const bound = dtype === 'int8' ? tol * 20 : tol;
  expect(err, `${label}: max abs error ${err} vs stored values (tolerance ${bound})`).toBeLessThanOrEqual(bound);
}

/** max |got − want| / max |want| (NaN-aware). */
export function errorRatio(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let peak = 0;
  for (let i = 0; i < want.length; i++) peak = Math.max(peak, Math.abs(want[i]!));
  return maxAbsError(got, want) / Math.max(peak, Number.MIN_VALUE);
}

export function expectBound(got: ArrayLike<number>, want: ArrayLike<number>, dtype: KVCacheDtype, label: string): number {
  const ratio = errorRatio(got, want);
  expect(ratio, `${label}: error ${ratio} of max |out| (bound ${BOUND[dtype]})`).toBeLessThanOrEqual(BOUND[dtype]);
  return ratio;
}

/** Tokens [from, to) of a [B, KVH, S, d] tensor ([B, S, KVH, d] when bshd), as a tensor of to − from tokens. */
export function tokens(x: ArrayLike<number>, B: number, KVH: number, S: number, d: number, from: number, to: number, bshd = false): Float32Array {
  const n = to - from;
  const out = new Float32Array(B * KVH * n * d);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < KVH; h++) {
      for (let t = 0; t < n; t++) {
        const src = bshd ? ((b * S + from + t) * KVH + h) * d : ((b * KVH + h) * S + from + t) * d;
        const dst = bshd ? ((b * n + t) * KVH + h) * d : ((b * KVH + h) * n + t) * d;
        for (let c = 0; c < d; c++) out[dst + c] = x[src + c]!;
      }
    }
  }
  return out;
}

/** Batch rows `rows` of a [B, heads, S, d] tensor, as a [rows.length, heads, S, d] tensor. */
export function batchRows(x: ArrayLike<number>, perRow: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * perRow);
  rows.forEach((r, i) => {
    for (let c = 0; c < perRow; c++) out[i * perRow + c] = x[r * perRow + c]!;
  });
  return out;
}
