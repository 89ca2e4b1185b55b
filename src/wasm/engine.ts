// An engine over one wasm instance. Its linear memory is a grow-only arena: every call lays out
// [q | k | v | mask | out | scratch] from heapBase(), growing memory only when a call needs more than any
// call before it, so repeated calls never grow it again. Views are created per call, after any growth,
// because growing detaches the old ArrayBuffer.
import { AttentionError } from '../errors.js';
import { allocateOutput, planAttention } from '../plan.js';
import type { AttentionEngine, AttentionOptions } from '../types.js';
import type { KernelExports, WasmVariant } from './loader.js';

const PAGE_BYTES = 65536;
/** wasm32 addresses 2^32 bytes. */
export const WASM32_MAX_BYTES = 2 ** 32;
const I32_MAX = 2 ** 31 - 1;

const align16 = (n: number) => Math.ceil(n / 16) * 16;

/** Validates `maxMemoryBytes` of createAttention. */
export function memoryLimit(value: unknown): number {
  if (value === undefined) return WASM32_MAX_BYTES;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new AttentionError('INVALID_OPTION', `must be a positive number of bytes, got ${String(value)}`,
      'options.maxMemoryBytes');
  }
  return Math.min(value, WASM32_MAX_BYTES);
}

export function createWasmEngine(initial: KernelExports, backend: WasmVariant, maxBytes: number): AttentionEngine {
  let kernels: KernelExports | null = initial;
  const base = initial.heapBase();

  function ensureCapacity(memory: WebAssembly.Memory, end: number): void {
    const have = memory.buffer.byteLength;
    if (end <= have) return;
    try {
      memory.grow(Math.ceil((end - have) / PAGE_BYTES));
    } catch (cause) {
      throw new AttentionError('OUT_OF_MEMORY',
        `the runtime refused to grow wasm memory to ${end} bytes (${String(cause)})`);
    }
  }

  return {
    backend,
    get memoryBytes() {
      return kernels === null ? 0 : kernels.memory.buffer.byteLength;
    },
    attention(q: Float32Array, k: Float32Array, v: Float32Array, options: AttentionOptions): Float32Array {
      if (kernels === null) throw new AttentionError('DISPOSED', 'this engine was disposed');
      const plan = planAttention(q, k, v, options);
      const { seqK: S, headDim: D, headDimV: Dv, mask } = plan;

      let end = base;
      const region = (bytes: number) => {
        const at = end;
        end = align16(end + bytes);
        return at;
      };
      const qPtr = region(q.byteLength);
      const kPtr = region(k.byteLength);
      const vPtr = region(v.byteLength);
      const maskPtr = region(mask === null ? 0 : mask.byteLength);
      const outPtr = region(plan.outLength * 4);
      const fitsI32 = S <= I32_MAX && D <= I32_MAX && Dv <= I32_MAX;
      const scratchPtr = region(fitsI32 ? kernels.scratchBytes(S, D, Dv) : Infinity);
      if (end > maxBytes) {
        throw new AttentionError('OUT_OF_MEMORY',
          `this call needs ${end} bytes of wasm memory, more than the limit of ${maxBytes} bytes` +
          (maxBytes === WASM32_MAX_BYTES ? ' (wasm32 addresses at most 4 GiB)' : ' (maxMemoryBytes)'));
      }
      const out = allocateOutput(plan, options.out);

      const memory = kernels.memory;
      ensureCapacity(memory, end);
      const buffer = memory.buffer;
      new Float32Array(buffer, qPtr, q.length).set(q);
      new Float32Array(buffer, kPtr, k.length).set(k);
      new Float32Array(buffer, vPtr, v.length).set(v);
      if (mask instanceof Float32Array) new Float32Array(buffer, maskPtr, mask.length).set(mask);
      else if (mask !== null) new Uint8Array(buffer, maskPtr, mask.length).set(mask);

      const [msB, msH, msL, msS] = plan.maskStrides;
      kernels.attention(
        qPtr, kPtr, vPtr, outPtr,
        plan.batch, plan.heads, plan.kvHeads, plan.seqQ, S, D, Dv,
        plan.scale, plan.causal ? 1 : 0, plan.causalOffset,
        maskPtr, plan.maskKind, msB, msH, msL, msS,
        scratchPtr,
      );
      out.set(new Float32Array(buffer, outPtr, plan.outLength));
      return out;
    },
    dispose() {
      kernels = null;
    },
  };
}
