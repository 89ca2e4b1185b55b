// onnxruntime-web on its own thread count, in a worker thread: ORT fixes its wasm thread pool when its first
// session starts, so the model-shapes section runs one worker per thread count (workerData.threads) and drives
// it with messages — { setup: shape, variant } answers the output, { time } a tinybench median — so its rounds
// interleave with ours in one process.
import { parentPort, workerData } from 'node:worker_threads';
import { createOrtPeer, useOrtThreads } from '../peers/ort.mjs';
import { inputsFor } from '../shapes.mjs';
import { medianMs } from './timing.mjs';

useOrtThreads(workerData.threads);
let peer = null;
let input = null;
let firstMs = 0;

parentPort.on('message', async (m) => {
  try {
    if (m.setup) {
      await peer?.dispose();
      peer = null;
      peer = await createOrtPeer(m.variant, m.setup, m.options ?? {});
      input = inputsFor(m.setup);
      await peer.run(input.q, input.k, input.v);
      const t = performance.now();
      const out = await peer.run(input.q, input.k, input.v);
      firstMs = performance.now() - t;
      parentPort.postMessage({ out });
    } else if (m.time) {
      const run = () => peer.run(input.q, input.k, input.v);
      parentPort.postMessage(await medianMs('ort', run, firstMs > 150));
    } else if (m.close) {
      await peer?.dispose();
      parentPort.postMessage({ closed: true });
    }
  } catch (error) {
    parentPort.postMessage({ error: String(error?.stack ?? error) });
  }
});
