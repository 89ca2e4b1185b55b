// Bad input: a typed AttentionError naming the argument, thrown before any memory is touched, and the
// engine keeps giving correct answers afterwards.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AttentionError, attentionJs, createAttention } from '../src/index.js';
import type { AttentionEngine, AttentionErrorCode, AttentionOptions, BackendName } from '../src/index.js';
import { BACKEND_NAMES, allEngines, expectClose, random } from './helpers.js';
import { referenceAttention } from './runtimes/reference.mjs';

let engines: Map<BackendName, AttentionEngine>;
beforeAll(async () => {
  engines = await allEngines();
});
afterAll(() => engines.forEach((e) => e.dispose()));

const base = { batch: 2, heads: 4, seqQ: 5, seqK: 6, headDim: 8 };
const q = random(2 * 4 * 5 * 8, 1);
const k = random(2 * 4 * 6 * 8, 2);
const v = random(2 * 4 * 6 * 8, 3);

type Bad = [name: string, code: AttentionErrorCode, argument: string, args: [unknown, unknown, unknown, unknown]];
const opts = (extra: Record<string, unknown>) => ({ ...base, ...extra });
const badCases: Bad[] = [
  ['q too short', 'SHAPE_MISMATCH', 'q', [q.subarray(1), k, v, base]],
  ['k too long', 'SHAPE_MISMATCH', 'k', [q, new Float32Array(k.length + 1), v, base]],
  ['v of the wrong length', 'SHAPE_MISMATCH', 'v', [q, k, v.subarray(8), base]],
  ['q a Float64Array', 'INVALID_TYPE', 'q', [Float64Array.from(q), k, v, base]],
  ['k a plain array', 'INVALID_TYPE', 'k', [q, Array.from(k), v, base]],
  ['v null', 'INVALID_TYPE', 'v', [q, k, null, base]],
  ['options missing', 'INVALID_TYPE', 'options', [q, k, v, undefined]],
  ['batch 0', 'INVALID_DIMENSION', 'options.batch', [q, k, v, opts({ batch: 0 })]],
  ['heads 2.5', 'INVALID_DIMENSION', 'options.heads', [q, k, v, opts({ heads: 2.5 })]],
  ['seqQ NaN', 'INVALID_DIMENSION', 'options.seqQ', [q, k, v, opts({ seqQ: NaN })]],
  ['seqK a string', 'INVALID_DIMENSION', 'options.seqK', [q, k, v, opts({ seqK: '6' })]],
  ['headDim missing', 'INVALID_DIMENSION', 'options.headDim', [q, k, v, opts({ headDim: undefined })]],
  ['headDim −8', 'INVALID_DIMENSION', 'options.headDim', [q, k, v, opts({ headDim: -8 })]],
  ['headDimV Infinity', 'INVALID_DIMENSION', 'options.headDimV', [q, k, v, opts({ headDimV: Infinity })]],
  ['kvHeads 3 does not divide 4', 'SHAPE_MISMATCH', 'options.kvHeads', [q, k, v, opts({ kvHeads: 3 })]],
  ['kvHeads 0', 'INVALID_DIMENSION', 'options.kvHeads', [q, k, v, opts({ kvHeads: 0 })]],
  ['kvHeads 2 but k sized for 4', 'SHAPE_MISMATCH', 'k', [q, k, v, opts({ kvHeads: 2 })]],
  ['scale NaN', 'INVALID_OPTION', 'options.scale', [q, k, v, opts({ scale: NaN })]],
  ['scale Infinity', 'INVALID_OPTION', 'options.scale', [q, k, v, opts({ scale: Infinity })]],
  ['scale a string', 'INVALID_OPTION', 'options.scale', [q, k, v, opts({ scale: '0.1' })]],
  ['causal "upper"', 'INVALID_OPTION', 'options.causal', [q, k, v, opts({ causal: 'upper' })]],
  ['causal 1', 'INVALID_OPTION', 'options.causal', [q, k, v, opts({ causal: 1 })]],
  ['a typo in an option', 'INVALID_OPTION', 'options.casual', [q, k, v, opts({ casual: true })]],
  ['mask a Float64Array', 'INVALID_TYPE', 'options.mask', [q, k, v, opts({ mask: new Float64Array(30) })]],
  ['mask an Int32Array', 'INVALID_TYPE', 'options.mask', [q, k, v, opts({ mask: new Int32Array(30) })]],
  ['mask of the wrong length', 'SHAPE_MISMATCH', 'options.mask', [q, k, v, opts({ mask: new Uint8Array(29) })]],
  ['maskShape that does not broadcast', 'SHAPE_MISMATCH', 'options.maskShape', [q, k, v, opts({ mask: new Uint8Array(30), maskShape: [6, 5] })]],
  ['maskShape batch 3 vs 2', 'SHAPE_MISMATCH', 'options.maskShape', [q, k, v, opts({ mask: new Uint8Array(90), maskShape: [3, 1, 5, 6] })]],
  ['maskShape of 5 dims', 'INVALID_OPTION', 'options.maskShape', [q, k, v, opts({ mask: new Uint8Array(30), maskShape: [1, 1, 1, 5, 6] })]],
  ['maskShape with a 0', 'INVALID_DIMENSION', 'options.maskShape[0]', [q, k, v, opts({ mask: new Uint8Array(0), maskShape: [0, 6] })]],
  ['mask length right for shape, shape wrong', 'SHAPE_MISMATCH', 'options.mask', [q, k, v, opts({ mask: new Uint8Array(30), maskShape: [1, 6] })]],
  ['maskShape without mask', 'INVALID_OPTION', 'options.maskShape', [q, k, v, opts({ maskShape: [5, 6] })]],
  ['out too short', 'SHAPE_MISMATCH', 'options.out', [q, k, v, opts({ out: new Float32Array(10) })]],
  ['unknown activation', 'INVALID_OPTION', 'options.activation', [q, k, v, opts({ activation: 'gelu' })]],
  ['epsilon with softmax', 'INVALID_OPTION', 'options.epsilon', [q, k, v, opts({ epsilon: 1e-3 })]],
  ['bias with relu', 'INVALID_OPTION', 'options.bias', [q, k, v, opts({ activation: 'relu', bias: 1 })]],
  ['power with sigmoid', 'INVALID_OPTION', 'options.power', [q, k, v, opts({ activation: 'sigmoid', power: 2 })]],
  ['power 2.5', 'INVALID_OPTION', 'options.power', [q, k, v, opts({ activation: 'polynomial', power: 2.5 })]],
  ['power 0', 'INVALID_OPTION', 'options.power', [q, k, v, opts({ activation: 'polynomial', power: 0 })]],
  ['epsilon −1', 'INVALID_OPTION', 'options.epsilon', [q, k, v, opts({ activation: 'squared', epsilon: -1 })]],
  ['bias NaN', 'INVALID_OPTION', 'options.bias', [q, k, v, opts({ activation: 'sigmoid', bias: NaN })]],
  ['softcap 0', 'INVALID_OPTION', 'options.softcap', [q, k, v, opts({ softcap: 0 })]],
  ['softcap −3', 'INVALID_OPTION', 'options.softcap', [q, k, v, opts({ softcap: -3 })]],
  ['returnWeights "yes"', 'INVALID_OPTION', 'options.returnWeights', [q, k, v, opts({ returnWeights: 'yes' })]],
  ['returnWeights null', 'INVALID_OPTION', 'options.returnWeights', [q, k, v, opts({ returnWeights: null })]],
  ['activation null', 'INVALID_OPTION', 'options.activation', [q, k, v, opts({ activation: null })]],
  ['power null', 'INVALID_OPTION', 'options.power', [q, k, v, opts({ activation: 'polynomial', power: null })]],
  ['out a Float64Array', 'INVALID_TYPE', 'options.out', [q, k, v, opts({ out: new Float64Array(2 * 4 * 5 * 8) })]],
];

