// Threaded calls copy q, k and v unit by unit while the workers compute (src/wasm/staging.ts, work.ts COPIED): a
// thread may run an item only once the caller has copied its unit, and the answers must be the same as one
// thread's, element for element, whichever inputs are copied and which are engine tensors in place.
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createAttention } from '../dist/index.js';
import type { AttentionEngine, AttentionOptions } from '../dist/index.js';
import { splitPolicy } from '../dist/wasm/pool.js';
import { itemsPerUnit, outputCopier, publishStaging, raiseCopied } from '../dist/wasm/staging.js';
import { COPIED, FIRST_UNIT, ITEMS, MAX_UNITS, PER_UNIT, UNITS, createControl, rangeOf } from '../dist/wasm/work.js';
import { BR } from '../src/params.generated.js';
import { random } from './helpers.js';
import { numberToHalf } from '../src/half.js';

describe('the copy protocol', () => {
  // Thread 1 runs alone (the caller never claims), so it takes its own range and then all of range 0, while this
  // thread raises COPIED one unit every few milliseconds in the caller's order: every item must wait for its unit,
  // spinning (spinMs 0.5) or asleep (spinMs 0).
  test.each([[12, 8, 0.5], [5, 3, 0], [7, 1, 0.5], [12, 8, 0]])('units %i × %i items, spin %f ms: no item runs before its unit is copied', async (units, perUnit, spinMs) => {
    const items = units * perUnit;
    const control = createControl(spinMs, 2);
    const firstUnit = Math.floor(rangeOf(1, items, 2)[0] / perUnit);
    control.words[ITEMS] = items;
    control.words[UNITS] = units;
    control.words[PER_UNIT] = perUnit;
    control.words[FIRST_UNIT] = firstUnit;
    control.words[COPIED] = 0;
    const log = new SharedArrayBuffer(4 * (1 + 2 * items));
    const worker = new Worker(new URL('./workers/staging-worker.mjs', import.meta.url), { workerData: { control: control.buffer, log } });
    let started: () => void;
    const ready = new Promise<void>((resolve) => (started = resolve));
    const done = new Promise<void>((resolve, reject) => {
      worker.on('message', (m) => (m === 'ready' ? started() : resolve()));
      worker.on('error', reject);
    });
    await ready;
    for (let i = 1; i <= units; i++) {
      await new Promise((r) => setTimeout(r, 3));
      raiseCopied(control.words, i); // as the caller does: the worker may be asleep in Atomics.wait
    }
    await done;
    await worker.terminate();
    const entries = new Int32Array(log);
    expect(entries[0]).toBe(items);
    const ran: number[] = [];
    for (let n = 0; n < items; n++) {
      const item = entries[1 + 2 * n]!, copied = entries[2 + 2 * n]!;
      const order = (Math.floor(item / perUnit) - firstUnit + units) % units;
      expect(copied, `item ${item} ran with ${copied} units copied`).toBeGreaterThan(order);
      ran.push(item);
    }
    expect(ran.sort((a, b) => a - b)).toEqual(Array.from({ length: items }, (_, i) => i));
  });

  test('the caller copies out finished units only, each once, following every range in order', () => {
    const units = 10, perUnit = 3, items = units * perUnit; // range 0: items 0–14 (units 0–4), range 1: 15–29 (units 5–9)
    const control = createControl(0, 2);
    const out: number[] = [];
    const staging = { units, perUnit, copyIn: () => undefined, copyOut: (u: number) => out.push(u) };
    publishStaging(control, staging, items, 2);
    const copier = outputCopier(control, staging, items, 2);
    copier.scan();
    expect(out).toEqual([]); // nothing finished
    for (const u of [0, 1, 3, 5, 6, 9]) control.done[u] = perUnit; // unit 2 not finished: range 0's cursor stops there
    control.done[2] = perUnit - 1;
    copier.scan();
    expect(out).toEqual([0, 1, 5, 6]);
    control.done[2] = perUnit;
    control.done[7] = perUnit;
    copier.scan();
    expect(out).toEqual([0, 1, 5, 6, 2, 3, 7]);
    copier.finish(); // after the run: every unit left, once
    expect(out.sort((a, b) => a - b)).toEqual(Array.from({ length: units }, (_, i) => i));
  });

  test('a call with more units than the counters copies its output out after the run', () => {
    const units = MAX_UNITS + 1, perUnit = 1;
    const control = createControl(0, 2);
    const out: number[] = [];
    const staging = { units, perUnit, copyIn: () => undefined, copyOut: (u: number) => out.push(u) };
    publishStaging(control, staging, units, 2);
    const copier = outputCopier(control, staging, units, 2);
    control.done.fill(perUnit); // would say finished if it were counted
    copier.scan();
    expect(out).toEqual([]);
    copier.finish();
    expect(out.length).toBe(units);
  });

  test('units follow the kernels\' item numbering', () => {
    // assembly/attention.ts: item = (b·H + h)·⌈L/BR⌉ + query block, grouped decode (b·KVH + kvh)·⌈group/BR⌉ + head block.
    const plan = (o: Partial<Record<string, unknown>>) => ({ layout: 'bhsd', rope: null, returnWeights: false, ...o }) as never;
    expect(itemsPerUnit(plan({ heads: 12, kvHeads: 12, seqQ: 512 }))).toBe(512 / BR);
    expect(itemsPerUnit(plan({ heads: 32, kvHeads: 8, seqQ: 200 }))).toBe(4 * Math.ceil(200 / BR));
    expect(itemsPerUnit(plan({ heads: 8, kvHeads: 2, seqQ: 1 }))).toBe(Math.ceil(4 / BR)); // grouped decode
    expect(itemsPerUnit(plan({ heads: 8, kvHeads: 2, seqQ: 1, returnWeights: true }))).toBe(4); // not grouped
    expect(itemsPerUnit(plan({ heads: 4, kvHeads: 4, seqQ: 9, layout: 'bshd' }))).toBe(0);
    expect(itemsPerUnit(plan({ heads: 4, kvHeads: 4, seqQ: 9, rope: {} }))).toBe(0);
  });
});

