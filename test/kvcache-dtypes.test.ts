// float16 and int8 KV caches (issue 11) in every backend against the float64 reference: tight on the values the
// cache stores (test/runtimes/quantize.mjs) and within the issue's bounds (float16 2e-3, int8 3e-2 of max |out|)
// on the values given; decode and prefill chunks, GQA/MQA, masks, causal modes, the model options, every
// activation, and cache lengths and chunks around the kernels' blocks (BACKENDS[i].blocks, 32-key super-panels).
import { afterAll, beforeAll, describe, test } from 'vitest';
import { BACKENDS } from '../src/index.js';
import type { AttentionEngine, BackendName, KVAttendOptions, KVCacheDtype } from '../src/index.js';
import { allEngines, random } from './helpers.js';
import { expectBound, expectStored, tokens } from './kvcache-helpers.js';
import { referenceAttention, tileEdges } from './runtimes/cases.mjs';
import type { RefOptions } from './runtimes/cases.mjs';
import { storedAs } from './runtimes/quantize.mjs';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

const TYPED: readonly KVCacheDtype[] = ['float16', 'int8'];
const worst = new Map<string, number>(); // largest error ratio per dtype, printed at the end

const SETUPS = [
  { name: 'MHA 2x2, headDim 16', batch: 2, heads: 2, kvHeads: 2, headDim: 16, headDimV: 16 },
  { name: 'GQA 4/2, headDim 12, headDimV 5', batch: 1, heads: 4, kvHeads: 2, headDim: 12, headDimV: 5 },
  { name: 'MQA 6/1, headDim 65, headDimV 40', batch: 1, heads: 6, kvHeads: 1, headDim: 65, headDimV: 40 },
  { name: 'GQA 8/2, headDim 128', batch: 1, heads: 8, kvHeads: 2, headDim: 128, headDimV: 128 },
];

/** Checks one attend against float64 on the stored values (tight) and on the given ones (bounded). */
function check(got: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, o: RefOptions, dtype: KVCacheDtype, label: string) {
  const D = o.headDim, Dv = o.headDimV ?? D;
  const ks = Float32Array.from(storedAs(k, dtype, D)), vs = Float32Array.from(storedAs(v, dtype, Dv));
  expectStored(got, referenceAttention(q, ks, vs, o), dtype, `${label} (stored values)`);
  const ratio = expectBound(got, referenceAttention(q, k, v, o), dtype, label);
  worst.set(dtype, Math.max(worst.get(dtype) ?? 0, ratio));
}

