// Hardening properties (fast-check):
//  - random shapes, masks, causal modes, activations (every one in ACTIVATIONS), soft-capping, weights and
//    SharedArrayBuffer-backed inputs: every backend agrees with the float64 reference;
//  - random invalid calls: always an AttentionError with the right code, never another exception, never a
//    result; a passed `out` is left untouched; and the same engine still computes correctly afterwards.
import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ACTIVATIONS, AttentionError } from '../src/index.js';
import type { Activation, AttentionEngine, AttentionOptions, BackendName } from '../src/index.js';
import { allEngines, expectClose, random } from './helpers.js';
import { referenceWithWeights } from './runtimes/reference.mjs';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

const activations: readonly Activation[] = Array.isArray(ACTIVATIONS) && ACTIVATIONS.length > 0 ? ACTIVATIONS : ['softmax'];

function shared(a: Float32Array): Float32Array {
  const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
  s.set(a);
  return s;
}

interface Call {
  q: Float32Array; k: Float32Array; v: Float32Array; options: AttentionOptions;
}

const validCall = fc
  .record({
    batch: fc.integer({ min: 1, max: 2 }),
    kvHeads: fc.integer({ min: 1, max: 2 }),
    group: fc.integer({ min: 1, max: 3 }),
    seqQ: fc.integer({ min: 1, max: 24 }),
    seqK: fc.integer({ min: 1, max: 80 }),
    headDim: fc.integer({ min: 1, max: 24 }),
    headDimV: fc.integer({ min: 1, max: 12 }),
    causal: fc.constantFrom<AttentionOptions['causal']>(undefined, false, true, 'top-left', 'bottom-right'),
    maskKind: fc.constantFrom('none', 'bool', 'float'),
    maskDims: fc.subarray([0, 1, 2, 3]),
    maskRank: fc.integer({ min: 1, max: 4 }),
    scale: fc.option(fc.double({ min: -1, max: 1, noNaN: true }), { nil: undefined }),
    activation: fc.constantFrom(...activations),
    epsilon: fc.option(fc.double({ min: 1e-7, max: 1e-3, noNaN: true }), { nil: undefined }),
    bias: fc.option(fc.double({ min: -3, max: 3, noNaN: true }), { nil: undefined }),
    power: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
    softcap: fc.option(fc.double({ min: 0.5, max: 20, noNaN: true }), { nil: undefined }),
    returnWeights: fc.boolean(),
    sharedMemory: fc.boolean(),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
  })
  .map((r): Call => {
    const heads = r.kvHeads * r.group;
    const options: AttentionOptions = {
      batch: r.batch, heads, kvHeads: r.kvHeads, seqQ: r.seqQ, seqK: r.seqK, headDim: r.headDim, headDimV: r.headDimV,
      activation: r.activation,
    };
    if (r.causal !== undefined) options.causal = r.causal;
    if (r.scale !== undefined) options.scale = r.scale;
    if (r.softcap !== undefined) options.softcap = r.softcap;
    if (r.activation === 'squared' && r.epsilon !== undefined) options.epsilon = r.epsilon;
    if (r.activation === 'sigmoid' && r.bias !== undefined) options.bias = r.bias;
    if (r.activation === 'polynomial' && r.power !== undefined) options.power = r.power;
    if (r.returnWeights) options.returnWeights = true;
    if (r.maskKind !== 'none') {
      const full = [r.batch, heads, r.seqQ, r.seqK];
      const shape = full.map((d, i) => (r.maskDims.includes(i) ? d : 1)).slice(4 - r.maskRank);
      const n = shape.reduce((a, c) => a * c, 1);
      const noise = random(n, r.seed + 7);
      options.maskShape = shape;
      options.mask = r.maskKind === 'bool'
        ? Uint8Array.from(noise, (x) => (x > -0.5 ? 1 : 0))
        : Float32Array.from(noise, (x) => (x < -0.7 ? -Infinity : 2 * x));
    }
    let q = random(r.batch * heads * r.seqQ * r.headDim, r.seed);
    let k = random(r.batch * r.kvHeads * r.seqK * r.headDim, r.seed + 1);
    let v = random(r.batch * r.kvHeads * r.seqK * r.headDimV, r.seed + 2);
    if (r.sharedMemory) [q, k, v] = [shared(q), shared(k), shared(v)];
    return { q, k, v, options };
  });

