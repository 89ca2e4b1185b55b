// Entry point of the smoke suite for Node, Deno and Bun: imports the installed package by name, as a user does.
// Usage: <runtime> entry.mjs <expected backend> <label>
import * as pkg from 'wasm-attention';
import * as jsOnly from 'wasm-attention/js';
import { reference, runSmoke } from './smoke.mjs';

const args = globalThis.Deno ? globalThis.Deno.args : process.argv.slice(2);
const [expectBackend, label] = args;
const result = await runSmoke(pkg, { expectBackend, label });

// The wasm-free subpath export works and agrees with the reference too.
const o = { batch: 1, heads: 1, seqQ: 3, seqK: 4, headDim: 2, causal: true };
const q = Float32Array.of(1, 0, 0, 1, 1, 1), k = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8), v = k.map((x) => -x);
const want = reference(q, k, v, o);
const got = jsOnly.attention(q, k, v, o);
if (got.length !== want.length || got.some((x, i) => Math.abs(x - want[i]) > 1e-5 * 8)) {
  throw new Error(`wasm-attention/js: got ${Array.from(got)}, want ${Array.from(want)}`);
}
console.log(`SMOKE ${JSON.stringify(result)}`);