function expectAttentionError(fn: () => unknown, code: AttentionErrorCode, argument?: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(AttentionError);
  const error = caught as AttentionError;
  expect(error.code).toBe(code);
  if (argument !== undefined) {
    expect(error.argument).toBe(argument);
    expect(error.message).toContain(argument);
  }
}

describe.each(BACKEND_NAMES)('%s rejects bad input', (backend) => {
  test.each(badCases)('%s → %s on %s', (_, code, argument, args) => {
    const engine = engines.get(backend)!;
    const out = new Float32Array(2 * 4 * 5 * 8).fill(7);
    const call = () => engine.attention(...(args as Parameters<AttentionEngine['attention']>));
    expectAttentionError(call, code, argument);
    // The engine still answers correctly, and an `out` given to a good call after is fully written.
    engine.attention(q, k, v, { ...base, out });
    expectClose(out, referenceAttention(q, k, v, base), 'after the error');
  });

  test('a rejected call leaves a given out untouched', () => {
    const out = new Float32Array(2 * 4 * 5 * 8).fill(7);
    expectAttentionError(() => engines.get(backend)!.attention(q, k, v, { ...base, out, scale: NaN }), 'INVALID_OPTION');
    expect(out.every((x) => x === 7)).toBe(true);
  });
});

describe.each(BACKEND_NAMES)('%s rejects bad linearAttention input', (backend) => {
  test.each([
    ['a mask', 'INVALID_OPTION', 'options.mask', { mask: new Uint8Array(30) }],
    ['an activation', 'INVALID_OPTION', 'options.activation', { activation: 'softmax' }],
    ['epsilon −1', 'INVALID_OPTION', 'options.epsilon', { epsilon: -1 }],
    ['kvHeads 3', 'SHAPE_MISMATCH', 'options.kvHeads', { kvHeads: 3 }],
  ] as const)('%s → %s', (_, code, argument, extra) => {
    const engine = engines.get(backend)!;
    expectAttentionError(() => engine.linearAttention(q, k, v, { ...base, ...extra } as never), code, argument);
    expect(engine.linearAttention(q, k, v, base).length).toBe(2 * 4 * 5 * 8);
  });
});