function describeCall(o: AttentionOptions): string {
  return JSON.stringify({ ...o, mask: o.mask ? `${o.mask.constructor.name}(${o.mask.length})` : undefined });
}

/**
 * Runs a valid call on one engine and checks output (and weights) against the float64 reference, allowing each
 * element the reference's bound for float32 score rounding: random scores can land where the maths itself is
 * ill-conditioned ('squared' with a score near √ε moves its weight by up to δs/√ε), and no float32 kernel can do
 * better there.
 */
function checkValid(name: string, engine: AttentionEngine, { q, k, v, options }: Call): void {
  const want = referenceWithWeights(q, k, v, options, { bound: true });
  const label = `${name} ${describeCall(options)}`;
  if (options.returnWeights) {
    const got = engine.attention(q, k, v, { ...options, returnWeights: true });
    expectClose(got.output, want.output, label, want.outputBound);
    expectClose(got.weights, want.weights, `${label} weights`, want.weightsBound);
  } else {
    const got = engine.attention(q, k, v, options);
    expect(got).toBeInstanceOf(Float32Array);
    expectClose(got, want.output, label, want.outputBound);
  }
}

test(`all backends match the float64 reference: shapes, masks, causal modes, activations (${activations.join(', ')}), softcap, weights`, () => {
  fc.assert(
    fc.property(validCall, (call) => {
      for (const [name, engine] of engines) checkValid(name, engine, call);
    }),
    { numRuns: 400 },
  );
});

// ---- invalid input ------------------------------------------------------------------------------------

type Code = AttentionError['code'];
interface Corruption {
  readonly what: string;
  readonly codes: readonly Code[];
  apply(call: Call): unknown[];
}

const notF32 = [null, undefined, 0, 'q', [1, 2, 3], {}, new Float64Array(4), new Int32Array(4), new Uint8Array(4), new DataView(new ArrayBuffer(4))];
const badDims = [0, -1, 1.5, NaN, Infinity, -Infinity, '4', null, 2 ** 53, true, {}];
const dimNames = ['batch', 'heads', 'seqQ', 'seqK', 'headDim', 'kvHeads', 'headDimV'] as const;

