// Random shapes, masks and causal modes: every backend agrees with the float64 reference.
import fc from 'fast-check';
import { afterAll, beforeAll, test } from 'vitest';
import type { AttentionEngine, AttentionOptions, BackendName } from '../src/index.js';
import { allEngines, expectClose, random } from './helpers.js';
import { referenceAttention } from './reference.js';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

const call = fc
  .record({
    batch: fc.integer({ min: 1, max: 2 }),
    kvHeads: fc.integer({ min: 1, max: 3 }),
    group: fc.integer({ min: 1, max: 3 }),
    seqQ: fc.integer({ min: 1, max: 40 }),
    seqK: fc.integer({ min: 1, max: 80 }),
    headDim: fc.integer({ min: 1, max: 40 }),
    headDimV: fc.integer({ min: 1, max: 24 }),
    causal: fc.constantFrom<false | true | 'top-left' | 'bottom-right'>(false, true, 'top-left', 'bottom-right'),
    maskKind: fc.constantFrom('none', 'bool', 'float'),
    maskDims: fc.subarray([0, 1, 2, 3]),
    scale: fc.option(fc.double({ min: -2, max: 2, noNaN: true }), { nil: undefined }),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
  })
  .map((r) => {
    const heads = r.kvHeads * r.group;
    const options: AttentionOptions = {
      batch: r.batch, heads, kvHeads: r.kvHeads, seqQ: r.seqQ, seqK: r.seqK, headDim: r.headDim,
      headDimV: r.headDimV, causal: r.causal, ...(r.scale === undefined ? {} : { scale: r.scale }),
    };
    if (r.maskKind !== 'none') {
      const full = [r.batch, heads, r.seqQ, r.seqK];
      const shape = full.map((d, i) => (r.maskDims.includes(i) ? d : 1));
      const n = shape.reduce((a, c) => a * c, 1);
      const noise = random(n, r.seed + 7);
      options.maskShape = shape;
      options.mask = r.maskKind === 'bool'
        ? Uint8Array.from(noise, (x) => (x > -0.5 ? 1 : 0))
        : Float32Array.from(noise, (x) => (x < -0.7 ? -Infinity : 2 * x));
    }
    return { options, seed: r.seed };
  });

test('all backends match the float64 reference on random calls', () => {
  fc.assert(
    fc.property(call, ({ options, seed }) => {
      const o = options;
      const q = random(o.batch * o.heads * o.seqQ * o.headDim, seed);
      const k = random(o.batch * o.kvHeads! * o.seqK * o.headDim, seed + 1);
      const v = random(o.batch * o.kvHeads! * o.seqK * o.headDimV!, seed + 2);
      const want = referenceAttention(q, k, v, o);
      for (const [name, engine] of engines) expectClose(engine.attention(q, k, v, o), want, `${name} ${JSON.stringify({ ...o, mask: undefined })}`);
    }),
    { numRuns: 300 },
  );
});
