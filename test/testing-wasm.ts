// The test-only wasm builds (assembly/testing.ts next to assembly/index.ts, built to build/testing-*.wasm by
// scripts/build-wasm.mjs): the shipped exports plus each micro-kernel, pack routine and the vector math hook.
import { readFile } from 'node:fs/promises';
import type { KernelExports, WasmVariant } from '../src/wasm/loader.js';

/** Exports of assembly/testing.ts; pointers and strides in bytes, counts in elements. */
export interface TestingExports extends KernelExports {
  readonly BLOCK_STRIDE: WebAssembly.Global;
  mathInPlace(fn: number, ptr: number, n: number): void;
  f32_qk_4x8p(qp: number, kp: number, D: number, s: number, sStride: number): void;
  f32_qk_1x8(q0: number, kp: number, D: number, s: number): void;
  f32_qk_1x32(q0: number, kp: number, panelBytes: number, D: number, s: number): void;
  f32_pv_4x8(
    p0: number, pStride: number, v: number, vStride: number, J: number, acc: number, accStride: number, corr: number,
  ): void;
  f32_pv_4x8b(p0: number, v: number, vStride: number, J: number, acc: number, accStride: number, corr: number): void;
  f32_pv_1x8(p0: number, v: number, vStride: number, J: number, acc: number, corr: number): void;
  f32_pv_1x32(p0: number, v: number, vStride: number, J: number, acc: number, corr: number): void;
  x32_packk_8(k: number, S: number, D: number, dst: number): void;
  x32_padv_8(v: number, S: number, Dv: number, dst: number): void;
  x32_packq_4(q: number, rowBytes: number, D: number, dst: number): void;
}

const modules = new Map<WasmVariant, Promise<WebAssembly.Module>>();

/** A fresh instance (own memory) of the testing build of `variant`; checks it is the ISA it claims. */
export async function instantiateTesting(variant: WasmVariant): Promise<TestingExports> {
  let module = modules.get(variant);
  if (module === undefined) {
    const file = new URL(`../build/testing-${variant.replace(/^wasm-/, '')}.wasm`, import.meta.url);
    module = readFile(file).then((bytes) => WebAssembly.compile(bytes));
    modules.set(variant, module);
  }
  const instance = await WebAssembly.instantiate(await module, {});
  const kernels = instance.exports as unknown as TestingExports;
  if (kernels.relaxedSimd() !== (variant === 'wasm-relaxed-simd' ? 1 : 0)) throw new Error(`build/ holds the wrong ${variant}`);
  return kernels;
}

/** Grows `memory` to hold at least `bytes` bytes. */
export function ensureBytes(memory: WebAssembly.Memory, bytes: number): void {
  const have = memory.buffer.byteLength;
  if (have < bytes) memory.grow(Math.ceil((bytes - have) / 65536));
}
