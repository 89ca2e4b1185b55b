// The one list of backends: the API, the tests and the benchmarks all iterate over it.
import { BC, BR, LC } from './params.generated.js';
import { AttentionError } from './errors.js';
import { describe } from './plan-util.js';
import { isSupported } from './wasm/loader.js';
import type { BackendName } from './types.js';

/** A backend and the kernel family it runs (XNNPACK-style `dtype-op-tile-isa` names). */
export interface BackendInfo {
  readonly name: BackendName;
  readonly kernel: string;
  readonly description: string;
  /**
   * The kernel's blocking: query rows per block and keys per block (the wasm flash loop's 64 × 128 tiles; the JS
   * backend goes one query row and four keys at a time). Sizes around multiples of these are the tile edges tests
   * sweep; fewer than 4 query rows (decode) sweep up to ⌊queries·keys / rows⌋ keys (rounded down to 64) per block.
   * `linearChunk`: keys per chunk of linear attention (the wasm kernels' chunkwise form; the JS recurrence takes
   * one key at a time).
   */
  readonly blocks: { readonly queries: number; readonly keys: number; readonly linearChunk: number };
}

/** Query rows × keys per block of the wasm kernels, and linear attention's chunk (BR, BC, LC of scripts/schema.mjs). */
const WASM_BLOCKS = { queries: BR, keys: BC, linearChunk: LC } as const;

/** Every backend, fastest first: the order `backend: 'auto'` tries them in. */
export const BACKENDS: readonly BackendInfo[] = [
  {
    name: 'wasm-relaxed-simd',
    kernel: 'f32-attention-4x8-wasmrelaxedsimd',
    description: 'wasm SIMD with fused multiply-add (f32x4.relaxed_madd): Node ≥ 22, Deno 2, Chromium ≥ 114',
    blocks: WASM_BLOCKS,
  },
  {
    name: 'wasm-simd',
    kernel: 'f32-attention-4x8-wasmsimd',
    description: 'wasm 128-bit SIMD: every current runtime',
    blocks: WASM_BLOCKS,
  },
  {
    name: 'js',
    kernel: 'f32-attention-1x1-scalar',
    description: 'plain JavaScript, synchronous, no WebAssembly',
    blocks: { queries: 1, keys: 4, linearChunk: 1 },
  },
];

/**
 * Whether `backend` can run in this runtime (the JS backend always can).
 * @throws AttentionError `'INVALID_OPTION'` when `backend` is not one of the backends' names (a request such as
 *   `'auto'` or `'wasm'` included: it names no single backend).
 */
export function isBackendSupported(backend: BackendName): boolean {
  if (!BACKENDS.some((b) => b.name === backend)) {
    throw new AttentionError('INVALID_OPTION',
      `must be one of ${BACKENDS.map((b) => `'${b.name}'`).join(', ')}, got ${describe(backend)}`, 'backend');
  }
  return backend === 'js' || isSupported(backend);
}
