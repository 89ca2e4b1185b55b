// Thread 1 of a simulated two-thread call (test/staging.test.ts): runs runItems on the shared control block with a
// stand-in kernel that logs each item it runs and how many units the caller had copied (COPIED) at that moment.
import { parentPort, workerData } from 'node:worker_threads';
import { COPIED, controlOf, runItems } from '../../dist/wasm/work.js';

const control = controlOf(workerData.control);
const log = new Int32Array(workerData.log); // [entries, item 0, copied 0, item 1, copied 1, …]
const kx = {
  attention(item) {
    const n = Atomics.add(log, 0, 1);
    log[1 + 2 * n] = item;
    log[2 + 2 * n] = Atomics.load(control.words, COPIED);
  },
};
parentPort.postMessage('ready'); // the test raises COPIED only from now on
runItems(kx, control, 1);
parentPort.postMessage('done');
