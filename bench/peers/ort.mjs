// onnxruntime-web (wasm backend, one thread unless useOrtThreads) as a peer: two ONNX graphs built in JS (./onnx-proto.mjs).
//  - 'plain': MatMul(Q, Transpose(K)) → Mul(scale) → [Add causal mask] → Softmax(−1) → MatMul(V), on [B,H,L,D].
//  - 'mha':   com.microsoft MultiHeadAttention. The op wants query as [B, L, H·D]; the user's q is [B,H,L,D], so
//             the graph does Transpose(0,2,1,3)+Reshape before it and Reshape+Transpose after it (part of the call).
//             key/value go in as [B,H,S,D] (the op's BNSH "past key/value" form), no transpose needed.
//             Causal: an attention_bias [1,1,L,S] with −Infinity above the diagonal (see below for why not
//             `unidirectional`).
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-web';
import { int64s, model, node, tensor, valueInfo } from './onnx-proto.mjs';

const require = createRequire(import.meta.url);
const ortDist = path.dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));

ort.env.wasm.numThreads = 1;
ort.env.wasm.simd = true;
ort.env.wasm.proxy = false;
ort.env.wasm.wasmPaths = pathToFileURL(ortDist + path.sep).href;
ort.env.logLevel = 'error';

export const ORT_VERSION = ort.env.versions?.web ?? '1.30';

/** Threads of ORT's wasm backend (its pthread pool): takes effect only before the first session is created. */
export function useOrtThreads(n) {
  ort.env.wasm.numThreads = n;
}

/** Causal mask −Infinity where query i may not see key j (top-left, or bottom-right), as a [L, S] float32 array. */
function causalBias(L, S, bottomRight = false) {
  const m = new Float32Array(L * S);
  const off = bottomRight ? S - L : 0;
  for (let i = 0; i < L; i++) for (let j = Math.max(0, i + off + 1); j < S; j++) m[i * S + j] = -Infinity;
  return m;
}

/**
 * The plain graph, for any shape the model-shapes table needs: GQA (kvHeads < heads) as a reshape of q to
 * [B, KVH, G·L, D], so one MatMul per kv head serves its G query heads without copying k or v; Gemma-2's soft-cap
 * as Div → Tanh → Mul; causal (either alignment) as an added [L, S] −∞ mask.
 */
function plainModel(s) {
  const { batch: B, heads: H, seqQ: L, seqK: S, headDim: D } = s;
  const KVH = s.kvHeads ?? H, G = H / KVH;
  const scale = 1 / Math.sqrt(D);
  const nodes = [];
  const initializers = [tensor('scale', [], new Float32Array([scale]))];
  let qIn = 'q';
  if (G > 1) {
    initializers.push(tensor('shape_q', [4], int64s([B, KVH, G * L, D])));
    nodes.push(node('Reshape', ['q', 'shape_q'], ['qg']));
    qIn = 'qg';
  }
  nodes.push(
    node('Transpose', ['k'], ['kt'], { perm: [0, 1, 3, 2] }),
    node('MatMul', [qIn, 'kt'], ['qk']),
    node('Mul', ['qk', 'scale'], ['scores']),
  );
  let logits = 'scores';
  if (s.softcap !== undefined) {
    initializers.push(tensor('cap', [], new Float32Array([s.softcap])));
    nodes.push(node('Div', [logits, 'cap'], ['capped0']), node('Tanh', ['capped0'], ['capped1']), node('Mul', ['capped1', 'cap'], ['capped']));
    logits = 'capped';
  }
  const masked = s.causal && !(s.causal === 'bottom-right' && L === 1);
  if (masked && G > 1) { // [B, KVH, G, L, S] so the [L, S] mask broadcasts over the group
    initializers.push(tensor('shape_s5', [5], int64s([B, KVH, G, L, S])));
    nodes.push(node('Reshape', [logits, 'shape_s5'], ['scores5']));
    logits = 'scores5';
  }
  if (masked) {
    initializers.push(tensor('mask', [L, S], causalBias(L, S, s.causal === 'bottom-right')));
    nodes.push(node('Add', [logits, 'mask'], ['masked']));
    logits = 'masked';
  }
  nodes.push(node('Softmax', [logits], ['p'], { axis: -1 }));
  let p = 'p';
  if (masked && G > 1) {
    initializers.push(tensor('shape_p', [4], int64s([B, KVH, G * L, S])));
    nodes.push(node('Reshape', ['p', 'shape_p'], ['p4']));
    p = 'p4';
  }
  if (G > 1) {
    initializers.push(tensor('shape_out', [4], int64s([B, H, L, D])));
    nodes.push(node('MatMul', [p, 'v'], ['og']), node('Reshape', ['og', 'shape_out'], ['out']));
  } else {
    nodes.push(node('MatMul', [p, 'v'], ['out']));
  }
  return model({
    nodes, initializers,
    inputs: [valueInfo('q', [B, H, L, D]), valueInfo('k', [B, KVH, S, D]), valueInfo('v', [B, KVH, S, D])],
    outputs: [valueInfo('out', [B, H, L, D])],
  });
}

