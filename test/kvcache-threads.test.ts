// Threaded engines (2 and 3 threads) give results identical to one thread through float16 and int8 caches, ragged
// rows and rolling windows: decode, grouped decode (GQA) and prefill chunks.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BACKENDS, createAttention } from '../dist/index.js';
import type { AttentionEngine, KVAttendOptions } from '../dist/index.js';
import { random } from './helpers.js';
import { DTYPES, tokens } from './kvcache-helpers.js';

const WASM = BACKENDS.filter((b) => b.name !== 'js').map((b) => b.name);

describe.each(WASM)('%s', (backend) => {
  let engines: AttentionEngine[];
  beforeAll(async () => {
    engines = [await createAttention({ backend }), await createAttention({ backend, threads: 2 }), await createAttention({ backend, threads: 3 })];
  });
  afterAll(() => engines.forEach((e) => e.dispose()));

  test.each(DTYPES)('%s: plain, ragged and rolling caches, identical to one thread', (dtype) => {
    const [B, H, KVH, D, S] = [2, 8, 2, 40, 300];
    const K = random(B * KVH * S * D, 1), V = random(B * KVH * S * D, 2);
    for (const window of [undefined, 64]) {
      const caches = engines.map((e) => e.createKVCache({ batch: B, kvHeads: KVH, headDim: D, capacity: window === undefined ? S : 100, dtype, ...(window ? { window } : {}) }));
      let len = 0;
      for (const n of [200, 1, 30, 1, 20]) {
        for (const c of caches) c.append(tokens(K, B, KVH, S, D, len, len + n), tokens(V, B, KVH, S, D, len, len + n));
        len += n;
        const one = tokens(K, 1, KVH, 1, D, 0, 1);
        for (const c of caches) c.append(one, one, { rows: [1] }); // row 1 one token ahead
        for (const options of [
          { heads: H, seqQ: 1 },
          { heads: H, seqQ: Math.min(n, 30), causal: 'bottom-right' },
          { heads: H, seqQ: 1, rows: [1, 0, 1] },
          { heads: H, seqQ: 5, activation: 'relu' },
        ] as KVAttendOptions[]) {
          const entries = options.rows?.length ?? B;
          const q = random(entries * H * options.seqQ * D, len + options.seqQ, 1.5);
          const want = caches[0]!.attend(q, options);
          for (const c of caches.slice(1)) expect(c.attend(q, options), `${dtype} window ${window} length ${len} ${JSON.stringify(options)}`).toEqual(want);
        }
      }
      caches.forEach((c) => c.dispose());
    }
  });
});
