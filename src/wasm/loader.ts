// Finds and instantiates the best wasm build this runtime can run. The binaries are inlined as base64 so a
// single `import` works in Node, Deno, Bun, browsers and bundlers with no fetch or fs.
import { RELAXED_SIMD_WASM, SIMD_WASM } from './binaries.generated.js';

/**
 * Exports of assembly/index.ts. Every kernel reads its call from one parameter block in wasm memory (`params`:
 * the byte offset of a block written by writeParams, src/params.generated.ts), never from positional scalars.
 */
export interface KernelExports {
  readonly memory: WebAssembly.Memory;
  heapBase(): number;
  relaxedSimd(): number;
  /** Bytes of the parameter block the binary was built for (PARAMS_BYTES). */
  paramsBytes(): number;
  /** Scratch bytes one thread needs for the attention call at `params` (f64: huge shapes report, not wrap). */
  scratchBytes(params: number): number;
  /** Work items of the attention call at `params` (batch × query heads × blocks of query rows). */
  workItems(params: number): number;
  /** Runs work items first … first + count − 1 of the attention call at `params`. */
  attention(first: number, count: number, fresh: number, params: number, scratch: number): void;
  /**
   * Appends the tokens at params.k / params.v to the cache at params.cacheK / params.cacheV (scratch: D + Dv
   * floats); returns 0, or without writing 1 / 2 when k / v holds a NaN or ±∞ for a float16 or int8 cache.
   */
  kvAppend(params: number, scratch: number): number;
  /** Bytes of one (row, kv head) of the cache described by params: keys (part 0), values (1), their scales (2, 3). */
  kvLayout(params: number, part: number): number;
  /**
   * Rotates x (B, heads, seq, D) in place by the cos/sin table at `table` (RoPE; dims and pairing from params),
   * batch row b by the table tableStride·b bytes on (0: one table).
   */
  ropeInPlace(params: number, x: number, heads: number, seq: number, table: number, tableStride: number): void;
  /** Scratch bytes of the linear-attention call at `params`. */
  linearScratchBytes(params: number): number;
  /** Runs the linear-attention call at `params` (its state, if any, at params.linearState). */
  linearAttention(params: number, scratch: number): void;
  /** Bytes of a linear-attention state of params.B × params.H heads (D, Dv). */
  linearStateBytes(params: number): number;
  /** Empties the state at params.linearState. */
  linearStateReset(params: number): void;
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
