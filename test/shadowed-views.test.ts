// Typed arrays whose view properties lie: `length`, `buffer`, `byteOffset` or `byteLength` shadowed by an own
// property (a value or a getter) or a subclass getter, and methods (`set`, `subarray`, …, the iterator) shadowed the
// same ways. The package reads every one of them from the internal slots (the %TypedArray%.prototype getters), so
// the real array is what is validated and used: a real array of the wrong length is SHAPE_MISMATCH naming its real
// length, a valid one gives exactly the result of a clean copy, and no shadowing getter or method ever runs.
// (Before the fix an 8-element q whose length said 16 was taken as 16 elements: wasm read stale arena memory for
// the missing rows, the JS backend returned NaN rows.)
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
// The built package: a threaded engine's workers load dist/wasm/worker-node.js (npm test builds first).
import { AttentionError, BACKENDS, createAttention } from '../dist/index.js';
import type { AttentionEngine, AttentionOptions, KVCache, LinearAttentionOptions } from '../dist/index.js';
import { numberToHalf } from '../dist/half.js';
import { splitPolicy } from '../dist/wasm/pool.js';
import { random, thrown } from './helpers.js';

type Style = 'own value' | 'own getter' | 'subclass getter';
const STYLES: Style[] = ['own value', 'own getter', 'subclass getter'];
const VIEW_PROPS = ['length', 'buffer', 'byteOffset', 'byteLength'] as const;
/** Methods the package could be tempted to call on a caller's array (each would run caller code). */
const METHODS = ['set', 'subarray', 'slice', 'map', 'every', 'fill', 'copyWithin', 'at', Symbol.iterator] as const;

/** Calls of shadowing getters and methods: must stay 0. */
let touched = 0;

type View = Float32Array | Uint8Array | Uint16Array;
type ViewClass = new (n: number) => View;

/** A copy of x whose `prop` reads `claim` (a getter counts its calls), in the given style. */
function shadow<T extends View>(x: T, prop: PropertyKey, claim: unknown, style: Style): T {
  const descriptor: PropertyDescriptor = typeof claim === 'function'
    ? { value: function (this: unknown, ...args: unknown[]) { touched++; return (claim as (...a: unknown[]) => unknown)(...args); } }
    : style === 'own value' ? { value: claim } : { get() { touched++; return claim; } };
  let y: View;
  if (style === 'subclass getter') {
    const Evil = class extends (x.constructor as Float32ArrayConstructor) {};
    Object.defineProperty(Evil.prototype, prop, { ...descriptor, configurable: true });
    y = new Evil(x.length);
  } else {
    y = new (x.constructor as ViewClass)(x.length);
    Object.defineProperty(y, prop, { ...descriptor, configurable: true });
  }
  Float32Array.prototype.set.call(y, x); // through internal slots
  return y as T;
}

/** What a view property claims: `short` — that a real array one element short is whole; else a lie about a valid one. */
function claimOf(prop: (typeof VIEW_PROPS)[number], x: View, expected: number, short: boolean): unknown {
  const size = x.BYTES_PER_ELEMENT;
  if (short) {
    return { length: expected, buffer: new ArrayBuffer(expected * size), byteOffset: 0, byteLength: expected * size }[prop];
  }
  return { length: Math.max(1, expected >> 1), buffer: new ArrayBuffer(64), byteOffset: size, byteLength: size }[prop];
}

const garbage = () => new Float32Array(4).fill(NaN);

/**
 * Every shadowing of one argument: `make(x)` builds the call from the argument x (the clean one gives the expected
 * result). A short real array is SHAPE_MISMATCH naming `argument` and its real length; a valid one gives the clean
 * result exactly; no shadowing getter or method runs.
 */
