// An engine over one wasm instance. Its linear memory is a grow-only arena: every call lays out its regions
// ([q | k | v | mask | out | weights | scratch]) from heapBase(), growing memory only when a call needs more
// than any call before it, so repeated calls never grow it again. Views are created per call, after any
// growth, because growing detaches the old ArrayBuffer.
import { AttentionError } from '../errors.js';
import { allocateOutput, planAttention, planLinear, weightsLength } from '../plan.js';
import type { AttentionEngine, AttentionOptions, AttentionWithWeights, LinearAttentionOptions } from '../types.js';
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

/** Byte offsets of one call's regions, laid out from the arena base; `end` is checked before anything is written. */
class Layout {
  end: number;
  constructor(base: number) {
    this.end = base;
  }
  region(bytes: number): number {
    const at = this.end;
    this.end = align16(this.end + bytes);
    return at;
  }
}

export function createWasmEngine(initial: KernelExports, backend: WasmVariant, maxBytes: number): AttentionEngine {
  let kernels: KernelExports | null = initial;
  const base = initial.heapBase();

  function live(): KernelExports {
    if (kernels === null) throw new AttentionError('DISPOSED', 'this engine was disposed');
    return kernels;
  }

  /** Refuses a layout that cannot fit, then grows memory to hold it; returns the (possibly new) buffer. */
  function reserve(kx: KernelExports, layout: Layout): ArrayBuffer {
    const end = layout.end;
    if (end > maxBytes) {
      throw new AttentionError('OUT_OF_MEMORY',
        `this call needs ${end} bytes of wasm memory, more than the limit of ${maxBytes} bytes` +
        (maxBytes === WASM32_MAX_BYTES ? ' (wasm32 addresses at most 4 GiB)' : ' (maxMemoryBytes)'));
    }
    const memory = kx.memory;
    const have = memory.buffer.byteLength;
    if (end > have) {
      try {
        memory.grow(Math.ceil((end - have) / PAGE_BYTES));
      } catch (cause) {
        throw new AttentionError('OUT_OF_MEMORY',
          `the runtime refused to grow wasm memory to ${end} bytes (${String(cause)})`);
      }
    }
    return memory.buffer;
  }

  function copyIn(buffer: ArrayBuffer, at: number, data: Float32Array | Uint8Array): void {
    if (data instanceof Float32Array) new Float32Array(buffer, at, data.length).set(data);
    else new Uint8Array(buffer, at, data.length).set(data);
  }

  const fitsI32 = (...dims: number[]) => dims.every((d) => d <= I32_MAX);

  function attention(q: Float32Array, k: Float32Array, v: Float32Array, options: AttentionOptions): Float32Array | AttentionWithWeights {
    const kx = live();
    const plan = planAttention(q, k, v, options);
    const { seqK: S, headDim: D, headDimV: Dv, mask } = plan;

    const layout = new Layout(base);
    const qPtr = layout.region(q.byteLength);
    const kPtr = layout.region(k.byteLength);
    const vPtr = layout.region(v.byteLength);
    const maskPtr = layout.region(mask === null ? 0 : mask.byteLength);
    const outPtr = layout.region(plan.outLength * 4);
    const wLength = plan.returnWeights ? weightsLength(plan) : 0;
    const weightsPtr = layout.region(wLength * 4);
    const withWeights = plan.returnWeights ? 1 : 0;
    const scratchPtr = layout.region(fitsI32(S, D, Dv) ? kx.scratchBytes(S, D, Dv, withWeights) : Infinity);
    const out = allocateOutput(plan.outLength, options.out);
    const weights = plan.returnWeights ? allocateOutput(wLength, undefined, 'options.returnWeights') : null;
    const buffer = reserve(kx, layout);

    copyIn(buffer, qPtr, q);
    copyIn(buffer, kPtr, k);
    copyIn(buffer, vPtr, v);
    if (mask !== null) copyIn(buffer, maskPtr, mask);
    const [msB, msH, msL, msS] = plan.maskStrides;
    kx.attention(
      qPtr, kPtr, vPtr, outPtr,
      plan.batch, plan.heads, plan.kvHeads, plan.seqQ, S, D, Dv,
      plan.scale, plan.causal ? 1 : 0, plan.causalOffset,
      maskPtr, plan.maskKind, msB, msH, msL, msS,
      plan.activation, plan.softcap, plan.param, plan.power, plan.returnWeights ? weightsPtr : 0,
      scratchPtr,
    );
    out.set(new Float32Array(buffer, outPtr, plan.outLength));
    if (weights === null) return out;
    weights.set(new Float32Array(buffer, weightsPtr, wLength));
    return { output: out, weights };
  }

  return {
    backend,
    get memoryBytes() {
      return kernels === null ? 0 : kernels.memory.buffer.byteLength;
    },
    attention: attention as AttentionEngine['attention'],
    linearAttention(q: Float32Array, k: Float32Array, v: Float32Array, options: LinearAttentionOptions): Float32Array {
      const kx = live();
      const plan = planLinear(q, k, v, options);
      const layout = new Layout(base);
      const qPtr = layout.region(q.byteLength);
      const kPtr = layout.region(k.byteLength);
      const vPtr = layout.region(v.byteLength);
      const outPtr = layout.region(plan.outLength * 4);
      const scratchPtr = layout.region(fitsI32(plan.headDim, plan.headDimV)
        ? kx.linearScratchBytes(plan.headDim, plan.headDimV) : Infinity);
      const out = allocateOutput(plan.outLength, options.out);
      const buffer = reserve(kx, layout);
      copyIn(buffer, qPtr, q);
      copyIn(buffer, kPtr, k);
      copyIn(buffer, vPtr, v);
      kx.linearAttention(
        qPtr, kPtr, vPtr, outPtr,
        plan.batch, plan.heads, plan.kvHeads, plan.seqQ, plan.seqK, plan.headDim, plan.headDimV,
        plan.causal ? 1 : 0, plan.causalOffset, plan.epsilon, scratchPtr,
      );
      out.set(new Float32Array(buffer, outPtr, plan.outLength));
      return out;
    },
    dispose() {
      kernels = null;
    },
  };
}
