// Finds and instantiates the best wasm build this runtime can run. The binaries are inlined as base64 so a
// single `import` works in Node, Deno, Bun, browsers and bundlers with no fetch or fs.
import { RELAXED_SIMD_WASM, SIMD_WASM } from './binaries.generated.js';

/**
 * The arguments of `attention` that describe the call, between the work range (first, count, fresh) and the
 * scratch pointer: the same for every thread of a call.
 */
export type AttentionArgs = [
  q: number, k: number, v: number, out: number,
  B: number, H: number, KVH: number, L: number, S: number, D: number, Dv: number,
  scale: number, causal: number, causalOffset: number,
  mask: number, maskKind: number, msB: number, msH: number, msL: number, msS: number,
  activation: number, softcap: number, param: number, power: number, weights: number,
  resident: number, capacity: number,
];

/** Exports of assembly/index.ts. */
export interface KernelExports {
  readonly memory: WebAssembly.Memory;
  heapBase(): number;
  relaxedSimd(): number;
  scratchBytes(S: number, D: number, Dv: number, weights: number, resident: number): number;
  kvCacheBytes(B: number, KVH: number, capacity: number, D: number, Dv: number): number;
  kvAppend(
    kCache: number, vCache: number, k: number, v: number,
    B: number, KVH: number, n: number, D: number, Dv: number, pos: number, capacity: number,
  ): void;
  linearScratchBytes(D: number, Dv: number): number;
  mathInPlace(fn: number, ptr: number, n: number): void;
  /** Work items of a call (one per batch, query head and block of query rows); `attention` runs a range of them. */
  workItems(B: number, H: number, L: number): number;
  attention(first: number, count: number, fresh: number, ...call: [...AttentionArgs, scratch: number]): void;
  linearAttention(
    q: number, k: number, v: number, out: number,
    B: number, H: number, KVH: number, L: number, S: number, D: number, Dv: number,
    causal: number, causalOffset: number, eps: number, scratch: number,
  ): void;
}

export type WasmVariant = 'wasm-relaxed-simd' | 'wasm-simd';

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** A base64 binary compiled, or null where this runtime does not validate it (the feature probe). */
function compileIfValid(base64: string): Promise<WebAssembly.Module> | null {
  const bytes = decodeBase64(base64);
  return WebAssembly.validate(bytes) ? WebAssembly.compile(bytes) : null;
}

const cache = new Map<WasmVariant, Promise<WebAssembly.Module> | null>();

function binaryOf(variant: WasmVariant): string {
  return variant === 'wasm-relaxed-simd' ? RELAXED_SIMD_WASM : SIMD_WASM;
}

/**
 * The compiled module for `variant`, or null where this runtime cannot validate it. Validating the real
 * binary is the feature probe: it answers exactly "can this runtime run this kernel".
 */
export function compiledModule(variant: WasmVariant): Promise<WebAssembly.Module> | null {
  let entry = cache.get(variant);
  if (entry === undefined) {
    entry = typeof WebAssembly === 'object' ? compileIfValid(binaryOf(variant)) : null;
    cache.set(variant, entry);
  }
  return entry;
}

/** Whether this runtime can run `variant`, without compiling it. */
export function isSupported(variant: WasmVariant): boolean {
  return compiledModule(variant) !== null;
}

/** A fresh instance (own linear memory) of `variant`. */
export async function instantiate(variant: WasmVariant): Promise<KernelExports> {
  const module = compiledModule(variant);
  if (module === null) throw new Error(`${variant} is not supported by this runtime`);
  const instance = await WebAssembly.instantiate(await module, {});
  return instance.exports as unknown as KernelExports;
}

// The threaded builds import a shared memory; they are loaded (and their binaries parsed) only on demand.
const threadedCache = new Map<WasmVariant, Promise<WebAssembly.Module | null>>();

/** The compiled shared-memory build of `variant`, or null where this runtime cannot validate it. */
export function compiledThreadedModule(variant: WasmVariant): Promise<WebAssembly.Module | null> {
  let entry = threadedCache.get(variant);
  if (entry === undefined) {
    entry = import('./binaries-threads.generated.js').then(({ RELAXED_SIMD_THREADS_WASM, SIMD_THREADS_WASM }) =>
      compileIfValid(variant === 'wasm-relaxed-simd' ? RELAXED_SIMD_THREADS_WASM : SIMD_THREADS_WASM));
    threadedCache.set(variant, entry);
  }
  return entry;
}
