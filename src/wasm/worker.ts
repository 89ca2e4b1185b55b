// The worker of a threaded engine in browsers: a module Web Worker (pool.ts). Bundlers build it as a separate
// entry, Vite by default as an IIFE, which allows neither top-level await nor dynamic imports: this file and what
// it imports have neither, and nothing of Node (worker-node.ts is the worker for Node, Deno and Bun).
import { startWorker } from './work.js';
import type { WorkerInit } from './work.js';

const scope = globalThis as unknown as { onmessage: ((e: { data: WorkerInit }) => void) | null; postMessage(m: unknown): void };
scope.onmessage = (e) => {
  scope.onmessage = null;
  void startWorker(e.data, (m) => scope.postMessage(m));
};
