// The protocol between an engine's threads, shared by the main thread (pool.ts) and its workers (worker.ts).
// One control block (a SharedArrayBuffer outside wasm memory) holds a few Int32 words and, as float64s, the
// offsets of the call's parameter block and scratch: the call itself is the parameter block in the shared wasm
// memory, which every thread reads. A call bumps GENERATION and wakes the
// workers. The items are split into one contiguous range per thread; every thread, the caller included, claims
// items of its own range one at a time with Atomics.add, then those left in the others' ranges, so a slow or
// descheduled thread simply takes fewer of them (causal blocks differ in cost too). Items of one kv head are
// consecutive, so with ranges each thread packs about its share of the heads' keys and values, where claiming
// from one shared counter made every thread pack every head.
import type { KernelExports } from './loader.js';

export const GENERATION = 0;
export const ITEMS = 1;
export const PENDING = 2;
export const FAILED = 3;
export const STOP = 4;
/** Workers blocked in Atomics.wait for the next call: the caller notifies only when there are any. */
export const SLEEPERS = 5;
/** 1 while the caller is blocked in Atomics.wait for PENDING: the last worker notifies only then. */
export const CALLER_ASLEEP = 6;
/**
 * Input staging (staging.ts): a call's units, work items per unit (0: every input is in memory when the call is
 * published), the unit copied first (the first of range 1), and how many units the caller has copied so far in its
 * order (FIRST_UNIT, FIRST_UNIT + 1, …, wrapping around). An item of unit u may run once COPIED > (u − FIRST_UNIT) mod UNITS.
 */
export const UNITS = 7;
export const PER_UNIT = 8;
export const FIRST_UNIT = 9;
export const COPIED = 10;
/** 1: every thread counts the items it finishes per unit in `done` (staging.ts copies finished units out). */
export const COUNT_DONE = 11;
/** Threads blocked in Atomics.wait for COPIED to rise: the caller notifies after a unit only when there are any. */
export const COPY_WAITERS = 12;
const WORDS = 14; // 13 used; 14 keeps the float64 args that follow 8-byte aligned
/** Units a call may count in `done`; a call with more copies its output out after the run. */
export const MAX_UNITS = 1024;

/**
 * How long a thread spins (re-reading a shared word) before it blocks in Atomics.wait, by default: a worker after
 * its call for the next one, the caller for the workers' last items. Waking a blocked thread takes a system call on
 * each side and tens of microseconds on a busy machine — as long as a whole small call — while back-to-back calls
 * (a model's layers, a decode loop) arrive within microseconds of each other. Spinning is bounded, so an idle
 * engine sleeps; `createAttention({ spinMs })` sets another bound (0: block at once).
 */
export const DEFAULT_SPIN_MS = 0.5;

/**
 * Spins until `words[index]` differs from `value` or `ms` pass; returns the last value read. The clock is read
 * once per 64 loads: a load is a few nanoseconds, a clock read tens.
 */
export function spinWhile(words: Int32Array, index: number, value: number, ms: number): number {
  const until = performance.now() + ms;
  for (;;) {
    for (let i = 0; i < 64; i++) {
      const now = Atomics.load(words, index);
      if (now !== value) return now;
    }
    if (performance.now() >= until) return value;
  }
}

/**
 * Indices in `args`: the parameter block's offset, thread 0's scratch, the bytes between threads' scratch, and
 * how long threads spin before they sleep (ms; set once when the pool starts).
 */
export const PARAMS = 0;
export const SCRATCH = 1;
export const SCRATCH_STRIDE = 2;
export const SPIN = 3;
const ARGS = 4;

export interface Control {
  readonly buffer: SharedArrayBuffer;
  readonly words: Int32Array;
  readonly args: Float64Array;
  /** Per thread t: how many items of range t have been claimed (rangeOf), reset to 0 before each call; its length
   * is the engine's thread count, the caller included. */
  readonly claimed: Int32Array;
  /** Per unit: items finished (with COUNT_DONE), reset before each call that counts. */
  readonly done: Int32Array;
}

export function createControl(spinMs: number, threads: number): Control {
  const control = controlOf(new SharedArrayBuffer(WORDS * 4 + ARGS * 8 + MAX_UNITS * 4 + threads * 4));
  control.args[SPIN] = spinMs;
  return control;
}

export function controlOf(buffer: SharedArrayBuffer): Control {
  const at = WORDS * 4 + ARGS * 8 + MAX_UNITS * 4;
  return {
    buffer, words: new Int32Array(buffer, 0, WORDS), args: new Float64Array(buffer, WORDS * 4, ARGS),
    done: new Int32Array(buffer, WORDS * 4 + ARGS * 8, MAX_UNITS),
    claimed: new Int32Array(buffer, at, (buffer.byteLength - at) >> 2),
  };
}

/** Thread t's items of a call of `items` on `threads` threads: [first, end), contiguous, sizes differing by ≤ 1. */
export function rangeOf(t: number, items: number, threads: number): [number, number] {
  return [Math.floor((t * items) / threads), Math.floor(((t + 1) * items) / threads)];
}

