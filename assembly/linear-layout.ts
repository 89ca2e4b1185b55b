// Memory layout of linear attention's recurrent state and scratch (shared by linear.ts and linear-chunk.ts).
import { BLOCK_STRIDE } from "./gemm";
import { ceil8 } from "./pack";
import { LC } from "./params.generated";

// @ts-ignore: decorator
@inline export function ceil4(n: i32): i32 {
  return (n + 3) & ~3;
}

/** Floats of one (batch, head) state: Ŝ as panels [ceil8(Dv)/8][ceil4(D)][8], ẑ [ceil4(D)], σ (f64) + 8 bytes. */
export function stateFloats(D: i32, Dv: i32): f64 {
  return <f64>ceil8(Dv) * <f64>ceil4(D) + <f64>ceil4(D) + 4;
}

/** Byte offset of σ in a state. */
// @ts-ignore: decorator
@inline export function sigmaAt(D: i32, Dv: i32): usize {
  return <usize>(ceil8(Dv) * ceil4(D) + ceil4(D)) << 2;
}

/** Scratch floats of a call, own state included (f64, so huge shapes report instead of wrapping). */
export function chunkScratchFloats(D: i32, Dv: i32): f64 {
  const d = <f64>D, v = <f64>ceil8(Dv), lc = <f64>LC, row = <f64>(BLOCK_STRIDE >> 2);
  // kRows, kPanel, qRows, qPack; kwT; pBuf; acc, vPad; gCum, rowMu, rowRho (f64); 4 f32 rows; corr4; xRow
  return 4 * lc * d + <f64>ceil4(D) * row + lc * row + 2 * lc * v + 6 * lc + 4 * lc + 4 + row + stateFloats(D, Dv);
}

/** An empty state of head dimensions d, dv: Ŝ = 0, ẑ = 0, σ = −∞. */
export function resetState(st: usize, d: i32, dv: i32): void {
  const at = sigmaAt(d, dv);
  memory.fill(st, 0, at);
  store<f64>(st + at, -Infinity);
}