describe('engine lifecycle and backend selection', () => {
  test.each(BACKEND_NAMES)('%s: dispose is idempotent and later calls throw DISPOSED', async (backend) => {
    const engine = await createAttention({ backend });
    engine.dispose();
    engine.dispose();
    expectAttentionError(() => engine.attention(q, k, v, base), 'DISPOSED');
    expectAttentionError(() => engine.linearAttention(q, k, v, base), 'DISPOSED');
  });

  test('auto picks relaxed SIMD where it validates (this suite runs with the flag)', async () => {
    const engine = await createAttention();
    expect(engine.backend).toBe('wasm-relaxed-simd');
    expect((await createAttention({ backend: 'wasm' })).backend).toBe('wasm-relaxed-simd');
  });

  test('unknown backend and unknown engine options are rejected', async () => {
    await expect(createAttention({ backend: 'gpu' as never })).rejects.toMatchObject({ code: 'INVALID_OPTION', argument: 'options.backend' });
    await expect(createAttention({ backend: null as never })).rejects.toMatchObject({ code: 'INVALID_OPTION', argument: 'options.backend' });
    await expect(createAttention({ thread: 2 } as never)).rejects.toMatchObject({ code: 'INVALID_OPTION', argument: 'options.thread' });
    await expect(createAttention({ maxMemoryBytes: -1 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });

  test('the synchronous JS entry point validates the same way', () => {
    expectAttentionError(() => attentionJs(q, k, v, { ...base, kvHeads: 3 }), 'SHAPE_MISMATCH', 'options.kvHeads');
    const ok: AttentionOptions = base;
    expectClose(attentionJs(q, k, v, ok), referenceAttention(q, k, v, base), 'attentionJs');
  });
});

describe('engine option messages show what was given', () => {
  // A string that looks like a number is shown quoted, so "got 2" cannot hide that '2' was a string.
  test.each([
    [{ threads: '2' }, 'options.threads', 'got "2"'],
    [{ backend: 'wasm2' }, 'options.backend', 'got "wasm2"'],
    [{ maxMemoryBytes: '65536' }, 'options.maxMemoryBytes', 'got "65536"'],
    [{ spinMs: '1' }, 'options.spinMs', 'got "1"'],
  ])('%o', async (options, argument, text) => {
    const error = await createAttention(options as never).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(AttentionError);
    expect(error).toMatchObject({ code: 'INVALID_OPTION', argument });
    expect((error as Error).message).toContain(text);
  });
});