function everyShadowing(label: string, clean: View, argument: string, call: (x: View) => unknown): void {
  const want = call(clean);
  const expected = clean.length;
  const shortReal = clean.slice(0, expected - 1) as View;
  for (const style of STYLES) {
    for (const prop of VIEW_PROPS) {
      const what = `${label}: ${argument} with ${style} ${prop}`;
      touched = 0;
      // a real array one element short that claims to be whole
      const short = shadow(shortReal, prop, claimOf(prop, clean, expected, true), style);
      const error = thrown(() => call(short));
      expect(error, `${what} (short)`).toBeInstanceOf(AttentionError);
      expect(error, `${what} (short)`).toMatchObject({ code: 'SHAPE_MISMATCH', argument });
      expect((error as Error).message, `${what} (short)`).toContain(`length ${expected - 1} `);
      // a valid array whose property lies
      const liar = shadow(clean, prop, claimOf(prop, clean, expected, false), style);
      expect(call(liar), `${what} (valid)`).toEqual(want);
      expect(touched, `${what}: a shadowing getter ran`).toBe(0);
    }
    for (const method of METHODS) {
      touched = 0;
      const what = `${label}: ${argument} with ${style} ${String(method)}`;
      const liar = shadow(clean, method, garbage, style);
      expect(call(liar), what).toEqual(want);
      expect(touched, `${what}: a shadowing method ran`).toBe(0);
    }
  }
}

/** A call's result as numbers, read through its internal slots (the array may be a shadowed `out`). */
const result = (r: unknown) => Array.from(new Float64Array(r as Float32Array));

const engineKinds = [
  ...BACKENDS.map((b) => ({ name: b.name, threads: 1 })),
  { name: 'wasm-relaxed-simd' as const, threads: 2 },
];

