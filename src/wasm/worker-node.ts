// The worker of a threaded engine in Node, Deno and Bun: a node:worker_threads worker (pool.ts). Bundlers never
// see it: pool.ts names it through a variable, so only the browser worker (worker.ts) is bundled.
import { startWorker } from './work.js';
import type { WorkerInit } from './work.js';

interface NodePort {
  once(event: 'message', listener: (init: WorkerInit) => void): void;
  postMessage(message: unknown): void;
}
const { parentPort } = await (import('node:worker_threads' as string) as Promise<{ parentPort: NodePort | null }>);
if (parentPort === null) throw new Error('wasm-attention: worker-node.js runs only as a node:worker_threads worker');
parentPort.once('message', (init) => void startWorker(init, (m) => parentPort.postMessage(m)));
