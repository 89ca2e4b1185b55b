// The module's exports. Memory is a grow-only arena owned by the TypeScript side, starting at heapBase().
// Every kernel takes a pointer to one parameter block (params.generated.ts, from scripts/schema.mjs).
export { attention, workItems, scratchBytes } from "./attention";
export { kvAppend, kvLayout } from "./kvcache";
export { ropeInPlace } from "./rope";
export { linearAttention, linearScratchBytes, linearStateBytes, linearStateReset } from "./linear";
import { PARAMS_BYTES } from "./params.generated";

/** Bytes of the parameter block this build reads, so the host can check it wrote the same schema. */
export function paramsBytes(): usize {
  return PARAMS_BYTES;
}

/** First byte the host may use; static data (constant tables) lies below it. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~15;
}

/** 1 when this build was compiled with relaxed SIMD, so the host can check which variant it loaded. */
export function relaxedSimd(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}