describe.each(BACKENDS.map((b) => b.name))('%s', (backend) => {
  describe.each(TYPED)('%s cache', (dtype) => {
    test.each(SETUPS)('$name: prefill, chunks and decode steps with masks, causal modes and activations', (s) => {
      const e = engines.get(backend)!;
      const S = 140;
      const K = random(s.batch * s.kvHeads * S * s.headDim, 1, 1.5);
      const V = random(s.batch * s.kvHeads * S * s.headDimV, 2);
      const cache = e.createKVCache({ batch: s.batch, kvHeads: s.kvHeads, headDim: s.headDim, headDimV: s.headDimV, capacity: S, dtype });
      let len = 0;
      let seed = 10;
      for (const n of [70, 1, 64, 1, 3]) {
        cache.append(tokens(K, s.batch, s.kvHeads, S, s.headDim, len, len + n), tokens(V, s.batch, s.kvHeads, S, s.headDimV, len, len + n));
        len += n;
        const k = tokens(K, s.batch, s.kvHeads, S, s.headDim, 0, len);
        const v = tokens(V, s.batch, s.kvHeads, S, s.headDimV, 0, len);
        const bool = Uint8Array.from(random(len, seed, 1), (x) => (x > -0.6 ? 1 : 0));
        const float = Float32Array.from(random(2 * len, seed + 1, 2), (x) => (x < -1.5 ? -Infinity : x));
        for (const options of [
          { heads: s.heads, seqQ: n, causal: 'bottom-right' },
          { heads: s.heads, seqQ: 1 },
          { heads: s.heads, seqQ: 2, mask: bool, maskShape: [len] },
          { heads: s.heads, seqQ: 2, mask: float, maskShape: [2, len], causal: true },
          { heads: s.heads, seqQ: 3, activation: 'sigmoid', softcap: 4 },
        ] as KVAttendOptions[]) {
          const q = random(s.batch * s.heads * options.seqQ * s.headDim, seed++, 1.5);
          const o = { ...options, batch: s.batch, kvHeads: s.kvHeads, seqK: len, headDim: s.headDim, headDimV: s.headDimV } as RefOptions;
          check(cache.attend(q, options), q, k, v, o, dtype, `${s.name} len ${len} ${JSON.stringify({ ...options, mask: undefined })}`);
        }
      }
    });

    test('the options real models need: window, ALiBi, sinks, softcap, bshd, GQA, and RoPE kept by the cache', () => {
      const e = engines.get(backend)!;
      const [B, H, KVH, D, S] = [2, 4, 2, 32, 150];
      const K = random(B * KVH * S * D, 5, 1.5), V = random(B * KVH * S * D, 6);
      const slopes = Float32Array.of(0.5, 0.25, 0.125, 0.0625), sinks = Float32Array.of(0, 1, -1, 2);
      for (const bshd of [false, true]) {
        const layout = bshd ? 'bshd' as const : 'bhsd' as const;
        const plain = e.createKVCache({ batch: B, kvHeads: KVH, headDim: D, capacity: S, dtype, layout });
        const rope = { dims: 16, base: 500000 };
        const rotary = e.createKVCache({ batch: B, kvHeads: KVH, headDim: D, capacity: S, dtype, layout, rope });
        let len = 0;
        for (const n of [100, 1, 49]) {
          const kn = tokens(K, B, KVH, S, D, len, len + n, bshd), vn = tokens(V, B, KVH, S, D, len, len + n, bshd);
          plain.append(kn, vn);
          rotary.append(kn, vn);
          len += n;
          const k = tokens(K, B, KVH, S, D, 0, len, bshd), v = tokens(V, B, KVH, S, D, 0, len, bshd);
          const seqQ = n === 1 ? 1 : 7;
          const q = random(B * H * seqQ * D, len, 1.5);
          const options = { heads: H, seqQ, layout, causal: 'bottom-right', window: [40, 0], alibiSlopes: slopes, sinks, softcap: 6 } as KVAttendOptions;
          const o = { ...options, batch: B, kvHeads: KVH, seqK: len, headDim: D } as RefOptions;
          check(plain.attend(q, options), q, k, v, o, dtype, `${layout} len ${len}`);
          // RoPE: keys rotated at their positions when appended, queries at len − seqQ + i (bounded check only).
          const ro = { heads: H, seqQ, layout, causal: 'bottom-right' } as KVAttendOptions;
          expectBound(rotary.attend(q, ro), referenceAttention(q, k, v, { ...o, ...ro, window: undefined, alibiSlopes: undefined, sinks: undefined,
            softcap: undefined, rope: { ...rope, positionQ: len - seqQ, positionK: 0 } } as RefOptions), dtype, `${layout} RoPE len ${len}`);
        }
      }
    });

    test('every activation, including the unbounded weights of relu and polynomial', () => {
      const e = engines.get(backend)!;
      const [H, KVH, D, S] = [4, 2, 24, 77];
      const k = random(KVH * S * D, 7, 2), v = random(KVH * S * D, 8);
      const cache = e.createKVCache({ batch: 1, kvHeads: KVH, headDim: D, capacity: S, dtype });
      cache.append(k, v);
      for (const activation of ['softmax1', 'squared', 'sigmoid', 'relu', 'polynomial'] as const) {
        for (const seqQ of [1, 6]) {
          const q = random(H * seqQ * D, seqQ, 3);
          const options = { heads: H, seqQ, activation, causal: 'bottom-right' } as KVAttendOptions;
          check(cache.attend(q, options), q, k, v, { ...options, batch: 1, kvHeads: KVH, seqK: S, headDim: D } as RefOptions, dtype, `${activation} seqQ ${seqQ}`);
        }
      }
    });

    test('cache lengths and query chunks around the kernels\' blocks and the 32-key super-panels', () => {
      const e = engines.get(backend)!;
      const blocks = BACKENDS.find((b) => b.name === backend)!.blocks;
      const edges = tileEdges(blocks);
      const lengths = [...new Set([...edges.keys, 31, 32, 33, 255, 256, 257, ...edges.decode.flatMap((d) => d.keys)])].sort((a, b) => a - b);
      const [H, KVH, D, Dv] = [2, 1, 33, 24]; // 33: a 1-channel int8 block; 24: a float16 chunk of 8
      for (const S of lengths) {
        const k = random(KVH * S * D, S, 1.5), v = random(KVH * S * Dv, S + 1);
        const cache = e.createKVCache({ batch: 1, kvHeads: KVH, headDim: D, headDimV: Dv, capacity: S, dtype });
        cache.append(k, v);
        // Long caches are there for the decode blocks (1–3 rows); chunks of query rows on the shorter ones.
        for (const seqQ of [1, 3, ...edges.queries.filter((x) => x >= 4 && x <= Math.min(S, 65) && S <= 300)]) {
          const q = random(H * seqQ * D, seqQ, 1.5);
          const options = { heads: H, seqQ, causal: 'bottom-right' } as KVAttendOptions;
          check(cache.attend(q, options), q, k, v, { ...options, batch: 1, kvHeads: KVH, seqK: S, headDim: D, headDimV: Dv } as RefOptions, dtype, `S ${S} seqQ ${seqQ}`);
        }
        cache.dispose();
      }
    });
  });
});

afterAll(() => console.log(`largest error / max |out| vs float64 on the values given: ${[...worst].map(([d, r]) => `${d} ${r.toExponential(2)}`).join(', ')}`));
