// The one list of backends: the API, the tests and the benchmarks all iterate over it.
import { isSupported } from './wasm/loader.js';
import type { BackendName } from './types.js';

/** A backend and the kernel family it runs (XNNPACK-style `dtype-op-tile-isa` names). */
export interface BackendInfo {
  readonly name: BackendName;
  readonly kernel: string;
  readonly description: string;
}

/** Every backend, fastest first: the order `backend: 'auto'` tries them in. */
export const BACKENDS: readonly BackendInfo[] = [
  {
    name: 'wasm-relaxed-simd',
    kernel: 'f32-attention-4x8-wasmrelaxedsimd',
    description: 'wasm SIMD with fused multiply-add (f32x4.relaxed_madd): Node ≥ 22, Deno 2, Chromium ≥ 114',
  },
  {
    name: 'wasm-simd',
    kernel: 'f32-attention-4x8-wasmsimd',
    description: 'wasm 128-bit SIMD: every current runtime',
  },
  {
    name: 'js',
    kernel: 'f32-attention-1x1-scalar',
    description: 'plain JavaScript, synchronous, no WebAssembly',
  },
];

/** Whether `backend` can run in this runtime (the JS backend always can). */
export function isBackendSupported(backend: BackendName): boolean {
  return backend === 'js' || isSupported(backend);
}