const corruption: fc.Arbitrary<Corruption> = fc.oneof(
  fc.record({ which: fc.integer({ min: 0, max: 2 }), bad: fc.constantFrom(...notF32) }).map(({ which, bad }) => ({
    what: `tensor ${'qkv'[which]} = ${String(bad)}`, codes: ['INVALID_TYPE'] as Code[],
    apply: (c: Call) => {
      const t: unknown[] = [c.q, c.k, c.v];
      t[which] = bad;
      return [t[0], t[1], t[2], c.options];
    },
  })),
  fc.record({ which: fc.integer({ min: 0, max: 2 }), delta: fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0) }).map(({ which, delta }) => ({
    what: `tensor ${'qkv'[which]} length ${delta > 0 ? '+' : ''}${delta}`, codes: ['SHAPE_MISMATCH'] as Code[],
    apply: (c: Call) => {
      const t: Float32Array[] = [c.q, c.k, c.v];
      const src = t[which]!;
      t[which] = delta < 0 ? src.subarray(0, Math.max(0, src.length + delta)) : Float32Array.from([...src, ...new Array(delta).fill(0)]);
      return [t[0], t[1], t[2], c.options];
    },
  })),
  fc.record({ dim: fc.constantFrom(...dimNames), bad: fc.constantFrom(...badDims) }).map(({ dim, bad }) => ({
    what: `options.${dim} = ${String(bad)}`, codes: ['INVALID_DIMENSION'] as Code[],
    apply: (c: Call) => [c.q, c.k, c.v, { ...c.options, [dim]: bad }],
  })),
  fc.constant({
    what: 'kvHeads does not divide heads', codes: ['SHAPE_MISMATCH'] as Code[],
    apply: (c: Call) => [c.q, c.k, c.v, { ...c.options, kvHeads: c.options.heads + 1 }],
  }),
  fc.constantFrom(null, 0, 'options', undefined, [], true).map((bad) => ({
    what: `options = ${String(bad)}`, codes: bad === undefined || typeof bad !== 'object' || bad === null ? ['INVALID_TYPE'] as Code[] : ['INVALID_DIMENSION', 'INVALID_TYPE'] as Code[],
    apply: (c: Call) => [c.q, c.k, c.v, bad],
  })),
  fc.constantFrom('casual', 'maks', 'Scale', '__proto__x', 'weights').map((key) => ({
    what: `unknown option ${key}`, codes: ['INVALID_OPTION'] as Code[],
    apply: (c: Call) => [c.q, c.k, c.v, { ...c.options, [key]: true }],
  })),
  fc.constantFrom(NaN, Infinity, -Infinity, '1', null).map((bad) => ({
    what: `scale = ${String(bad)}`, codes: ['INVALID_OPTION'] as Code[],
    apply: (c: Call) => [c.q, c.k, c.v, { ...c.options, scale: bad }],
  })),
  fc.constantFrom('top-right', 'yes', 1, 0, null, {}).map((bad) => ({
    what: `causal = ${String(bad)}`, codes: ['INVALID_OPTION'] as Code[],
    apply: (c: Call) => [c.q, c.k, c.v, { ...c.options, causal: bad }],
  })),
  fc.constantFrom('gelu', 'Softmax', '', 0, false).map((bad) => ({
    what: `activation = ${String(bad)}`, codes: ['INVALID_OPTION'] as Code[],
    apply: (c: Call) => [c.q, c.k, c.v, { ...c.options, activation: bad }],
  })),
  fc.constantFrom<[string, unknown]>(['softcap', 0], ['softcap', -1], ['softcap', NaN], ['softcap', Infinity], ['returnWeights', 1], ['returnWeights', 'yes'])
    .map(([key, bad]) => ({
      what: `${key} = ${String(bad)}`, codes: ['INVALID_OPTION'] as Code[],
      apply: (c: Call) => [c.q, c.k, c.v, { ...c.options, [key]: bad }],
    })),
  fc.constantFrom<[string, unknown]>(['epsilon', 1e-3], ['bias', 0], ['power', 2]).map(([key, value]) => ({
    // An activation-specific option given with softmax.
    what: `${key} with softmax`, codes: ['INVALID_OPTION'] as Code[],
    apply: (c: Call) => [c.q, c.k, c.v, { ...c.options, activation: 'softmax', [key]: value }],
  })),
  fc.constantFrom(0, 65, 1.5, NaN, '3').map((bad) => ({
    what: `polynomial power = ${String(bad)}`, codes: ['INVALID_OPTION'] as Code[],
    apply: (c: Call) => [c.q, c.k, c.v, { ...c.options, activation: 'polynomial', power: bad, epsilon: undefined, bias: undefined }],
  })),
  fc.constantFrom(new Float64Array(4), new Int8Array(4), [1, 0], 'mask', 1).map((bad) => ({
    what: `mask = ${String(bad)}`, codes: ['INVALID_TYPE'] as Code[],
    apply: (c: Call) => [c.q, c.k, c.v, { ...c.options, mask: bad, maskShape: undefined }],
  })),
  fc.integer({ min: 1, max: 5 }).map((delta) => ({
    what: `mask length + ${delta}`, codes: ['SHAPE_MISMATCH'] as Code[],
    apply: (c: Call) => {
      const { seqQ, seqK } = c.options;
      return [c.q, c.k, c.v, { ...c.options, mask: new Uint8Array(seqQ * seqK + delta).fill(1), maskShape: undefined }];
    },
  })),
  fc.constantFrom<[unknown, Code[]]>(
    [[], ['INVALID_OPTION']], [[1, 1, 1, 1, 1], ['INVALID_OPTION']], ['12', ['INVALID_OPTION']],
    [[0], ['INVALID_DIMENSION']], [[1.5, 2], ['INVALID_DIMENSION']], [[NaN], ['INVALID_DIMENSION']],
  ).map(([bad, codes]) => ({
    what: `maskShape = ${JSON.stringify(bad)}`, codes,
    apply: (c: Call) => [c.q, c.k, c.v, { ...c.options, mask: new Uint8Array(1), maskShape: bad }],
  })),
  fc.constant({
    what: 'maskShape that does not broadcast', codes: ['SHAPE_MISMATCH'] as Code[],
    apply: (c: Call) => {
      const bad = c.options.seqK + 1;
      return [c.q, c.k, c.v, { ...c.options, mask: new Uint8Array(bad).fill(1), maskShape: [1, bad] }];
    },
  }),
  fc.constant({
    what: 'maskShape without mask', codes: ['INVALID_OPTION'] as Code[],
    apply: (c: Call) => [c.q, c.k, c.v, { ...c.options, mask: undefined, maskShape: [1] }],
  }),
  fc.constantFrom('short', 'Float64Array', 'Array').map((kind) => ({
    what: `out ${kind}`, codes: kind === 'short' ? ['SHAPE_MISMATCH'] as Code[] : ['INVALID_TYPE'] as Code[],
    apply: (c: Call) => {
      const n = c.options.batch * c.options.heads * c.options.seqQ * (c.options.headDimV ?? c.options.headDim);
      const out = kind === 'short' ? new Float32Array(n - 1) : kind === 'Float64Array' ? new Float64Array(n) : new Array(n).fill(0);
      return [c.q, c.k, c.v, { ...c.options, out }];
    },
  })),
);