describe('staged calls against one thread', () => {
  const defaultMinFlops = splitPolicy.minFlops;
  let one: AttentionEngine, two: AttentionEngine, three: AttentionEngine;
  beforeAll(async () => {
    splitPolicy.minFlops = 0; // share every call
    one = await createAttention({ backend: 'wasm-relaxed-simd' });
    two = await createAttention({ backend: 'wasm-relaxed-simd', threads: 2 });
    three = await createAttention({ backend: 'wasm-relaxed-simd', threads: 3 });
  });
  afterAll(() => {
    [one, two, three].forEach((e) => e.dispose());
    splitPolicy.minFlops = defaultMinFlops;
  });

  const shapes: (AttentionOptions & { name: string })[] = [
    // The caller's range ends inside a unit (3 units of 2·⌈L/BR⌉ items split in two), and one unit in all.
    { name: 'GQA 6/3, batch 3, split inside a unit', batch: 3, heads: 6, kvHeads: 3, seqQ: BR + 7, seqK: 90, headDim: 24 },
    { name: 'MQA 5/1: one unit', batch: 1, heads: 5, kvHeads: 1, seqQ: 2 * BR + 1, seqK: 33, headDim: 16, causal: true },
    { name: 'grouped decode 8/2, batch 2', batch: 2, heads: 8, kvHeads: 2, seqQ: 1, seqK: 300, headDim: 64 },
    { name: 'headDimV 5, mask', batch: 2, heads: 4, seqQ: 70, seqK: 41, headDim: 9, headDimV: 5, mask: random(41, 3), maskShape: [41] },
    { name: 'returnWeights', batch: 1, heads: 3, seqQ: 20, seqK: 30, headDim: 8, returnWeights: true },
  ];

  function inputs(s: AttentionOptions, seed: number) {
    const { batch: B = 1, heads: H, kvHeads: KVH = H, seqQ: L, seqK: S, headDim: D, headDimV: Dv = D } = s as Required<AttentionOptions>;
    return { q: random(B * H * L * D, seed), k: random(B * KVH * S * D, seed + 1), v: random(B * KVH * S * Dv, seed + 2) };
  }
  const plain = (s: AttentionOptions) => { const { name: _n, ...o } = s as AttentionOptions & { name?: string }; return o; };

  for (const s of shapes) {
    test(`${s.name}: 2 and 3 threads equal one`, () => {
      const { q, k, v } = inputs(s, 7);
      const want = one.attention(q, k, v, plain(s));
      for (const e of [two, three]) expect(e.attention(q, k, v, plain(s))).toEqual(want);
    });
  }

  test('engine tensors in place beside copied arrays, and 16-bit inputs', () => {
    const s = shapes[0]!;
    const { q, k, v } = inputs(s, 11);
    const want = one.attention(q, k, v, plain(s)) as Float32Array;
    for (const e of [two, three]) {
      const tq = e.alloc(q.length), tv = e.alloc(v.length);
      tq.array.set(q);
      tv.array.set(v);
      expect(e.attention(tq, k, v, plain(s))).toEqual(want);
      expect(e.attention(q, k, tv, plain(s))).toEqual(want);
      tq.free();
      tv.free();
      const h = (x: Float32Array) => Uint16Array.from(x, (y) => numberToHalf(y));
      expect(e.attention(h(q), h(k), h(v), plain(s))).toEqual(one.attention(h(q), h(k), h(v), plain(s)));
    }
  });

  test('into a caller\'s out array, an engine tensor out and a 16-bit out', () => {
    const s = shapes[0]!;
    const { q, k, v } = inputs(s, 41);
    const want = one.attention(q, k, v, plain(s)) as Float32Array;
    for (const e of [two, three]) {
      const out = new Float32Array(want.length).fill(NaN);
      expect(e.attention(q, k, v, { ...plain(s), out })).toBe(out);
      expect(out).toEqual(want);
      const t = e.alloc(want.length);
      e.attention(q, k, v, { ...plain(s), out: t });
      expect(t.array).toEqual(want);
      t.free();
      const half = new Uint16Array(want.length);
      e.attention(q, k, v, { ...plain(s), out: half });
      expect(half).toEqual(Uint16Array.from(want, (x) => numberToHalf(x)));
    }
  });

  test('stale memory is never read: a second call with new inputs gives its own answer', () => {
    const s = shapes[0]!;
    const a = inputs(s, 21), b = inputs(s, 31);
    two.attention(a.q, a.k, a.v, plain(s));
    expect(two.attention(b.q, b.k, b.v, plain(s))).toEqual(one.attention(b.q, b.k, b.v, plain(s)));
  });
});
