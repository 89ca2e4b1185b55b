// A worker_threads worker for test/concurrency.test.ts: imports the built package, creates its own engine and
// answers { id, q, k, v, options } messages with the output (transferred back).
import { parentPort, workerData } from 'node:worker_threads';
import { createAttention } from '../../dist/index.js';

const engine = await createAttention({ backend: workerData.backend });
parentPort.on('message', (msg) => {
  if (msg === 'close') {
    engine.dispose();
    parentPort.close();
    return;
  }
  try {
    const out = engine.attention(msg.q, msg.k, msg.v, msg.options);
    parentPort.postMessage({ id: msg.id, backend: engine.backend, out }, [out.buffer]);
  } catch (error) {
    parentPort.postMessage({ id: msg.id, error: `${error.name} ${error.code}: ${error.message}` });
  }
});
parentPort.postMessage({ ready: engine.backend });
