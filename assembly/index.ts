// The module's exports. Memory is a grow-only arena owned by the TypeScript side, starting at heapBase().
export { attention, scratchBytes, expInPlace, BR, BC } from "./attention";

/** First byte the host may use; static data (constant tables) lies below it. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~15;
}

/** 1 when this build was compiled with relaxed SIMD, so the host can check which variant it loaded. */
export function relaxedSimd(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}
