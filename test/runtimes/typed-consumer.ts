// A TypeScript consumer of the installed package, compiled with `tsc --noEmit` (module nodenext and bundler) by
// hygiene.mjs. The @ts-expect-error lines are part of the test: each must be a type error, or tsc fails.
import {
  ACTIVATIONS, AttentionError, BACKENDS, createAttention, createJsAttention, isBackendSupported,
  type Activation, type AttentionEngine, type AttentionErrorCode, type AttentionOptions, type AttentionWithWeights,
  type BackendName, type CausalMode, type EngineOptions, type FeatureMap, type HalfTensor, type KVCache, type KVCacheDtype,
  type LinearAttentionOptions, type LinearState,
} from 'wasm-attention';
import { attention as attentionJs } from 'wasm-attention/js';

const engineOptions: EngineOptions = { backend: 'auto', maxMemoryBytes: 1 << 26 };
const engine: AttentionEngine = await createAttention(engineOptions);
const backend: BackendName = engine.backend;
const names: readonly BackendName[] = BACKENDS.map((b) => b.name);
const supported: boolean = isBackendSupported('wasm-simd');
const activations: readonly Activation[] = ACTIVATIONS;
const causal: CausalMode = 'bottom-right';

const options: AttentionOptions = { batch: 1, heads: 2, seqQ: 4, seqK: 4, headDim: 8, causal };
const q = new Float32Array(64), k = new Float32Array(64), v = new Float32Array(64);

// The overloads: a plain call returns a Float32Array, returnWeights: true returns { output, weights }.
const out: Float32Array = engine.attention(q, k, v, options);
const both: AttentionWithWeights = engine.attention(q, k, v, { ...options, returnWeights: true });
const weights: Float32Array = both.weights;
const outJs: Float32Array = attentionJs(q, k, v, { ...options, mask: new Uint8Array(16) });
const sync: Float32Array = createJsAttention().attention(q, k, v, { ...options, activation: 'sigmoid', bias: -1 });

// Linear attention with a streaming state.
const state: LinearState = engine.createLinearState({ batch: 1, heads: 2, headDim: 8 });
const featureMap: FeatureMap = 'identity';
const linear: LinearAttentionOptions = { ...options, causal: true, featureMap, normalize: false, decay: new Float32Array(2), state };
const outLinear: Float32Array = engine.linearAttention(q, k, v, linear);
const folded: number = state.length;
state.dispose();

// KV caches: dtypes, ragged rows, rolling windows; 16-bit tensors, and a 16-bit out typed as what it is.
const dtype: KVCacheDtype = 'int8';
const cache: KVCache = engine.createKVCache({ batch: 2, kvHeads: 2, headDim: 8, capacity: 16, dtype, window: 8 });
cache.append(new Uint16Array(32), new Float32Array(32), { rows: [1] });
const lengths: Int32Array = cache.lengths;
const q16: HalfTensor = new Uint16Array(16);
const attended: Float32Array = cache.attend(q16, { heads: 2, seqQ: 1, rows: [1] });
const out16: Uint16Array = cache.attend(q16, { heads: 2, seqQ: 1, rows: [1], out: new Uint16Array(16) });
const bytes: number = cache.bytes;
cache.reset(1);

try {
  engine.attention(q, k, v, options);
} catch (error) {
  if (error instanceof AttentionError) {
    const code: AttentionErrorCode = error.code;
    const argument: string | undefined = error.argument;
    console.log(code, argument);
  }
}

// @ts-expect-error a Float64Array is not a Float32Array tensor
engine.attention(new Float64Array(64), k, v, options);
// @ts-expect-error batch is required
engine.attention(q, k, v, { heads: 2, seqQ: 4, seqK: 4, headDim: 8 });
// @ts-expect-error unknown causal mode
engine.attention(q, k, v, { ...options, causal: 'top-right' });
// @ts-expect-error unknown activation
engine.attention(q, k, v, { ...options, activation: 'gelu' });
// @ts-expect-error a typo is not an option
engine.attention(q, k, v, { ...options, casual: true });
// @ts-expect-error a plain call does not return weights
engine.attention(q, k, v, options).weights;
// @ts-expect-error unknown backend
await createAttention({ backend: 'webgpu' });
// @ts-expect-error backend is read-only
engine.backend = 'js';
// @ts-expect-error not an error code
const badCode: AttentionErrorCode = 'OOPS';
// @ts-expect-error unknown cache dtype
engine.createKVCache({ batch: 1, kvHeads: 1, headDim: 8, capacity: 4, dtype: 'int4' });
// @ts-expect-error an Int16Array is not a 16-bit float tensor
cache.attend(new Int16Array(16), { heads: 2, seqQ: 1 });
// @ts-expect-error unknown feature map
engine.linearAttention(q, k, v, { ...linear, featureMap: 'relu' });

engine.dispose();
export { attended, backend, badCode, bytes, folded, lengths, names, out, out16, outJs, outLinear, supported, sync, weights, activations };