describe.each(engineKinds)('$name, $threads thread(s)', ({ name, threads }) => {
  let e: AttentionEngine;
  const minFlops = splitPolicy.minFlops;
  beforeAll(async () => {
    e = await createAttention({ backend: name, threads });
    if (threads > 1) splitPolicy.minFlops = 0; // share even these tiny calls among the threads
  });
  afterAll(() => {
    splitPolicy.minFlops = minFlops;
    e?.dispose();
  });

  // headDim 40: an output of more than 256 floats, which the wasm engine copies out with `set`
  const o: AttentionOptions = { batch: 1, heads: 2, seqQ: 4, seqK: 6, headDim: 40 };
  const q = random(320, 1), k = random(480, 2), v = random(480, 3);

  test('attention q, k, v, out', () => {
    everyShadowing('attention', q, 'q', (x) => result(e.attention(x as Float32Array, k, v, o)));
    everyShadowing('attention', k, 'k', (x) => result(e.attention(q, x as Float32Array, v, o)));
    everyShadowing('attention', v, 'v', (x) => result(e.attention(q, k, x as Float32Array, o)));
    // a valid out whose length lies would be written through its real length: the result is the array itself
    everyShadowing('attention', new Float32Array(320), 'options.out', (x) => {
      const r = e.attention(q, k, v, { ...o, out: x as Float32Array });
      expect(r).toBe(x);
      return result(r);
    });
  });

  test('attention with RoPE and 16-bit q', () => {
    const rope = { ...o, rope: { base: 100, positionQ: 2 } };
    everyShadowing('RoPE', q, 'q', (x) => result(e.attention(x as Float32Array, k, v, rope)));
    everyShadowing('RoPE', k, 'k', (x) => result(e.attention(q, x as Float32Array, v, rope)));
    const bits = Uint16Array.from(q, (x) => numberToHalf(x));
    everyShadowing('16-bit', bits, 'q', (x) => result(e.attention(x as unknown as Float32Array, k, v, o)));
    everyShadowing('16-bit RoPE', bits, 'q', (x) => result(e.attention(x as unknown as Float32Array, k, v, rope)));
    everyShadowing('16-bit out', new Uint16Array(320), 'options.out', (x) => {
      const r = e.attention(q, k, v, { ...o, out: x as unknown as Float32Array });
      expect(r).toBe(x);
      return result(r);
    });
  });

  test('masks (additive and boolean), ALiBi slopes', () => {
    const mask = random(24, 4);
    const bool = Uint8Array.from(random(24, 5), (x) => (x > -0.5 ? 1 : 0));
    everyShadowing('mask', mask, 'options.mask', (x) => result(e.attention(q, k, v, { ...o, mask: x as Float32Array })));
    everyShadowing('bool mask', bool, 'options.mask', (x) => result(e.attention(q, k, v, { ...o, mask: x as Uint8Array })));
    everyShadowing('alibi', Float32Array.of(0.5, 0.25), 'options.alibiSlopes',
      (x) => result(e.attention(q, k, v, { ...o, alibiSlopes: x as Float32Array })));
  });

  test('an out sharing its buffer with q through lying views is still seen to alias', () => {
    const b2: AttentionOptions = { ...o, batch: 2 };
    const qq = random(640, 7), kk = random(960, 8), vv = random(960, 9);
    const want = result(e.attention(qq, kk, vv, b2));
    for (const style of STYLES) {
      for (const prop of ['buffer', 'byteOffset'] as const) {
        // [q batch 0 | q batch 1 = out batch 0 | out batch 1]: out rows of batch 0 land on q's batch 1
        const memory = new ArrayBuffer(960 * 4);
        const qv = new Float32Array(memory, 0, 640);
        qv.set(qq);
        const outReal = new Float32Array(memory, 320 * 4, 640);
        touched = 0;
        let out: Float32Array;
        if (style === 'subclass getter') {
          const Evil = class extends Float32Array {};
          Object.defineProperty(Evil.prototype, prop, { get() { touched++; return prop === 'buffer' ? new ArrayBuffer(8) : 4096; } });
          out = new Evil(memory, 320 * 4, 640);
        } else {
          out = outReal;
          Object.defineProperty(outReal, prop, style === 'own value'
            ? { value: prop === 'buffer' ? new ArrayBuffer(8) : 4096 }
            : { get() { touched++; return prop === 'buffer' ? new ArrayBuffer(8) : 4096; } });
        }
        expect(result(e.attention(qv, kk, vv, { ...b2, out })), `${style} ${prop}`).toEqual(want);
        expect(touched).toBe(0);
      }
    }
  });

  test('KV cache: append k and v, attend q and out', () => {
    const fresh = (): KVCache => {
      const c = e.createKVCache({ batch: 1, kvHeads: 2, headDim: 8, capacity: 32 });
      c.append(random(32, 11), random(32, 12)); // 2 tokens
      return c;
    };
    const kt = random(48, 13), vt = random(48, 14), qt = random(32, 15); // 3 tokens; q of 2 heads × 2 rows
    const attend = (c: KVCache) => result(c.attend(qt, { heads: 2, seqQ: 2, causal: 'bottom-right' }));
    // a k one element short is no whole number of tokens; a valid k is appended as it really is
    everyShadowing('append', kt, 'k', (x) => {
      const c = fresh();
      try {
        c.append(x as Float32Array, vt);
        return attend(c);
      } finally {
        c.dispose();
      }
    });
    everyShadowing('append', vt, 'v', (x) => {
      const c = fresh();
      try {
        c.append(kt, x as Float32Array);
        return attend(c);
      } finally {
        c.dispose();
      }
    });
    const c = fresh();
    try {
      everyShadowing('attend', qt, 'q', (x) => result(c.attend(x as Float32Array, { heads: 2, seqQ: 2, causal: 'bottom-right' })));
      everyShadowing('attend', new Float32Array(32), 'options.out',
        (x) => result(c.attend(qt, { heads: 2, seqQ: 2, causal: 'bottom-right', out: x as Float32Array })));
    } finally {
      c.dispose();
    }
    // a cache with RoPE rotates its own copies of k and q
    const r = e.createKVCache({ batch: 1, kvHeads: 2, headDim: 8, capacity: 32, rope: { base: 50 } });
    try {
      r.append(random(32, 11), random(32, 12));
      everyShadowing('RoPE attend', qt, 'q', (x) => result(r.attend(x as Float32Array, { heads: 2, seqQ: 2, causal: 'bottom-right' })));
    } finally {
      r.dispose();
    }
    everyShadowing('RoPE append', kt, 'k', (x) => {
      const cr = e.createKVCache({ batch: 1, kvHeads: 2, headDim: 8, capacity: 32, rope: { base: 50 } });
      try {
        cr.append(x as Float32Array, vt);
        return result(cr.attend(qt, { heads: 2, seqQ: 2, causal: 'bottom-right' }));
      } finally {
        cr.dispose();
      }
    });
  });

  test('linear attention q, k, v, out, decay, gates', () => {
    const lo: LinearAttentionOptions = { batch: 1, heads: 2, seqQ: 4, seqK: 6, headDim: 40, causal: 'bottom-right' };
    everyShadowing('linear', q, 'q', (x) => result(e.linearAttention(x as Float32Array, k, v, lo)));
    everyShadowing('linear', k, 'k', (x) => result(e.linearAttention(q, x as Float32Array, v, lo)));
    everyShadowing('linear', v, 'v', (x) => result(e.linearAttention(q, k, x as Float32Array, lo)));
    everyShadowing('linear', new Float32Array(320), 'options.out',
      (x) => result(e.linearAttention(q, k, v, { ...lo, out: x as Float32Array })));
    everyShadowing('linear', Float32Array.of(0.9, 0.5), 'options.decay',
      (x) => result(e.linearAttention(q, k, v, { ...lo, decay: x as Float32Array })));
    everyShadowing('linear', new Float32Array(12).fill(-0.1), 'options.gates',
      (x) => result(e.linearAttention(q, k, v, { ...lo, gates: x as Float32Array })));
  });

  test('tensors and states are recognised by brand: no Proxy trap runs, a look-alike is refused', () => {
    let traps = 0;
    const trap = <T extends object>(x: T): T => new Proxy(x, { getPrototypeOf: (t) => (traps++, Reflect.getPrototypeOf(t)) });
    const t = e.alloc(320);
    try {
      for (const [argument, call] of [
        ['q', (x: unknown) => e.attention(x as Float32Array, k, v, o)],
        ['k', (x: unknown) => e.attention(q, x as Float32Array, v, o)],
        ['options.out', (x: unknown) => e.attention(q, k, v, { ...o, out: x as Float32Array })],
        ['q', (x: unknown) => e.linearAttention(x as Float32Array, k, v, o)],
      ] as const) {
        traps = 0;
        expect(thrown(() => call(trap(q))), `Proxy ${argument}`).toMatchObject({ code: 'INVALID_TYPE', argument });
        expect(thrown(() => call(trap(t))), `Proxy of a tensor as ${argument}`).toMatchObject({ code: 'INVALID_TYPE', argument });
        const lookAlike = Object.create(Object.getPrototypeOf(t) as object) as unknown;
        expect(thrown(() => call(lookAlike)), `look-alike tensor as ${argument}`).toMatchObject({ code: 'INVALID_TYPE', argument });
        expect(traps, `${argument}: a getPrototypeOf trap ran`).toBe(0);
      }
      const state = e.createLinearState({ batch: 1, heads: 2, headDim: 40 });
      const lo: LinearAttentionOptions = { batch: 1, heads: 2, seqQ: 4, seqK: 6, headDim: 40, causal: true };
      traps = 0;
      expect(thrown(() => e.linearAttention(q, k, v, { ...lo, state: trap(state) }))).toMatchObject({ code: 'INVALID_TYPE', argument: 'options.state' });
      expect(thrown(() => e.linearAttention(q, k, v, { ...lo, state: Object.create(Object.getPrototypeOf(state) as object) })))
        .toMatchObject({ code: 'INVALID_TYPE', argument: 'options.state' });
      expect(traps).toBe(0);
      state.dispose();
    } finally {
      t.free();
    }
  });

  test('views of engine memory: the real offset and buffer decide where a view lies', () => {
    if (name === 'js') return; // no engine memory
    const a = e.alloc(320), b = e.alloc(320);
    try {
      a.array.set(q);
      b.array.set(random(320, 99));
      const want = result(e.attention(q, k, v, o));
      // a tensor's own offset and length cannot be redefined either
      expect(Object.isFrozen(a)).toBe(true);
      expect(() => Object.defineProperty(a, 'byteOffset', { value: b.array.byteOffset })).toThrow(TypeError);
      expect(result(e.attention(a, k, v, o))).toEqual(want);
      for (const style of STYLES) {
        touched = 0;
        // a view of a whose byteOffset claims to be b's: a is read
        const b0 = b.array.byteOffset;
        let view: Float32Array;
        if (style === 'subclass getter') {
          const Evil = class extends Float32Array {};
          Object.defineProperty(Evil.prototype, 'byteOffset', { get() { touched++; return b0; } });
          view = new Evil(a.array.buffer as ArrayBuffer, a.array.byteOffset, 320);
        } else {
          view = new Float32Array(a.array.buffer, a.array.byteOffset, 320);
          Object.defineProperty(view, 'byteOffset', style === 'own value' ? { value: b0 } : { get() { touched++; return b0; } });
        }
        expect(result(e.attention(view, k, v, o)), `${style} byteOffset`).toEqual(want);
        // a view of engine memory outside every live tensor whose buffer claims to be another: still refused
        const outside = new Float32Array(a.array.buffer, b.array.byteOffset + 320 * 4 + 16, 320);
        const hidden = style === 'subclass getter'
          ? (() => {
            const Evil = class extends Float32Array {};
            Object.defineProperty(Evil.prototype, 'buffer', { get() { touched++; return new ArrayBuffer(320 * 4); } });
            return new Evil(outside.buffer as ArrayBuffer, outside.byteOffset, 320);
          })()
          : Object.defineProperty(outside, 'buffer', style === 'own value'
            ? { value: new ArrayBuffer(320 * 4) } : { get() { touched++; return new ArrayBuffer(320 * 4); } });
        expect(thrown(() => e.attention(hidden, k, v, o)), `${style} buffer outside`).toMatchObject({ code: 'INVALID_TYPE', argument: 'q' });
        expect(touched).toBe(0);
      }
    } finally {
      a.free();
      b.free();
    }
  });
});