function mhaModel(s, { causalVia = 'bias' } = {}) {
  const { batch: B, heads: H, seqQ: L, seqK: S, headDim: D } = s;
  const nodes = [
    node('Transpose', ['q'], ['q_blhd'], { perm: [0, 2, 1, 3] }),
    node('Reshape', ['q_blhd', 'shape_bld'], ['q_bld']),
  ];
  const initializers = [tensor('shape_bld', [3], int64s([B, L, H * D])), tensor('shape_blhd', [4], int64s([B, L, H, D]))];
  const mhaInputs = ['q_bld', 'k', 'v'];
  const attrs = { num_heads: H, scale: { float: 1 / Math.sqrt(D) } };
  if (s.causal && causalVia === 'bias') {
    initializers.push(tensor('bias', [1, 1, L, S], causalBias(L, S)));
    mhaInputs.push('', '', 'bias');
  } else if (s.causal) {
    attrs.unidirectional = 1;
  }
  nodes.push(
    node('MultiHeadAttention', mhaInputs, ['o_bld'], attrs, 'com.microsoft'),
    node('Reshape', ['o_bld', 'shape_blhd'], ['o_blhd']),
    node('Transpose', ['o_blhd'], ['out'], { perm: [0, 2, 1, 3] }),
  );
  return model({
    nodes, initializers,
    inputs: [valueInfo('q', [B, H, L, D]), valueInfo('k', [B, H, S, D]), valueInfo('v', [B, H, S, D])],
    outputs: [valueInfo('out', [B, H, L, D])],
    opsets: { '': 17, 'com.microsoft': 1 },
  });
}

/**
 * A peer for one shape: `{ name, run(q, k, v) → Promise<Float32Array>, dispose() }`. run() is the whole call a user
 * makes: wrap the Float32Arrays in ort.Tensors, session.run, read the output's data.
 */
export async function createOrtPeer(variant, shape, options = {}) {
  const bytes = variant === 'plain' ? plainModel(shape) : mhaModel(shape, options);
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: ort.env.wasm.numThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const { batch: B, heads: H, seqQ: L, seqK: S, headDim: D } = shape;
  const KVH = shape.kvHeads ?? H;
  return {
    name: variant === 'plain' ? 'ORT plain' : 'ORT MHA',
    async run(q, k, v) {
      const feeds = {
        q: new ort.Tensor('float32', q, [B, H, L, D]),
        k: new ort.Tensor('float32', k, [B, KVH, S, D]),
        v: new ort.Tensor('float32', v, [B, KVH, S, D]),
      };
      const result = await session.run(feeds);
      const out = result.out;
      const data = out.data; // Float32Array copied out of ORT's wasm heap (cpu location)
      out.dispose?.();
      return data;
    },
    async dispose() { await session.release(); },
  };
}
