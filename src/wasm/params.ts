// A plan, field for field, as the kernels' parameter block (src/params.generated.ts, from scripts/schema.mjs).
// Pointers are filled in by the engine once the call's arena is laid out.
import { CAUSAL_BOTTOM_RIGHT, CAUSAL_NONE, CAUSAL_TOP_LEFT } from '../params.generated.js';
import type { Params, ParamsBlock } from '../params.generated.js';
import type { AttentionPlan, ShapePlan } from '../plan.js';
import type { ResidentCache } from './kvcache.js';

/** A parameter block with every field 0. */
export function emptyParams(): Params {
  return {
    q: 0, k: 0, v: 0, out: 0, mask: 0, weights: 0, B: 0, H: 0, KVH: 0, L: 0, S: 0, D: 0, Dv: 0,
    scale: 0, softcap: 0, causal: 0, keyLengths: 0, windowLeft: 0, windowRight: 0, alibi: 0, sinks: 0,
    maskKind: 0, msB: 0, msH: 0, msL: 0, msS: 0, activation: 0, param: 0, rowParams: 0, power: 0, returnWeights: 0,
    bshd: 0, ropeDims: 0, ropeInterleaved: 0, resident: 0, capacity: 0, kType: 0, vType: 0, kScales: 0, vScales: 0,
    cacheRows: 0, cacheK: 0, cacheV: 0, cachePositions: 0, qType: 0, kInType: 0, vInType: 0, outType: 0,
    featureMap: 0, normalize: 0, logDecay: 0, gates: 0, linearState: 0,
  };
}

/** The shape fields of a call (pointers 0). No window: both bounds L + S, which admit every key. */
export function shapeParams(plan: ShapePlan): Params {
  const reach = plan.seqQ + plan.seqK;
  return {
    ...emptyParams(), B: plan.batch, H: plan.heads, KVH: plan.kvHeads, L: plan.seqQ, S: plan.seqK,
    D: plan.headDim, Dv: plan.headDimV, windowLeft: reach, windowRight: reach,
    causal: !plan.causal ? CAUSAL_NONE : plan.bottomRight ? CAUSAL_BOTTOM_RIGHT : CAUSAL_TOP_LEFT,
  };
}

/**
 * Sets the non-pointer fields of an attention call in `block` (pointers and the rest 0), with no object per call:
 * the engine fills the call's pointers, then copies the block into wasm memory.
 */
export function setAttentionParams(block: ParamsBlock, plan: AttentionPlan, resident: ResidentCache | null): void {
  const reach = plan.seqQ + plan.seqK;
  const strides = plan.maskStrides;
  block.clear();
  block.B = plan.batch;
  block.H = plan.heads;
  block.KVH = plan.kvHeads;
  block.L = plan.seqQ;
  block.S = plan.seqK;
  block.D = plan.headDim;
  block.Dv = plan.headDimV;
  block.causal = !plan.causal ? CAUSAL_NONE : plan.bottomRight ? CAUSAL_BOTTOM_RIGHT : CAUSAL_TOP_LEFT;
  block.windowLeft = plan.window === null ? reach : plan.window[0];
  block.windowRight = plan.window === null ? reach : plan.window[1];
  block.scale = plan.scale;
  block.softcap = plan.softcap;
  block.maskKind = plan.maskKind;
  block.msB = strides[0];
  block.msH = strides[1];
  block.msL = strides[2];
  block.msS = strides[3];
  block.activation = plan.activation;
  block.param = plan.param;
  block.power = plan.power;
  block.returnWeights = plan.returnWeights ? 1 : 0;
  block.bshd = plan.layout === 'bshd' ? 1 : 0;
  block.ropeDims = plan.rope === null ? 0 : plan.rope.dims;
  block.ropeInterleaved = plan.rope !== null && plan.rope.interleaved ? 1 : 0;
  block.resident = resident === null ? 0 : 1;
  block.capacity = resident === null ? 0 : resident.capacity;
  block.kType = resident === null ? 0 : resident.kType;
  block.vType = resident === null ? 0 : resident.vType;
  block.kScales = resident === null ? 0 : resident.kScales;
  block.vScales = resident === null ? 0 : resident.vScales;
  const types = plan.types;
  block.qType = types.q;
  block.kInType = types.k;
  block.vInType = types.v;
  block.outType = types.out;
}