describe.each(engineKinds)('results with Symbol.species overridden: $name, $threads thread(s)', ({ name, threads }) => {
  // A result is a new Float32Array built by the constructor (no slice, subarray or species lookup), so a global
  // Float32Array[Symbol.species] never runs during a call and never decides the result's class.
  test('no species getter runs; results are plain Float32Arrays equal to a clean call', async () => {
    const e = await createAttention({ backend: name, threads });
    const o: AttentionOptions = { batch: 1, heads: 2, seqQ: 40, seqK: 33, headDim: 8 };
    const q = new Float32Array(2 * 40 * 8).map((_, i) => Math.sin(i)), k = new Float32Array(2 * 33 * 8).map((_, i) => Math.cos(i));
    const v = k.map((x) => x * 2);
    const [q1, k1, v1] = [q.subarray(0, 8), k.subarray(0, 8), v.subarray(0, 8)]; // (subarray itself asks for species)
    const o1 = { ...o, heads: 1, seqQ: 1, seqK: 1 };
    const want = Array.from(e.attention(q, k, v, o));
    const wantSmall = Array.from(e.attention(q1, k1, v1, o1));
    const out = new Float32Array(want.length);
    let touched = 0;
    const Evil = class extends Float32Array {};
    Object.defineProperty(Float32Array, Symbol.species, { configurable: true, get() { touched++; return Evil; } }); // shadows %TypedArray%'s
    try {
      const got = e.attention(q, k, v, o);
      const small = e.attention(q1, k1, v1, o1);
      e.attention(q, k, v, { ...o, out });
      expect(touched).toBe(0);
      expect(Object.getPrototypeOf(got)).toBe(Float32Array.prototype);
      expect(Array.from(got)).toEqual(want);
      expect(Array.from(small)).toEqual(wantSmall);
      expect(Array.from(out)).toEqual(want);
    } finally {
      delete (Float32Array as unknown as Record<symbol, unknown>)[Symbol.species];
      e.dispose();
    }
  });
});
