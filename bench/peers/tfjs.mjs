// @tensorflow/tfjs-backend-wasm (XNNPACK, SIMD, one thread) as a peer:
// matMul(q, k, false, true) · scale [+ causal mask] → softmax → matMul(v), then dataSync().
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

const require = createRequire(import.meta.url);
const tfjsDist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'));

export const TFJS_VERSION = tf.version_core;

let ready = null;
/** Loads the non-threaded SIMD binary from node_modules (Emscripten reads it with fs in Node). */
function init() {
  ready ??= (async () => {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false); // → tfjs-backend-wasm-simd.wasm, one thread
    tf.env().set('WASM_HAS_SIMD_SUPPORT', true);
    setWasmPaths(tfjsDist + path.sep);
    if (!(await tf.setBackend('wasm'))) throw new Error('tfjs wasm backend failed to initialise');
    await tf.ready();
  })();
  return ready;
}

/** `{ name, run(q, k, v) → Float32Array, dispose() }` for one shape. */
export async function createTfjsPeer(shape) {
  await init();
  const { batch: B, heads: H, seqQ: L, seqK: S, headDim: D } = shape;
  const scale = tf.scalar(1 / Math.sqrt(D));
  let mask = null;
  if (shape.causal) {
    const m = new Float32Array(L * S);
    for (let i = 0; i < L; i++) for (let j = i + 1; j < S; j++) m[i * S + j] = -Infinity;
    mask = tf.tensor2d(m, [L, S]);
  }
  return {
    name: 'tfjs-wasm',
    run(q, k, v) {
      // matMul works on rank-3 batches: fold B·H into one batch dimension.
      const out = tf.tidy(() => {
        const qt = tf.tensor3d(q, [B * H, L, D]);
        const kt = tf.tensor3d(k, [B * H, S, D]);
        const vt = tf.tensor3d(v, [B * H, S, D]);
        let scores = tf.mul(tf.matMul(qt, kt, false, true), scale);
        if (mask) scores = tf.add(scores, mask);
        return tf.matMul(tf.softmax(scores, -1), vt);
      });
      const data = out.dataSync();
      out.dispose();
      return data;
    },
    dispose() { scale.dispose(); mask?.dispose(); },
  };
}

export const tfjsBackendInfo = () => ({ backend: tf.getBackend(), numTensors: tf.memory().numTensors });
