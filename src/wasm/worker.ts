// A worker thread of a threaded engine: node:worker_threads in Node, Deno and Bun, a module Web Worker in
// browsers. It instantiates the engine's shared-memory kernels on the engine's memory, says it is ready, then
// blocks in Atomics.wait between calls (so it never needs its event loop again) until the engine stops it.
import { instantiateShared } from './loader.js';
import type { KernelExports } from './loader.js';
import { FAILED, GENERATION, PENDING, STOP, controlOf, runItems } from './work.js';
import type { Control } from './work.js';

/** What the engine sends a new worker. */
export interface WorkerInit {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly control: SharedArrayBuffer;
  readonly thread: number;
}

function serve(kx: KernelExports, control: Control, thread: number): void {
  const { words } = control;
  let seen = Atomics.load(words, GENERATION);
  for (;;) {
    Atomics.wait(words, GENERATION, seen);
    seen = Atomics.load(words, GENERATION);
    if (Atomics.load(words, STOP) !== 0) return;
    try {
      runItems(kx, control, thread);
    } catch {
      Atomics.store(words, FAILED, 1);
    }
    if (Atomics.sub(words, PENDING, 1) === 1) Atomics.notify(words, PENDING);
  }
}

async function start(init: WorkerInit, reply: (message: unknown) => void): Promise<void> {
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
  serve(kx, control, init.thread);
}

// Node's worker_threads when there is a parent port (Node, Deno, Bun), else the Web Worker globals.
interface NodePort {
  once(event: 'message', listener: (init: WorkerInit) => void): void;
  postMessage(message: unknown): void;
}
const nodeProcess = (globalThis as { process?: { versions?: { node?: string } } }).process;
const workerThreads = nodeProcess?.versions?.node !== undefined
  ? await (import('node:worker_threads' as string) as Promise<{ parentPort: NodePort | null }>).catch(() => null)
  : null;
const port = workerThreads?.parentPort ?? null;
if (port !== null) {
  port.once('message', (init) => void start(init, (m) => port.postMessage(m)));
} else {
  const scope = globalThis as unknown as { onmessage: ((e: { data: WorkerInit }) => void) | null; postMessage(m: unknown): void };
  scope.onmessage = (e) => {
    scope.onmessage = null;
    void start(e.data, (m) => scope.postMessage(m));
  };
}