/**
 * Returns once the caller has copied `order` + 1 units (staging.ts): spins `spinMs`, then sleeps. COPY_WAITERS is
 * raised before COPIED is read again, so the caller either sees the sleeper and notifies, or the wait sees the rise.
 */
function waitForUnit(words: Int32Array, order: number, spinMs: number): void {
  for (let copied = Atomics.load(words, COPIED); copied <= order; copied = Atomics.load(words, COPIED)) {
    if (spinWhile(words, COPIED, copied, spinMs) !== copied) continue;
    Atomics.add(words, COPY_WAITERS, 1);
    Atomics.wait(words, COPIED, copied);
    Atomics.sub(words, COPY_WAITERS, 1);
  }
}

/**
 * Claims and runs work items of the current call until there are none left: its own range first, then what is
 * left of the others' (the next thread's first). Every item runs exactly once: a claim is an Atomics.add on the
 * range's counter, valid while it lands inside the range. Thread 0 is the caller; `afterItem` runs after each of
 * its items (staging.ts copies finished output out).
 */
export function runItems(kx: KernelExports, control: Control, thread: number, afterItem?: () => void): void {
  const { words, args, claimed, done } = control;
  const items = Atomics.load(words, ITEMS);
  const threads = claimed.length;
  const params = args[PARAMS]!;
  const scratch = args[SCRATCH]! + thread * args[SCRATCH_STRIDE]!;
  const perUnit = Atomics.load(words, PER_UNIT), units = Atomics.load(words, UNITS), firstUnit = Atomics.load(words, FIRST_UNIT);
  const counting = Atomics.load(words, COUNT_DONE) !== 0;
  let fresh = 1;
  for (let k = 0; k < threads; k++) {
    const range = (thread + k) % threads;
    const [first, end] = rangeOf(range, items, threads);
    for (let item = first + Atomics.add(claimed, range, 1); item < end; item = first + Atomics.add(claimed, range, 1)) {
      if (perUnit !== 0) waitForUnit(words, (Math.floor(item / perUnit) - firstUnit + units) % units, args[SPIN]!);
      kx.attention(item, 1, fresh, params, scratch);
      fresh = 0;
      if (counting) Atomics.add(done, Math.floor(item / perUnit), 1); // after the item's output is written
      afterItem?.();
    }
  }
}

/**
 * An instance of a threaded build on `memory` (shared with the engine's other threads). It lives here, not in
 * loader.ts, so a worker loads no inlined binaries: it receives its module compiled.
 */
export async function instantiateShared(module: WebAssembly.Module, memory: WebAssembly.Memory): Promise<KernelExports> {
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  return instance.exports as unknown as KernelExports;
}

/** What the engine sends a new worker. */
export interface WorkerInit {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly control: SharedArrayBuffer;
  readonly thread: number;
}

/** `seen` is the GENERATION read before replying ready: re-reading it here could miss a call made meanwhile. */
function serve(kx: KernelExports, control: Control, thread: number, seen: number): void {
  const { words, args } = control;
  const spinMs = args[SPIN]!;
  for (;;) {
    // The next call: spin a while, then sleep. SLEEPERS is raised before the wait re-checks GENERATION, so a caller
    // that bumps GENERATION either sees the sleeper and notifies, or the wait sees the new generation and returns.
    if (spinWhile(words, GENERATION, seen, spinMs) === seen) {
      Atomics.add(words, SLEEPERS, 1);
      Atomics.wait(words, GENERATION, seen);
      Atomics.sub(words, SLEEPERS, 1);
    }
    seen = Atomics.load(words, GENERATION);
    if (Atomics.load(words, STOP) !== 0) return;
    try {
      runItems(kx, control, thread);
    } catch {
      Atomics.store(words, FAILED, 1);
    }
    // The last worker out wakes the caller if it sleeps (it re-reads PENDING after raising CALLER_ASLEEP).
    if (Atomics.sub(words, PENDING, 1) === 1 && Atomics.load(words, CALLER_ASLEEP) !== 0) Atomics.notify(words, PENDING);
  }
}

/**
 * A worker's life (worker.ts, worker-node.ts): instantiates the engine's shared-memory kernels on the engine's
 * memory, says it is ready, then blocks in Atomics.wait between calls (so it never needs its event loop again)
 * until the engine stops it.
 */
export async function startWorker(init: WorkerInit, reply: (message: unknown) => void): Promise<void> {
  let kx: KernelExports;
  try {
    kx = await instantiateShared(init.module, init.memory);
  } catch (error) {
    reply({ error: String(error) });
    return;
  }
  const control = controlOf(init.control);
  // The engine sends no call before every worker is ready, so GENERATION is read before any bump.
  const seen = Atomics.load(control.words, GENERATION);
  reply({ ready: true, generation: seen });
  serve(kx, control, init.thread, seen);
}
