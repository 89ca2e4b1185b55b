// Validation of a linear-attention call: every option is read once, checked, and per-call arrays copied, before
// any backend touches memory.
import { AttentionError } from './errors.js';
import { LinearStateHandle } from './linear-state.js';
import { FEATURE_MAP_NAMES } from './params.generated.js';
import { planShape } from './plan.js';
import type { ShapePlan } from './plan.js';
import { copyFloat32, describe, float32, isFloat32Array, optionsObject } from './plan-util.js';
import type { LinearAttentionOptions } from './types-linear.js';

/** A validated linear-attention call. */
export interface LinearPlan extends ShapePlan {
  /** ε of the denominator (0 when not normalising). */
  readonly epsilon: number;
  /** Index into FEATURE_MAP_NAMES (the kernels' FEATURE_* code). */
  readonly featureMap: number;
  readonly normalize: boolean;
  /** γ per query head (a copy), or null. */
  readonly decay: Float32Array | null;
  /** Log-decay per (batch, query head, key) (a copy), or null. */
  readonly gates: Float32Array | null;
  /** The state the call starts from and updates, or null (start from zero). */
  readonly state: LinearStateHandle | null;
}

/** Every option name of linearAttention (the snapshot of readOptions). */
export const LINEAR_OPTIONS = new Set([
  'batch', 'heads', 'seqQ', 'seqK', 'headDim', 'kvHeads', 'headDimV', 'causal', 'out',
  'epsilon', 'featureMap', 'normalize', 'decay', 'gates', 'state',
]);

/** A Float32Array option of `length` elements, copied, each element checked by `ok`. */
function floats(value: unknown, name: string, length: number, shape: string, ok: (x: number) => boolean, rule: string): Float32Array {
  if (!isFloat32Array(value)) throw new AttentionError('INVALID_TYPE', `must be a Float32Array, got ${describe(value)}`, name);
  const copy = copyFloat32(value, name);
  if (copy.length !== length) throw new AttentionError('SHAPE_MISMATCH', `length ${copy.length} does not match ${shape} = ${length}`, name);
  for (let i = 0; i < copy.length; i++) {
    if (!ok(copy[i]!)) throw new AttentionError('INVALID_OPTION', `must be ${rule}; element ${i} is ${copy[i]}`, name);
  }
  return copy;
}

/**
 * Validates a linear-attention call of the engine `owner` (whose states alone it accepts); throws
 * {@link AttentionError} naming the first offending argument.
 */
export function planLinear(q: unknown, k: unknown, v: unknown, options: LinearAttentionOptions, owner: object): LinearPlan {
  optionsObject(options, LINEAR_OPTIONS);
  const { featureMap: map, normalize: norm, epsilon: eps, decay: gamma, gates: gate, state: st } = options;
  const shape = planShape(q, k, v, options);
  const { batch, heads, seqK, headDim, headDimV, causal } = shape;

  const featureMap = FEATURE_MAP_NAMES.indexOf((map ?? 'elu+1') as never);
  if (featureMap < 0) {
    throw new AttentionError('INVALID_OPTION',
      `must be one of ${FEATURE_MAP_NAMES.map((m) => `'${m}'`).join(', ')}, got ${describe(map)}`, 'options.featureMap');
  }
  const normalize = norm ?? true;
  if (typeof normalize !== 'boolean') {
    throw new AttentionError('INVALID_OPTION', `must be a boolean, got ${describe(norm)}`, 'options.normalize');
  }
  if (!normalize && eps !== undefined) {
    throw new AttentionError('INVALID_OPTION', 'only applies with normalize: true (there is no denominator)', 'options.epsilon');
  }
  const epsilon = !normalize ? 0 : eps === undefined ? Math.fround(1e-6) : float32(eps, 'options.epsilon', 0);

  // The recurrence's options: causal calls only (a non-causal call has no order to decay or stream along).
  for (const [name, value] of [['decay', gamma], ['gates', gate], ['state', st]] as const) {
    if (value !== undefined && !causal) {
      throw new AttentionError('INVALID_OPTION', 'needs a causal call (causal: true, \'top-left\' or \'bottom-right\')', `options.${name}`);
    }
  }
  const decay = gamma === undefined ? null
    : floats(gamma, 'options.decay', heads, 'heads', (x) => x > 0 && x <= 1, 'in (0, 1]');
  const gates = gate === undefined ? null
    : floats(gate, 'options.gates', batch * heads * seqK, '[batch, heads, seqK]', (x) => Number.isFinite(x) && x <= 0, 'finite and ≤ 0');

  let state: LinearStateHandle | null = null;
  if (st !== undefined) {
    if (!LinearStateHandle.is(st)) {
      throw new AttentionError('INVALID_TYPE', `must be a state from engine.createLinearState, got ${describe(st)}`, 'options.state');
    }
    if (st.owner !== owner) throw new AttentionError('INVALID_OPTION', 'belongs to another engine', 'options.state');
    st.check('options.state');
    const want = [batch, heads, headDim, headDimV];
    const got = [st.batch, st.heads, st.headDim, st.headDimV];
    if (want.some((x, i) => x !== got[i])) {
      throw new AttentionError('SHAPE_MISMATCH',
        `has [batch, heads, headDim, headDimV] = [${got.join(', ')}], the call [${want.join(', ')}]`, 'options.state');
    }
    state = st;
  }
  return { ...shape, epsilon, featureMap, normalize, decay, gates, state };
}
