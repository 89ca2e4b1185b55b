// Copying a threaded call's inputs in and its output out while the workers compute. Only the calling thread can
// read and write the caller's arrays, so these copies were serial work the other threads waited for (S2,
// B1 H12 L512 D64: 1.4 ms of a 20 ms call, which held two threads at 1.8× one). With the (batch, head) layout
// a call splits into units, one per (batch, kv head): that kv head's keys and values, the query heads that read
// them and their output rows are contiguous bytes of each tensor, and their work items are consecutive.
// - In: the caller publishes the call at once and copies unit after unit, the workers' ranges first and its own
//   last, raising COPIED after each (work.ts); a thread runs an item only once its unit is copied.
// - Out: every thread counts the items it finishes per unit (work.ts `done`); after each of its own items the
//   caller copies out the units that are finished, following each thread's range in order, and the rest after
//   the run.
import { BR } from '../params.generated.js';
import type { AttentionPlan } from '../plan.js';
import { COPIED, COPY_WAITERS, COUNT_DONE, FIRST_UNIT, MAX_UNITS, PER_UNIT, UNITS, rangeOf } from './work.js';
import type { Control } from './work.js';

/** How a call's inputs are copied in and its output out, unit by unit (see the file header). */
export interface Staging {
  /** Units: batch × kv heads. */
  readonly units: number;
  /** Work items per unit (assembly/attention.ts workItems: consecutive). */
  readonly perUnit: number;
  /** Copies unit u's part of q, k and v in. */
  readonly copyIn: (u: number) => void;
  /** Copies unit u's output rows out, or null where the kernels write the output in place. */
  readonly copyOut: ((u: number) => void) | null;
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

/** The unit the caller copies first: that of range 1's first item (the workers' ranges come first). */
const firstUnitOf = (s: Staging, items: number, threads: number) => Math.floor(rangeOf(1, items, threads)[0] / s.perUnit);

/** Sets the control words of a staged call (or of an unstaged one: s undefined), before the call is published. */
export function publishStaging(control: Control, s: Staging | undefined, items: number, threads: number): void {
  const { words, done } = control;
  const counting = s !== undefined && s.copyOut !== null && s.units <= MAX_UNITS;
  if (counting) done.fill(0, 0, s.units);
  Atomics.store(words, UNITS, s?.units ?? 0);
  Atomics.store(words, PER_UNIT, s?.perUnit ?? 0);
  Atomics.store(words, FIRST_UNIT, s === undefined ? 0 : firstUnitOf(s, items, threads));
  Atomics.store(words, COPIED, 0);
  Atomics.store(words, COUNT_DONE, counting ? 1 : 0);
}

/** COPIED ← n, waking the threads that sleep on it (a system call only when there are any). */
export function raiseCopied(words: Int32Array, n: number): void {
  Atomics.store(words, COPIED, n);
  if (Atomics.load(words, COPY_WAITERS) !== 0) Atomics.notify(words, COPIED);
}

/** The caller's copy-in, once the call is published: unit after unit in FIRST_UNIT's order. */
export function copyInputs(control: Control, s: Staging, items: number, threads: number): void {
  const { words } = control;
  const first = firstUnitOf(s, items, threads);
  try {
    for (let i = 0; i < s.units; i++) {
      s.copyIn((first + i) % s.units);
      raiseCopied(words, i + 1);
    }
  } finally {
    raiseCopied(words, s.units); // even on failure: no worker may wait for it for ever
  }
}

/**
 * The caller's copy-out: `scan` copies out every finished unit it reaches (run after each of the caller's items),
 * `finish` every unit not copied yet (once all threads are done). A cursor per thread's range walks its units in
 * order, as that thread finishes them; a unit two ranges share is copied once.
 */
export function outputCopier(control: Control, s: Staging, items: number, threads: number) {
  const { words, done } = control;
  const copied = new Uint8Array(s.units);
  const out = s.copyOut!;
  const put = (u: number) => {
    if (copied[u] === 0) {
      copied[u] = 1;
      out(u);
    }
  };
  const cursor: number[] = [], last: number[] = [];
  for (let t = 0; t < threads; t++) {
    const [first, end] = rangeOf(t, items, threads);
    cursor.push(Math.floor(first / s.perUnit));
    last.push(first < end ? Math.floor((end - 1) / s.perUnit) : -1);
  }
  const counting = Atomics.load(words, COUNT_DONE) !== 0;
  return {
    scan(): void {
      if (!counting) return;
      for (let t = 0; t < threads; t++) {
        while (cursor[t]! <= last[t]! && Atomics.load(done, cursor[t]!) === s.perUnit) put(cursor[t]!++);
      }
    },
    finish(): void {
      for (let u = 0; u < s.units; u++) put(u);
    },
  };
}
