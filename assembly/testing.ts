// Test-only exports, compiled into build/testing-*.wasm (scripts/build-wasm.mjs) and never into the package:
// the micro-kernels and pack routines one by one, and a hook over the vector math, so test/ can check each
// against a float64 reference. It is built as a second entry next to assembly/index.ts with the shipped
// targets' options, so the module also has index.ts's exports (heapBase, relaxedSimd, …).
import { vexp, vexp2, vtanh } from "./vmath";

export { BLOCK_STRIDE, f32_pv_1x32, f32_pv_1x8, f32_pv_4x8, f32_pv_4x8b, f32_pv_4x8b_n, f32_qk_1x32, f32_qk_1x8, f32_qk_4x8p, f32_qk_4x8p_n } from "./gemm";
export { x32_packk_8, x32_packq_4, x32_packv_8, x32_padv_8 } from "./pack";
export { softmaxRows4 } from "./score4";

/** e^x (fn 0), tanh x (fn 1) or 2^x (fn 2) over n floats in place (n a multiple of 4), to measure accuracy. */
export function mathInPlace(fn: i32, ptr: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    const p = ptr + (<usize>i << 2);
    const x = v128.load(p);
    v128.store(p, fn == 0 ? vexp(x) : fn == 1 ? vtanh(x) : vexp2(x));
  }
}
export { f16_pv_1x16, f16_pv_1x8, f16_pv_4x8, f16_qk_1x32, f16_qk_1x8, f16_qk_4x8p } from "./kv-f16";
export { i8_pv_1x32, i8_pv_1x8, i8_qk_1x32, i8_qk_1x8, quantizeQuery, quantizeWeights } from "./kv-i8";
export { f32ToHalf, halfToF32 } from "./convert";
