// The worker threads of a threaded engine (worker.ts in browsers, worker-node.ts in Node, Deno and Bun). Each
// worker instantiates the shared-memory kernels on the engine's memory; a call is published through the control
// block (work.ts) and the calling thread works too, then waits for the workers (Atomics.wait; a browser's main
// thread, which may not block, spins instead).
import { AttentionError } from '../errors.js';
import type { KernelExports } from './loader.js';
import {
  CALLER_ASLEEP, DEFAULT_SPIN_MS, FAILED, GENERATION, ITEMS, PARAMS, PENDING, SCRATCH, SCRATCH_STRIDE, SLEEPERS, STOP,
  createControl, runItems, spinWhile,
} from './work.js';
import { copyInputs, outputCopier, publishStaging } from './staging.js';
import type { Staging } from './staging.js';
import type { WorkerInit } from './work.js';

/** How long a new worker may take to load before createAttention gives up. */
const START_TIMEOUT_MS = 30_000;

/**
 * When a call is worth sharing: at least `minFlops` (4·B·H·L·S·D-style count, causal halved, see engine.ts). Below
 * that the caller runs the call alone — the threads would cost more (waking a worker, its last item) than they
 * save. Measured on a 2-core AMD EPYC with spinning workers: 1.05 MFLOP (B1 H2 L64 S64 D32, 32 µs) ran 0.99× one
 * thread, 2.1 MFLOP 1.12×, 4.2 MFLOP 1.17×, 25 MFLOP (MiniLM) 1.40×. Tests set it to 0 to share every call.
 */
export const splitPolicy = { minFlops: 2e6 };

export interface ThreadPool {
  /** Threads working on a call, the caller included. */
  readonly threads: number;
  /**
   * Runs work items 0 … items − 1 of the `attention` call whose parameter block is at `params`, on every thread.
   * With `staging`, the inputs are not in memory yet: the workers start at once, and the caller copies them unit by
   * unit (staging.ts) before it computes, and copies finished output out between its items.
   */
  run(kx: KernelExports, params: number, items: number, scratch: number, scratchStride: number, staging?: Staging): void;
  /** Stops and terminates the workers. Idempotent. */
  stop(): void;
  /** Workers blocked in Atomics.wait for the next call (the others spin or compute). */
  sleeping(): number;
}

interface WorkerHandle {
  post(message: WorkerInit): void;
  listen(onMessage: (data: unknown) => void, onError: (error: unknown) => void): void;
  detach(): void;
  terminate(): void;
}

/** Node, Deno and Bun (they have node:worker_threads); browsers get module Web Workers. */
const hasNodeWorkers = (): boolean =>
  (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node !== undefined;

/**
 * Why this runtime cannot run a threaded engine, or null if it can. Threads need shared memory (SharedArrayBuffer
 * and Atomics) and workers. Browsers give SharedArrayBuffer only to cross-origin isolated pages, and some engines
 * (WebKitGTK 2.50) not even then, so the reason names which: a missing COOP/COEP, or an engine without it.
 */
export function threadsAvailable(): string | null {
  const g = globalThis as { crossOriginIsolated?: boolean; Worker?: unknown };
  const missing = typeof SharedArrayBuffer !== 'function' ? 'SharedArrayBuffer' : typeof Atomics !== 'object' ? 'Atomics' : null;
  if (g.crossOriginIsolated === false) {
    return 'the page is not cross-origin isolated (serve it with COOP and COEP headers), so memory cannot be shared';
  }
  if (missing !== null) {
    return g.crossOriginIsolated === true
      ? `this browser engine has no ${missing} even though the page is cross-origin isolated, so memory cannot be shared`
      : `this runtime has no ${missing}, so memory cannot be shared`;
  }
  if (!hasNodeWorkers() && typeof g.Worker !== 'function') return 'this runtime has no Worker';
  return null;
}

async function spawn(): Promise<WorkerHandle> {
  if (hasNodeWorkers()) {
    type NodeWorker = {
      postMessage(m: unknown): void; on(e: string, f: (x: unknown) => void): void; removeAllListeners(e: string): void;
      unref(): void; terminate(): unknown;
    };
    const { Worker } = await (import('node:worker_threads' as string) as Promise<{
      Worker: new (url: URL, options: { execArgv: string[] }) => NodeWorker;
    }>);
    // The worker needs none of the parent's Node options (some, like --input-type, stop a worker from starting);
    // V8 flags such as --experimental-wasm-relaxed-simd are process-wide and apply to it anyway. The file is named
    // through a variable: bundlers must not take this branch's worker for a browser worker (Vite would bundle it
    // as a classic worker and fail the whole build).
    const file = './worker-node.js';
    const worker = new Worker(new URL(file, import.meta.url), { execArgv: [] });
    return {
      post: (m) => worker.postMessage(m),
      listen(onMessage, onError) {
        worker.on('message', onMessage);
        worker.on('error', onError);
      },
      // Once started, an idle worker must not keep the process alive (engines need not be disposed for a script
      // to exit). Node re-references a worker that gains a 'message' listener, so listeners go first.
      detach() {
        worker.removeAllListeners('message');
        worker.removeAllListeners('error');
        worker.on('error', () => undefined);
        worker.unref();
      },
      terminate: () => void worker.terminate(),
    };
  }
  // Written out literally so bundlers (Vite, webpack, esbuild) find and emit the worker file.
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  return {
    post: (m) => worker.postMessage(m),
    listen(onMessage, onError) {
      worker.onmessage = (e) => onMessage(e.data);
      worker.onerror = (e) => onError(e.message);
    },
    detach() {
      worker.onmessage = null;
      worker.onerror = null;
    },
    terminate: () => worker.terminate(),
  };
}

function started(handle: WorkerHandle): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    handle.listen((data) => {
      clearTimeout(timer);
      const d = data as { ready?: boolean; error?: string };
      if (d.ready === true) resolve();
      else reject(new Error(d.error ?? 'unexpected message'));
    }, (error) => {
      clearTimeout(timer);
      reject(error instanceof Error ? error : new Error(String(error)));
    });
  });
}

