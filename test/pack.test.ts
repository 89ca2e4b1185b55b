// The operand packing routines (assembly/pack.ts) one by one, through the test-only build: the exact layout,
// bit for bit (random bit patterns, NaNs and subnormals included: packing only moves floats), zero lanes
// where the code promises them, and nothing written outside the destination. One table drives the cases.
import { describe, expect, test } from 'vitest';
import { random } from './helpers.js';
import { Arena, instantiateTesting } from './testing-wasm.js';
import type { TestingExports } from './testing-wasm.js';

/** Column counts around the 4-lane transposes and the 8-wide panels. */
const EDGES = [1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 63, 64, 65, 128, 256];
/** Floats between x32_packq_4's source rows past the minimal stride (left as sentinel). */
const PAD = 3;
/** The destination element that must be +0. */
const ZERO = -1;

const ceil8 = (n: number) => (n + 7) & ~7;

/** One call: the source floats to fill, and for each destination float the source float it must equal, or ZERO. */
interface Layout {
  sources: number[];
  dst: number;
  expected: number[];
  call(k: TestingExports): void;
}

interface PackCase {
  name: string;
  /** Shapes as [rows, cols] (S and D, or the query's D alone as [4, D]). */
  shapes: (readonly [number, number])[];
  layout(m: Arena, rows: number, cols: number): Layout;
}

const bytes = (floats: number) => floats * 4;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const grid = (rows: number[], cols: number[]) => rows.flatMap((r) => cols.map((c) => [r, c] as const));

const PACKS: PackCase[] = [
  {
    // k (S,D), rows `stride` apart (sentinel padding between them, as in a (B,S,KVH,D) tensor) -> panels
    // [ceil8(S)/8][D][8]; keys past S are 0. S = 24 and 33 take the 4×4-transpose path when 4 | D.
    name: 'x32_packk_8', shapes: grid([0, 1, 7, 8, 9, 24, 33], EDGES),
    layout(m, S, D) {
      const stride = D + PAD;
      const k = m.alloc(S * stride);
      const dst = m.alloc(ceil8(S) * D);
      const expected = range(ceil8(S) * D).map((i) => {
        const [p, d, jj] = [Math.floor(i / (8 * D)), Math.floor(i / 8) % D, i % 8];
        const j = p * 8 + jj;
        return j < S ? k + j * stride + d : ZERO;
      });
      const sources = range(S * D).map((i) => k + Math.floor(i / D) * stride + (i % D));
      return { sources, dst, expected, call: (x) => x.x32_packk_8(bytes(k), bytes(stride), S, D, bytes(dst)) };
    },
  },
  {
    // v (S,Dv), rows `stride` apart -> (S, ceil8(Dv)) with zero columns.
    name: 'x32_padv_8', shapes: grid([1, 3], EDGES),
    layout(m, S, Dv) {
      const w = ceil8(Dv);
      const stride = Dv + PAD;
      const v = m.alloc(S * stride);
      const dst = m.alloc(S * w);
      const expected = range(S * w).map((i) => (i % w < Dv ? v + Math.floor(i / w) * stride + (i % w) : ZERO));
      const sources = range(S * Dv).map((i) => v + Math.floor(i / Dv) * stride + (i % Dv));
      return { sources, dst, expected, call: (x) => x.x32_padv_8(bytes(v), bytes(stride), S, Dv, bytes(dst)) };
    },
  },
  {
    // v (S,Dv), rows `stride` apart -> panels [ceil8(Dv)/8][S][8]; columns past Dv are 0.
    name: 'x32_packv_8', shapes: grid([1, 3, 17], EDGES),
    layout(m, S, Dv) {
      const w = ceil8(Dv);
      const stride = Dv + PAD;
      const v = m.alloc(S * stride);
      const dst = m.alloc(S * w);
      const expected = range(S * w).map((i) => {
        const [panel, j, jj] = [Math.floor(i / (8 * S)), Math.floor(i / 8) % S, i % 8];
        const c = panel * 8 + jj;
        return c < Dv ? v + j * stride + c : ZERO;
      });
      const sources = range(S * Dv).map((i) => v + Math.floor(i / Dv) * stride + (i % Dv));
      return { sources, dst, expected, call: (x) => x.x32_packv_8(bytes(v), bytes(stride), S, Dv, bytes(dst)) };
    },
  },
  {
    // Four query rows, rowBytes apart -> [D][4].
    name: 'x32_packq_4', shapes: grid([4], [0, ...EDGES]),
    layout(m, _, D) {
      const stride = D + PAD;
      const q = m.alloc(4 * stride);
      const dst = m.alloc(4 * D);
      const expected = range(4 * D).map((i) => q + (i % 4) * stride + Math.floor(i / 4));
      return {
        sources: range(4 * D).map((i) => q + (i % 4) * stride + Math.floor(i / 4)), dst, expected,
        call: (x) => x.x32_packq_4(bytes(q), bytes(stride), D, bytes(dst)),
      };
    },
  },
];

const CASES = PACKS.flatMap((pack) => pack.shapes.map(([r, c]) => [pack.name, r, c, pack] as const));

describe.each(['wasm-simd', 'wasm-relaxed-simd'] as const)('%s pack routines', (variant) => {
  test.each(CASES)('%s %i×%i: exact layout, zero padding, nothing written outside', async (_, rows, cols, pack) => {
    const m = new Arena(await instantiateTesting(variant));
    const { sources, dst, expected, call } = pack.layout(m, rows, cols);
    const bits = random(sources.length, rows * 1000 + cols);
    const u32 = m.u32;
    sources.forEach((at, i) => (u32[at] = Math.floor((bits[i]! + 1) * 2 ** 31)));
    m.snapshot();
    call(m.kernels);
    const after = m.u32;
    const want = expected.map((src) => (src === ZERO ? 0 : u32[src]!));
    expect(Array.from(after.subarray(dst, dst + expected.length))).toEqual(want);
    expect(m.changedOutside(new Set(expected.map((_, i) => dst + i))), 'floats written outside the destination').toEqual([]);
  });
});
