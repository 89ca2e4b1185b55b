// The threads' work split (src/wasm/work.ts): one contiguous range of items per thread, claimed from its own
// counter first, then from the others'. Every item must run exactly once however the threads interleave.
import { describe, expect, it } from 'vitest';
import { ITEMS, createControl, rangeOf, runItems } from '../src/wasm/work.js';
import type { KernelExports } from '../src/wasm/loader.js';

describe('work ranges', () => {
  it('partition the items into contiguous ranges differing by at most one', () => {
    for (const threads of [1, 2, 3, 4, 7, 16]) {
      for (const items of [0, 1, 2, 3, 5, 8, 96, 97, 1001]) {
        let next = 0;
        const sizes: number[] = [];
        for (let t = 0; t < threads; t++) {
          const [first, end] = rangeOf(t, items, threads);
          expect(first).toBe(next);
          expect(end).toBeGreaterThanOrEqual(first);
          sizes.push(end - first);
          next = end;
        }
        expect(next).toBe(items);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }
    }
  });

  // Threads simulated on one thread: thread `order[0]` starts, and after each of its items the next thread in
  // `order` may run a few items of its own (nested runItems with a budget), so claims interleave in every way a
  // real schedule could order them.
  function schedule(threads: number, items: number, order: number[], budget: number): number[] {
    const control = createControl(0, threads);
    control.words[ITEMS] = items;
    const ran: number[] = [];
    const seen = new Set<number>();
    const kxOf = (depth: number): KernelExports => {
      let left = budget;
      return {
        attention(item: number) {
          ran.push(item);
          if (depth + 1 < order.length && left-- > 0 && !seen.has(depth)) {
            seen.add(depth); // each nested thread starts once, mid-way through its parent's items
            runItems(kxOf(depth + 1), control, order[depth + 1]!);
          }
        },
      } as unknown as KernelExports;
    };
    runItems(kxOf(0), control, order[0]!);
    return ran;
  }

  it('run every item exactly once whatever the interleaving', () => {
    for (const [threads, items] of [[2, 96], [2, 7], [3, 10], [4, 3], [4, 64], [8, 17]] as const) {
      for (let first = 0; first < threads; first++) {
        const order = Array.from({ length: threads }, (_, i) => (first + i) % threads);
        for (const budget of [0, 1, 3]) {
          const ran = schedule(threads, items, order, budget).sort((a, b) => a - b);
          expect(ran).toEqual(Array.from({ length: items }, (_, i) => i));
        }
      }
    }
  });

  it('start each thread in its own range', () => {
    const control = createControl(0, 2);
    control.words[ITEMS] = 10;
    const firstOf: number[] = [];
    const kx = (t: number) => ({ attention: (item: number) => { if (firstOf[t] === undefined) firstOf[t] = item; } }) as unknown as KernelExports;
    runItems(kx(1), control, 1); // thread 1 alone: its range [5, 10), then thread 0's
    expect(firstOf[1]).toBe(5);
  });
});
