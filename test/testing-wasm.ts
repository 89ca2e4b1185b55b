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
  x32_packk_8(k: number, rowBytes: number, S: number, D: number, dst: number): void;
  x32_padv_8(v: number, rowBytes: number, S: number, Dv: number, dst: number): void;
  x32_packv_8(v: number, rowBytes: number, S: number, Dv: number, dst: number): void;
  x32_packq_4(q: number, rowBytes: number, D: number, dst: number): void;
  /** binary16 bits → float32, and float32 → binary16 bits rounded to nearest even (assembly/convert.ts). */
  halfToF32(bits: number): number;
  f32ToHalf(x: number): number;
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

/** A quiet NaN with a recognisable payload: fills all arena memory that is not an input, so a kernel that reads it poisons its result and one that writes it is caught bit for bit. */
export const SENTINEL = 0x7fc0dead;
/** Sentinel floats before and after every region: more than one v128 on each side. */
const GUARD = 16;

/**
 * Regions of a testing instance's memory from heapBase on, each between sentinel guards. `snapshot` and
 * `changedOutside` check that a call wrote nothing but its outputs (float indices, not bytes).
 */
export class Arena {
  private readonly start: number;
  private top: number;
  private before: Uint32Array | null = null;

  constructor(readonly kernels: TestingExports) {
    this.start = this.top = kernels.heapBase() >>> 2;
  }

  get f32(): Float32Array {
    return new Float32Array(this.kernels.memory.buffer);
  }

  get u32(): Uint32Array {
    return new Uint32Array(this.kernels.memory.buffer);
  }

  /** Float index of `n` fresh sentinel-filled floats, 16-byte aligned, with guards on both sides. */
  alloc(n: number): number {
    const at = (this.top + GUARD + 3) & ~3;
    const end = at + n + GUARD;
    ensureBytes(this.kernels.memory, end * 4);
    this.u32.fill(SENTINEL, this.top, end);
    this.top = at + n;
    return at;
  }

  /** Remembers every bit of the arena (inputs and sentinels), before a call. */
  snapshot(): void {
    this.before = this.u32.slice(this.start, this.top + GUARD);
  }

  /** Float indices, other than `outputs`, whose bits differ from the snapshot. */
  changedOutside(outputs: Set<number>): number[] {
    const before = this.before!;
    const now = this.u32;
    const changed: number[] = [];
    for (let i = 0; i < before.length; i++) {
      const at = this.start + i;
      if (now[at] !== before[i] && !outputs.has(at)) changed.push(at);
    }
    return changed;
  }
}
