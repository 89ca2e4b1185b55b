// How idle threads wait (createAttention({ spinMs })): workers spin that long for the next call, then block in
// Atomics.wait. Checked on the pool itself, with calls of zero work items (the full wake / finish protocol, no
// kernel), by counting the workers blocked in Atomics.wait; plus the option's validation on createAttention.
import { describe, expect, test } from 'vitest';
import { AttentionError, createAttention } from '../dist/index.js';
import { compiledThreadedModule } from '../dist/wasm/loader.js';
import { createPool } from '../dist/wasm/pool.js';
import type { KernelExports } from '../dist/wasm/loader.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function pool(spinMs?: number) {
  const module = await compiledThreadedModule('wasm-simd');
  if (module === null) throw new Error('the threaded wasm-simd build must compile here');
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
  return createPool(module, memory, 3, spinMs);
}

/** Polls until `f()` holds or 10 s pass; returns whether it held. */
async function eventually(f: () => boolean): Promise<boolean> {
  for (const until = Date.now() + 10_000; Date.now() < until; await sleep(5)) if (f()) return true;
  return f();
}

const noKernels = {} as KernelExports; // zero work items: nothing is called

describe('idle threads', () => {
  test('spinMs 0: both workers block as soon as a call ends, and wake for the next one', async () => {
    const p = await pool(0);
    try {
      for (let call = 0; call < 20; call++) {
        p.run(noKernels, 0, 0, 0, 0);
        expect(await eventually(() => p.sleeping() === 2)).toBe(true);
      }
    } finally {
      p.stop();
    }
  });

  test('spinMs 1000: 50 ms after a call the workers still spin (none blocked); stop() ends them while spinning', async () => {
    const p = await pool(1000);
    try {
      expect(await eventually(() => p.sleeping() === 2)).toBe(true); // before any call they block after 1 s
      p.run(noKernels, 0, 0, 0, 0);
      await sleep(50);
      expect(p.sleeping()).toBe(0);
    } finally {
      p.stop();
    }
  });

  test('the default (0.5 ms) ends in Atomics.wait too: an idle engine sleeps', async () => {
    const p = await pool();
    try {
      p.run(noKernels, 0, 0, 0, 0);
      expect(await eventually(() => p.sleeping() === 2)).toBe(true);
    } finally {
      p.stop();
    }
  });
});

describe('createAttention({ spinMs })', () => {
  test('a threaded engine with spinMs 0 computes as usual', async () => {
    const engine = await createAttention({ backend: 'wasm-simd', threads: 2, spinMs: 0 });
    const single = await createAttention({ backend: 'wasm-simd' });
    try {
      const o = { batch: 1, heads: 4, seqQ: 130, seqK: 130, headDim: 16 };
      const q = Float32Array.from({ length: 4 * 130 * 16 }, (_, i) => Math.sin(i));
      expect(engine.attention(q, q, q, o)).toEqual(single.attention(q, q, q, o));
    } finally {
      engine.dispose();
      single.dispose();
    }
  });

  test.each([-1, -0.001, 1000.5, NaN, Infinity, '1', null, 1n])('spinMs %s is INVALID_OPTION', async (spinMs) => {
    await expect(createAttention({ threads: 2, spinMs: spinMs as number })).rejects.toMatchObject({
      name: 'AttentionError', code: 'INVALID_OPTION', argument: 'options.spinMs',
    });
  });

  test('engine options are read like call options: inherited ones count, an inherited unknown name is refused', async () => {
    const engine = await createAttention(Object.create({ backend: 'wasm-simd' }) as object);
    expect(engine.backend).toBe('wasm-simd');
    engine.dispose();
    await expect(createAttention(Object.create({ thread: 2 }) as object)).rejects.toMatchObject({ code: 'INVALID_OPTION', argument: 'options.thread' });
    await expect(createAttention([] as object)).rejects.toBeInstanceOf(AttentionError);
  });
});