test('random invalid calls: a typed AttentionError, no result, out untouched, and the engine keeps working', () => {
  fc.assert(
    fc.property(validCall, corruption, fc.boolean(), (call, bad, withOut) => {
      const [q, k, v, options] = bad.apply(call);
      // A valid `out` sentinel (unless the corruption brings its own): it must not be written.
      const o = options as AttentionOptions | null;
      let sentinel: Float32Array | undefined;
      let args: unknown = options;
      if (withOut && typeof o === 'object' && o !== null && !Array.isArray(o) && !('out' in o)) {
        const b = typeof o.batch === 'number' ? o.batch : 1;
        const n = Math.abs(b * (Number(o.heads) || 1) * (Number(o.seqQ) || 1) * (Number(o.headDimV ?? o.headDim) || 1));
        if (Number.isSafeInteger(n) && n > 0 && n < 1e6) {
          sentinel = new Float32Array(n).fill(12345);
          args = { ...o, out: sentinel };
        }
      }
      for (const [name, engine] of engines) {
        let thrown: unknown = null;
        let result: unknown;
        try {
          result = engine.attention(q as Float32Array, k as Float32Array, v as Float32Array, args as AttentionOptions);
        } catch (error) {
          thrown = error;
        }
        const label = `${name}: ${bad.what} on ${describeCall(call.options)}`;
        expect(result, `${label} returned a result`).toBeUndefined();
        expect(thrown, `${label} threw ${String(thrown)}`).toBeInstanceOf(AttentionError);
        expect(bad.codes, `${label}: code ${(thrown as AttentionError).code} (${(thrown as Error).message})`).toContain((thrown as AttentionError).code);
        if (sentinel) expect(sentinel.every((x) => x === 12345), `${label}: out was written`).toBe(true);
        // The engine is unharmed: the original call still gives the reference answer.
        checkValid(name, engine, call);
      }
    }),
    { numRuns: 400 },
  );
});

test('invalid createAttention options: a typed AttentionError, never another exception', async () => {
  const { createAttention } = await import('../src/index.js');
  // (`backend: null` is accepted as 'auto', like other options that are null-coalesced to their default.)
  const bad: unknown[] = [
    null, 0, 'auto', true,
    ...['gpu', 'WASM', '', 0, 'webgpu', 'simd', {}].map((backend) => ({ backend })),
    ...[0, -1, NaN, -Infinity, '1e6', null].map((maxMemoryBytes) => ({ maxMemoryBytes })),
    { backned: 'js' },
  ];
  for (const options of bad) {
    let thrown: unknown;
    try {
      await createAttention(options as never);
    } catch (error) {
      thrown = error;
    }
    const label = `createAttention(${String(JSON.stringify(options))})`;
    expect(thrown, label).toBeInstanceOf(AttentionError);
    expect(['INVALID_TYPE', 'INVALID_OPTION'], label).toContain((thrown as AttentionError).code);
  }
});

// Typed arrays made in another realm (an iframe, a vm context, jsdom-style test environments) fail
// `instanceof Float32Array`; validation checks the type tag instead.
test('a Float32Array from another realm (vm context) is accepted', async () => {
  const { runInNewContext } = await import('node:vm');
  const foreign = runInNewContext('new Float32Array([1, 2])') as Float32Array;
  const o = { batch: 1, heads: 1, seqQ: 1, seqK: 1, headDim: 2 };
  for (const [, engine] of engines) {
    expect(Array.from(engine.attention(foreign, Float32Array.of(1, 2), Float32Array.of(3, 4), o))).toEqual([3, 4]);
  }
});
