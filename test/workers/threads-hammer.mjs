// Child process of test/threads-watchdog.test.ts: back-to-back threaded calls (2 and 3 threads, spinning and
// sleeping workers) over mixed shapes, 16-bit tensors and bad calls in between, each checked element for element
// against a one-thread engine. Prints "ok <calls>" and exits 0, or exits 1 on a mismatch. A stall never prints.
import { createAttention } from '../../dist/index.js';
import { splitPolicy } from '../../dist/wasm/pool.js';
import { random } from '../runtimes/cases.mjs';
import { halfBitsOf, toHalf } from '../runtimes/quantize.mjs';

splitPolicy.minFlops = 0; // share every call, however small
const [calls, seed] = process.argv.slice(2).map(Number);
const backend = 'wasm-relaxed-simd';
const one = await createAttention({ backend });
const threaded = [
  await createAttention({ backend, threads: 2 }),
  await createAttention({ backend, threads: 2, spinMs: 0 }),
  await createAttention({ backend, threads: 3, spinMs: 0.05 }),
];
const bits = (x) => Uint16Array.from(x, (v) => halfBitsOf(toHalf(v)));
let t = seed >>> 0;
const pick = (n) => ((t = (Math.imul(t ^ (t >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) % n);
for (let i = 0; i < calls; i++) {
  const heads = 1 + pick(4), kvHeads = [1, heads][pick(2)], seqQ = [1, 2, 5, 64, 65, 130][pick(6)];
  const seqK = [1, 7, 129, 300][pick(4)], headDim = [3, 16, 64][pick(3)];
  const o = { batch: 1 + pick(2), heads, kvHeads, seqQ, seqK, headDim, causal: [false, true, 'bottom-right'][pick(3)] };
  let q = random(o.batch * heads * seqQ * headDim, i), k = random(o.batch * kvHeads * seqK * headDim, i + 1);
  let v = random(o.batch * kvHeads * seqK * headDim, i + 2);
  if (pick(3) === 0) [q, k, v] = [bits(q), bits(k), bits(v)];
  const e = threaded[pick(threaded.length)];
  if (pick(10) === 0) {
    try {
      e.attention(q, k, v.subarray(1), o);
      process.exit(1); // a bad call must throw
    } catch {}
  }
  const want = one.attention(q, k, v, o), got = e.attention(q, k, v, o);
  for (let j = 0; j < want.length; j++) {
    if (!Object.is(want[j], got[j])) {
      console.error(`call ${i}: element ${j} ${got[j]} vs ${want[j]} (${JSON.stringify(o)}, threads ${e.threads})`);
      process.exit(1);
    }
  }
}
for (const e of [one, ...threaded]) e.dispose();
console.log(`ok ${calls}`);
