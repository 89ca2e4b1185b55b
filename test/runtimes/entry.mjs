// Entry point of the smoke suite for Node, Deno and Bun: imports the installed package by name, as a user does.
// Usage: <runtime> entry.mjs <expected backend> <label> <threads: yes | no | maybe>
import * as pkg from 'wasm-attention';
import * as jsOnly from 'wasm-attention/js';
import { referenceAttention } from './cases.mjs';
import { runSmoke } from './smoke.mjs';

const args = globalThis.Deno ? globalThis.Deno.args : process.argv.slice(2);
const [expectBackend, label, threads] = args;
const expectThreads = { yes: true, no: false }[threads];
const result = await runSmoke(pkg, { expectBackend, label, expectThreads });

// The wasm-free subpath export works and agrees with the reference too.
const o = { batch: 1, heads: 1, seqQ: 3, seqK: 4, headDim: 2, causal: true };
const q = Float32Array.of(1, 0, 0, 1, 1, 1), k = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8), v = k.map((x) => -x);
const want = referenceAttention(q, k, v, o);
const got = jsOnly.attention(q, k, v, o);
if (got.length !== want.length || got.some((x, i) => Math.abs(x - want[i]) > 1e-5 * 8)) {
  throw new Error(`wasm-attention/js: got ${Array.from(got)}, want ${Array.from(want)}`);
}

// A threaded engine left undisposed: its workers must not keep the process alive (runtimes.mjs times out a hang).
if (result.threads === 'ok') {
  const engine = await pkg.createAttention({ threads: 2 });
  const x = new Float32Array(2 * 100 * 8).fill(0.5);
  const out = engine.attention(x, x, x, { batch: 1, heads: 2, seqQ: 100, seqK: 100, headDim: 8 });
  if (!out.every((y) => Math.abs(y - 0.5) < 1e-6)) throw new Error('undisposed threaded engine: wrong result');
}
console.log(`SMOKE ${JSON.stringify(result)}`);
