// The wasm engine's linear attention and its recurrent states. A call lays out [q | k | v | out | decay | gates |
// scratch] in the engine's per-call arena; a state is a long-lived block of the engine's heap that the kernel reads
// and updates in place (assembly/linear.ts). Runs on the calling thread, also on threaded engines.
import { AttentionError } from '../errors.js';
import { LinearStateHandle, planLinearState } from '../linear-state.js';
import { writeParams } from '../params.generated.js';
import type { Params } from '../params.generated.js';
import { LINEAR_OPTIONS, planLinear } from '../plan-linear.js';
import { readOptions } from '../plan-util.js';
import type { Resolved } from '../tensors.js';
import type { TensorInput } from '../types.js';
import type { LinearAttentionOptions, LinearState, LinearStateOptions } from '../types-linear.js';
import type { Heap } from './heap.js';
import type { KernelExports } from './loader.js';
import { emptyParams, shapeParams } from './params.js';
import { viewByteLength } from '../views.js';

const I32_MAX = 2 ** 31 - 1;
const align16 = (n: number) => Math.ceil(n / 16) * 16;

/** One call's arena regions (the engine's Layout). */
interface Arena {
  readonly end: number;
  region(bytes: number): number;
  input(arg: Resolved, bytes: number): number;
}

type Target = { ptr: number; inPlace: boolean };

/** The parts of a wasm engine that linear attention uses (src/wasm/engine.ts). */
export interface LinearCore {
  readonly owner: object;
  readonly heap: Heap;
  readonly paramsPtr: number;
  readonly maxBytes: number;
  live(): KernelExports;
  arena(): Arena;
  tooBig(end: number): AttentionError;
  reserve(kx: KernelExports, end: number): ArrayBuffer;
  allocateBlock(kx: KernelExports, bytes: number): number;
  resolve(value: unknown, name: string): Resolved;
  copyIn(buffer: ArrayBuffer, at: number, arg: Resolved): void;
  outputTarget(out: Resolved | null, layout: Arena, bytes: number, inputs: readonly Resolved[]): Target;
  outputArray(out: Resolved | null, length: number, early?: boolean): Float32Array | null;
  deliver(kx: KernelExports, target: Target, out: Resolved | null, outArg: unknown, result: Float32Array | null, length: number): Float32Array;
  /** Registers something to invalidate when the engine is disposed. */
  track(x: { invalidate(): void }): void;
  untrack(x: { invalidate(): void }): void;
}

/** Where a wasm state lives. */
interface StateBlock {
  readonly ptr: number;
  readonly bytes: number;
}

export function createLinearOps(core: LinearCore) {
  const { heap, paramsPtr } = core;

  function stateParams(shape: { batch: number; heads: number; headDim: number; headDimV: number }, ptr: number): Params {
    return { ...emptyParams(), B: shape.batch, H: shape.heads, D: shape.headDim, Dv: shape.headDimV, linearState: ptr };
  }

  function linearAttention(q: TensorInput, k: TensorInput, v: TensorInput, raw: LinearAttentionOptions): Float32Array {
    const options = readOptions<LinearAttentionOptions>(raw, LINEAR_OPTIONS); // the only read of the caller's object
    const kx = core.live();
    const rq = core.resolve(q, 'q');
    const rk = core.resolve(k, 'k');
    const rv = core.resolve(v, 'v');
    const ro = options?.out === undefined ? null : core.resolve(options.out, 'options.out');
    const plan = planLinear(rq.array, rk.array, rv.array,
      ro === null ? options : { ...options, out: ro.array as Float32Array }, core.owner);
    const layout = core.arena();
    // Sizes from the arrays' internal slots (src/views.ts), as validation took them.
    const qPtr = layout.input(rq, viewByteLength(rq.array as Float32Array));
    const kPtr = layout.input(rk, viewByteLength(rk.array as Float32Array));
    const vPtr = layout.input(rv, viewByteLength(rv.array as Float32Array));
    const target = core.outputTarget(ro, layout, plan.outLength * 4, [rq, rk, rv]);
    const decayPtr = plan.decay === null ? 0 : layout.region(plan.decay.byteLength);
    const gatesPtr = plan.gates === null ? 0 : layout.region(plan.gates.byteLength);
    const state = plan.state as LinearStateHandle<StateBlock> | null;
    const params: Params = {
      ...shapeParams(plan), param: plan.epsilon, featureMap: plan.featureMap, normalize: plan.normalize ? 1 : 0,
      logDecay: decayPtr, gates: gatesPtr, linearState: state?.data.ptr ?? 0,
    };
    let scratchBytes = Infinity;
    if (plan.headDim <= I32_MAX && plan.headDimV <= I32_MAX) {
      writeParams(kx.memory.buffer, paramsPtr, params);
      scratchBytes = align16(kx.linearScratchBytes(paramsPtr));
    }
    const scratchPtr = layout.region(scratchBytes);
    if (layout.end > core.maxBytes) throw core.tooBig(layout.end);
    const result = target.inPlace ? null : core.outputArray(ro, plan.outLength, plan.state !== null);
    const buffer = core.reserve(kx, layout.end);
    core.copyIn(buffer, qPtr, rq);
    core.copyIn(buffer, kPtr, rk);
    core.copyIn(buffer, vPtr, rv);
    if (plan.decay !== null) new Float32Array(buffer, decayPtr, plan.decay.length).set(plan.decay.map(Math.log)); // ln γ, in float64 then rounded
    if (plan.gates !== null) new Float32Array(buffer, gatesPtr, plan.gates.length).set(plan.gates);
    Object.assign(params, { q: qPtr, k: kPtr, v: vPtr, out: target.ptr });
    writeParams(buffer, paramsPtr, params);
    kx.linearAttention(paramsPtr, scratchPtr);
    state?.advance(plan.seqK);
    return core.deliver(kx, target, ro, options.out, result, plan.outLength);
  }

  function createLinearState(options: LinearStateOptions): LinearState {
    const kx = core.live();
    const shape = planLinearState(options);
    let bytes = Infinity;
    if (shape.headDim <= I32_MAX && shape.headDimV <= I32_MAX) {
      writeParams(kx.memory.buffer, paramsPtr, stateParams(shape, 0));
      bytes = align16(kx.linearStateBytes(paramsPtr));
    }
    const ptr = core.allocateBlock(kx, bytes);
    const reset = () => {
      const kx = core.live();
      writeParams(kx.memory.buffer, paramsPtr, stateParams(shape, ptr));
      kx.linearStateReset(paramsPtr);
    };
    const handle: LinearStateHandle<StateBlock> = new LinearStateHandle(core.owner, shape, { ptr, bytes }, {
      alive: () => void core.live(),
      reset,
      release: () => {
        core.untrack(handle);
        try {
          core.live();
        } catch {
          return; // the engine is gone, and its memory with it
        }
        heap.release(ptr, bytes);
      },
    });
    reset();
    core.track(handle);
    return handle;
  }

  return { linearAttention, createLinearState };
}
