// Copying a threaded call's inputs while the workers already compute. Only the calling thread can read the caller's
// arrays, so copying q, k and v into wasm memory is serial work that the other threads used to wait for (S2,
// B1 H12 L512 D64: 1.4 ms of a 20 ms call, which held two threads at 1.8× one). With the (batch, head) layout
// the call splits into units, one per (batch, kv head): that kv head's keys and values and the query heads that
// read them, contiguous bytes of each tensor, and consecutive work items. The caller publishes the call at once
// and copies unit after unit, workers' ranges first and its own last, raising COPIED after each (work.ts); a
// thread runs an item only once its unit is copied.
import { BR } from '../params.generated.js';
import type { AttentionPlan } from '../plan.js';

/** How a call's inputs are copied unit by unit (see the file header). */
export interface Staging {
  /** Units: batch × kv heads. */
  readonly units: number;
  /** Work items per unit (assembly/attention.ts workItems: consecutive). */
  readonly perUnit: number;
  /** Copies unit u's part of q, k and v. */
  readonly copyUnit: (u: number) => void;
}

/**
 * Work items per unit for a call, or 0 where its inputs cannot be copied by units: the (batch, seq, head) layout
 * (a head's rows are interleaved with the other heads'), or RoPE (it rotates whole tensors after the copy). Items
 * are (b·H + h)·⌈L/BR⌉ + query block, or with grouped decode (one query row, GQA) (b·KVH + kv head)·⌈group/BR⌉ + head block.
 */
export function itemsPerUnit(plan: AttentionPlan): number {
  const { heads: H, kvHeads: KVH, seqQ: L } = plan;
  if (plan.layout !== 'bhsd' || plan.rope !== null) return 0;
  const group = H / KVH;
  return L === 1 && H > KVH && !plan.returnWeights ? Math.ceil(group / BR) : group * Math.ceil(L / BR);
}