/**
 * Starts `threads − 1` workers on `memory`; the calling thread is the last one. Idle threads spin `spinMs` before
 * they block (work.ts DEFAULT_SPIN_MS).
 */
export async function createPool(
  module: WebAssembly.Module, memory: WebAssembly.Memory, threads: number, spinMs = DEFAULT_SPIN_MS,
): Promise<ThreadPool> {
  const control = createControl(spinMs, threads);
  const { words, args, claimed } = control;
  const workers: WorkerHandle[] = [];
  try {
    for (let t = 1; t < threads; t++) workers.push(await spawn());
    const ready = workers.map((w) => started(w));
    workers.forEach((w, i) => w.post({ module, memory, control: control.buffer, thread: i + 1 }));
    await Promise.all(ready);
    for (const w of workers) w.detach();
  } catch (cause) {
    for (const w of workers) w.terminate();
    throw new AttentionError('BACKEND_UNAVAILABLE', `could not start worker threads (${String(cause)})`, 'options.threads');
  }
  let canBlock = true;
  try {
    Atomics.wait(words, STOP, 1, 0); // returns at once ('not-equal'); throws where this thread may not block
  } catch {
    canBlock = false;
  }
  let stopped = false;

  /** Returns once every worker has finished the call: spins a while, then sleeps where this thread may block. */
  function waitForWorkers(): void {
    for (;;) {
      let pending = Atomics.load(words, PENDING);
      if (pending === 0) return;
      pending = spinWhile(words, PENDING, pending, spinMs);
      if (pending === 0 || !canBlock) continue;
      Atomics.store(words, CALLER_ASLEEP, 1);
      pending = Atomics.load(words, PENDING);
      if (pending !== 0) Atomics.wait(words, PENDING, pending);
      Atomics.store(words, CALLER_ASLEEP, 0);
    }
  }

  return {
    threads,
    run(kx, params, items, scratch, scratchStride, staging) {
      if (stopped) throw new AttentionError('DISPOSED', 'this engine was disposed');
      args[PARAMS] = params;
      args[SCRATCH] = scratch;
      args[SCRATCH_STRIDE] = scratchStride;
      for (let t = 0; t < threads; t++) Atomics.store(claimed, t, 0);
      Atomics.store(words, ITEMS, items);
      Atomics.store(words, FAILED, 0);
      Atomics.store(words, PENDING, workers.length);
      publishStaging(control, staging, items, threads);
      Atomics.add(words, GENERATION, 1);
      if (Atomics.load(words, SLEEPERS) !== 0) Atomics.notify(words, GENERATION); // spinning workers need no system call
      const copier = staging?.copyOut != null ? outputCopier(control, staging, items, threads) : null;
      try {
        if (staging !== undefined) copyInputs(control, staging, items, threads);
        runItems(kx, control, 0, copier?.scan);
      } finally {
        // Even if this thread failed, the workers still read the arguments: the next call must not overwrite them.
        waitForWorkers();
      }
      if (Atomics.load(words, FAILED) !== 0) throw new Error('wasm-attention: a worker thread failed while computing attention');
      copier?.finish();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      Atomics.store(words, STOP, 1);
      Atomics.add(words, GENERATION, 1);
      Atomics.notify(words, GENERATION);
      for (const w of workers) w.terminate();
    },
    sleeping: () => Atomics.load(words, SLEEPERS),
  };
}
