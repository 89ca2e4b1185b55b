// A plan, field for field, as the kernels' parameter block (src/params.generated.ts, from scripts/schema.mjs).
// Pointers are filled in by the engine once the call's arena is laid out.
import { CAUSAL_BOTTOM_RIGHT, CAUSAL_NONE, CAUSAL_TOP_LEFT } from '../params.generated.js';
import type { Params } from '../params.generated.js';
import type { AttentionPlan, ShapePlan } from '../plan.js';
import type { ResidentCache } from './kvcache.js';

/** A parameter block with every field 0. */
export function emptyParams(): Params {
  return {
    q: 0, k: 0, v: 0, out: 0, mask: 0, weights: 0, B: 0, H: 0, KVH: 0, L: 0, S: 0, D: 0, Dv: 0,
    scale: 0, softcap: 0, causal: 0, keyLengths: 0, windowLeft: 0, windowRight: 0, alibi: 0, sinks: 0,
    maskKind: 0, msB: 0, msH: 0, msL: 0, msS: 0, activation: 0, param: 0, power: 0, returnWeights: 0,
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

/** The parameter block of an attention call (pointers 0). */
export function attentionParams(plan: AttentionPlan, resident: ResidentCache | null): Params {
  const [msB, msH, msL, msS] = plan.maskStrides;
  const p = shapeParams(plan);
  return {
    ...p, scale: plan.scale, softcap: plan.softcap, maskKind: plan.maskKind, msB, msH, msL, msS,
    activation: plan.activation, param: plan.param, power: plan.power, returnWeights: plan.returnWeights ? 1 : 0,
    windowLeft: plan.window?.[0] ?? p.windowLeft, windowRight: plan.window?.[1] ?? p.windowRight,
    bshd: plan.layout === 'bshd' ? 1 : 0, ropeDims: plan.rope?.dims ?? 0, ropeInterleaved: plan.rope?.interleaved ? 1 : 0,
    resident: resident === null ? 0 : 1, capacity: resident?.capacity ?? 0, kType: resident?.kType ?? 0, vType: resident?.vType ?? 0,
    kScales: resident?.kScales ?? 0, vScales: resident?.vScales ?? 0,
    qType: plan.types.q, kInType: plan.types.k, vInType: plan.types.v, outType: plan.types.out,
  };
}
