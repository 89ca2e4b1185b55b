// Option getters run while a call is planned, after its tensors were validated: one that detaches, grows or
// shrinks an argument's buffer, or frees a tensor, must get a typed AttentionError — never a raw TypeError, an
// answer made of the previous call's memory, or rows read from the wrong offsets (a threaded call copies its
// inputs by unit sizes taken from the arrays) — and the engine must answer the next call correctly.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
// The built package: threaded engines load dist/wasm/worker-node.js.
import { AttentionError, createAttention } from '../dist/index.js';
import type { AttentionEngine, AttentionOptions } from '../dist/index.js';
import { splitPolicy } from '../dist/wasm/pool.js';
import { maxAbsError, random } from './helpers.js';

const shape = { batch: 1, heads: 4, seqQ: 70, seqK: 70, headDim: 16 };
const n = 4 * 70 * 16;
const engines = new Map<string, AttentionEngine>();
const defaultMinFlops = splitPolicy.minFlops;

beforeAll(async () => {
  splitPolicy.minFlops = 0; // the threaded engine shares (and stages) every call
  for (const backend of ['js', 'wasm-simd', 'wasm-relaxed-simd'] as const) engines.set(backend, await createAttention({ backend }));
  engines.set('wasm-relaxed-simd, 2 threads', await createAttention({ backend: 'wasm-relaxed-simd', threads: 2 }));
});
afterAll(() => {
  engines.forEach((e) => e.dispose());
  splitPolicy.minFlops = defaultMinFlops;
});

/** A `window` whose first element's getter runs `act` during planning (and admits every key). */
function windowRunning(act: () => void): [number, number] {
  const w: unknown[] = [];
  Object.defineProperty(w, 0, { enumerable: true, get() { act(); return 1000; } });
  w[1] = 1000;
  return w as [number, number];
}
const detach = (x: ArrayBufferView) => structuredClone(x.buffer, { transfer: [x.buffer as ArrayBuffer] });
/** A length-tracking Float32Array with `values`, over a resizable buffer that may grow to twice its size. */
function tracking(values: Float32Array): { array: Float32Array; buffer: ArrayBuffer } {
  const buffer = new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer)(values.length * 4, { maxByteLength: values.length * 8 });
  const array = new Float32Array(buffer);
  array.set(values);
  return { array, buffer };
}
const resize = (b: ArrayBuffer, bytes: number) => (b as unknown as { resize(n: number): void }).resize(bytes);

function expectRefused(call: () => unknown, code: string, argument: string): void {
  let caught: unknown;
  try {
    call();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'the call returned').toBeInstanceOf(AttentionError);
  expect((caught as AttentionError).code).toBe(code);
  expect((caught as AttentionError).argument).toBe(argument);
}

describe.each(['js', 'wasm-simd', 'wasm-relaxed-simd', 'wasm-relaxed-simd, 2 threads'])('%s', (name) => {
  const q = random(n, 1), k = random(n, 2), v = random(n, 3);
  const engine = () => engines.get(name)!;
  const want = () => engines.get('js')!.attention(q, k, v, shape);
  /** The engine still answers correctly (a second, unrelated call first fills the arena with other data). */
  function stillWorks(): void {
    engine().attention(random(n, 9), random(n, 8), random(n, 7), shape);
    expect(maxAbsError(engine().attention(q, k, v, shape), want())).toBeLessThan(1e-5);
  }

  test.each(['q', 'k', 'v'] as const)('%s detached', (which) => {
    const args = { q: q.slice(), k: k.slice(), v: v.slice() };
    engine().attention(args.q, args.k, args.v, shape); // the arena now holds these inputs
    expectRefused(() => engine().attention(args.q, args.k, args.v, { ...shape, window: windowRunning(() => detach(args[which])) } as AttentionOptions), 'SHAPE_MISMATCH', which);
    stillWorks();
  });

  test('out and mask detached', () => {
    const out = new Float32Array(n);
    expectRefused(() => engine().attention(q, k, v, { ...shape, out, window: windowRunning(() => detach(out)) } as AttentionOptions), 'SHAPE_MISMATCH', 'options.out');
    const mask = new Uint8Array(70 * 70).fill(1);
    expectRefused(() => engine().attention(q, k, v, { ...shape, mask, window: windowRunning(() => detach(mask)) } as AttentionOptions), 'SHAPE_MISMATCH', 'options.mask');
    stillWorks();
  });

  test('q grown and shrunk under a length-tracking view', () => {
    for (const bytes of [n * 8, n * 2]) {
      const t = tracking(q);
      expectRefused(() => engine().attention(t.array, k, v, { ...shape, window: windowRunning(() => resize(t.buffer, bytes)) } as AttentionOptions), 'SHAPE_MISMATCH', 'q');
    }
    stillWorks();
  });

  test('a tensor freed', () => {
    if (name === 'js') return; // JS tensors are plain arrays: nothing to free under the call
    const t = engine().alloc(n);
    t.array.set(q);
    expectRefused(() => engine().attention(t, k, v, { ...shape, window: windowRunning(() => t.free()) } as AttentionOptions), 'DISPOSED', 'q');
    stillWorks();
  });

  test('a KV cache attend whose q is detached', () => {
    const cache = engine().createKVCache({ batch: 1, kvHeads: 4, headDim: 16, capacity: 128 });
    cache.append(k, v);
    const q1 = q.slice();
    expectRefused(() => cache.attend(q1, { heads: 4, seqQ: 70, window: windowRunning(() => detach(q1)) } as never), 'SHAPE_MISMATCH', 'q');
    expect(cache.attend(q, { heads: 4, seqQ: 70 }).length).toBe(n);
    cache.dispose();
    stillWorks();
  });
});
