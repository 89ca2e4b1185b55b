// The one description of the interface between the TypeScript host and the wasm kernels (ggml's op_params,
// XNNPACK's params struct, llama2.c's Config): the parameter block every kernel call reads, the codes inside
// it and the kernels' block sizes. scripts/gen-schema.mjs turns it into assembly/params.generated.ts (an
// unmanaged class with one inlined load per field) and src/params.generated.ts (word offsets, a writer and the
// same constants), so no offset or code is ever typed twice.

/** Kernel blocking: query rows per block (a multiple of the 4-row micro-tile; 64 measured best of 16/32/64 on
 * S1–S3) and keys per block (a multiple of the 8-key panel; 128 beat 64 by 1–2 % on S1–S3 and S5, 256 no better).
 * LC: keys per chunk of chunkwise linear attention (a multiple of 8, at most the 128-float row of BLOCK_STRIDE). */
export const BLOCKS = { BR: 64, BC: 128, LC: 64 };

/** Activations in the order of their codes: `ACT_SOFTMAX = 0`, … The TS API lists them in this order too. */
export const ACTIVATIONS = ['softmax', 'softmax1', 'squared', 'sigmoid', 'relu', 'polynomial'];

/** Mask kinds in the order of their codes: `MASK_NONE = 0`, … */
export const MASK_KINDS = ['none', 'additive-f32', 'bool-u8'];

/** Causal modes in the order of their codes: `CAUSAL_NONE = 0`, … */
export const CAUSAL_MODES = ['none', 'top-left', 'bottom-right'];

/** Feature maps of linear attention in the order of their codes: `FEATURE_ELU_1 = 0`, `FEATURE_IDENTITY = 1`. */
export const FEATURE_MAPS = ['elu+1', 'identity'];

/**
 * Element types in the order of their codes: `DTYPE_FLOAT32 = 0`, … Tensors (q, k, v, out, appended tokens) are
 * float32 or float16 (IEEE binary16 bits); a resident KV cache stores float32, float16 or int8 (blocks of 32
 * channels with one float32 scale each).
 */
export const DTYPES = ['float32', 'float16', 'int8'];

/**
 * The parameter block: one 4-byte word per field, in this order. `ptr` is a byte offset in wasm memory (u32),
 * `i32` an integer, `f32` a float32. A call writes the block once; every thread of the call reads the same one.
 */
export const PARAMS = [
  // tensors
  ['q', 'ptr', 'queries (B,H,L,D)'],
  ['k', 'ptr', 'keys (B,KVH,S,D), or a resident cache\'s packed key panels'],
  ['v', 'ptr', 'values (B,KVH,S,Dv), or a resident cache\'s padded value rows'],
  ['out', 'ptr', 'output (B,H,L,Dv)'],
  ['mask', 'ptr', 'mask, addressed with the element strides msB, msH, msL, msS'],
  ['weights', 'ptr', 'where to write the (B,H,L,S) weights when returnWeights != 0'],
  // shape
  ['B', 'i32', 'batch'],
  ['H', 'i32', 'query heads'],
  ['KVH', 'i32', 'key/value heads; query head h reads kv head ⌊h / (H / KVH)⌋'],
  ['L', 'i32', 'query rows'],
  ['S', 'i32', 'keys'],
  ['D', 'i32', 'head dimension of q and k'],
  ['Dv', 'i32', 'head dimension of v and out'],
  // score stage
  ['scale', 'f32', 'multiplies q·kᵀ'],
  ['softcap', 'f32', 'scores ← softcap·tanh(scores / softcap) when > 0'],
  ['causal', 'i32', 'CAUSAL_* code: top-left admits j ≤ i, bottom-right j ≤ i + off_b'],
  ['keyLengths', 'ptr', 'i32 per batch row: keys it uses (0 = S for every row); off_b = keys_b − L'],
  ['windowLeft', 'i32', 'query i admits keys j ≥ i + off_b − windowLeft (L + S = no bound)'],
  ['windowRight', 'i32', 'query i admits keys j ≤ i + off_b + windowRight (L + S = no bound)'],
  ['alibi', 'ptr', 'f32 per query head: score −= slope_h·|i + off_b − j| (0 = none)'],
  ['sinks', 'ptr', 'f32 per query head: one more logit in the softmax denominator (0 = none)'],
  ['maskKind', 'i32', 'MASK_* code'],
  ['msB', 'i32', 'mask element stride along batch (0 = broadcast)'],
  ['msH', 'i32', 'mask element stride along heads'],
  ['msL', 'i32', 'mask element stride along query rows'],
  ['msS', 'i32', 'mask element stride along keys'],
  ['activation', 'i32', 'ACT_* code'],
  ['param', 'f32', 'the activation\'s constant: ε (squared, linear), bias (sigmoid), 1/S (relu), 1/√S (polynomial)'],
  ['rowParams', 'ptr', 'f32 per batch row: param for that row\'s key count keys_b (sigmoid default bias, relu, polynomial with key lengths; 0 = param for every row)'],
  ['power', 'i32', 'polynomial exponent'],
  ['returnWeights', 'i32', '!= 0: every key in one block, normalised weights written to `weights`'],
  // layout and rotary embedding
  ['bshd', 'i32', '!= 0: q, k, v, out are (B, seq, heads, dim) instead of (B, heads, seq, dim)'],
  ['ropeDims', 'i32', 'ropeInPlace: channels rotated (even)'],
  ['ropeInterleaved', 'i32', 'ropeInPlace: != 0 pairs (2t, 2t + 1), else (t, t + ropeDims/2)'],
  // KV cache
  ['resident', 'i32', '!= 0: k and v are a resident KV cache in the kernels\' layouts (kvcache.ts), `capacity` slots per (row, kv head)'],
  ['capacity', 'i32', 'slots of a resident cache per (row, kv head), a multiple of 8: position t lives in slot t mod capacity'],
  ['kType', 'i32', 'DTYPE_* code of a resident cache\'s keys'],
  ['vType', 'i32', 'DTYPE_* code of a resident cache\'s values'],
  ['kScales', 'ptr', 'int8 cache: float32 scales of the keys (one per token and block of 32 channels)'],
  ['vScales', 'ptr', 'int8 cache: float32 scales of the values'],
  ['cacheRows', 'ptr', 'i32 per batch row: the cache row it reads (attention) or writes (kvAppend); 0 = row b'],
  ['cacheK', 'ptr', 'kvAppend: the cache\'s keys (k and v are then the new tokens, S of them per batch row)'],
  ['cacheV', 'ptr', 'kvAppend: the cache\'s values'],
  ['cachePositions', 'ptr', 'kvAppend: i32 per batch row, the position of its first new token'],
  // element types of the call's tensors
  ['qType', 'i32', 'DTYPE_* code of q: float32 or float16'],
  ['kInType', 'i32', 'DTYPE_* code of k (a tensor, or the tokens kvAppend appends)'],
  ['vInType', 'i32', 'DTYPE_* code of v'],
  ['outType', 'i32', 'DTYPE_* code of out'],
  // linear attention (ε is `param`)
  ['featureMap', 'i32', 'linear: FEATURE_* code of φ'],
  ['normalize', 'i32', 'linear: != 0 divides by φ(q)·z + ε'],
  ['logDecay', 'ptr', 'linear: f32 ln γ_h per query head, ≤ 0 (0 = none)'],
  ['gates', 'ptr', 'linear: f32 log-decay a ≤ 0 per (batch, query head, key) (0 = none)'],
  ['linearState', 'ptr', 'linear: the recurrent state of every (batch, query head), read and updated (0 = start empty)'],
];
