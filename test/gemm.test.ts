// The gemm micro-kernels (assembly/gemm.ts) one by one, through the test-only build (test/testing-wasm.ts),
// against a float64 evaluation of what each kernel's comment says it computes. One table drives the tests:
// each kernel lays its operands out in wasm memory (strides past the minimal, padding and guards holding a
// NaN sentinel) and says which product it computes.
import { describe, expect, test } from 'vitest';
import { random } from './helpers.js';
import { Arena, instantiateTesting } from './testing-wasm.js';
import type { TestingExports } from './testing-wasm.js';

/** Reduction lengths around the 4-lane vector, the 8-key panel and the 32-wide tile. */
const EDGES = [1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 63, 64, 65, 128, 256];
/** Floats past the minimal row length in every strided operand (left as sentinel). */
const PAD = 3;
/** Floats between f32_pv_4x8b's weight rows: gemm.ts BLOCK_STRIDE (checked against the binary below). */
const BLOCK = 128;

/** An operand in wasm memory: element (i, j) is the float at index at(i, j). */
interface Operand {
  rows: number;
  cols: number;
  at(i: number, j: number): number;
}

function strided(base: number, rows: number, cols: number, rowStride: number, colStride = 1): Operand {
  return { rows, cols, at: (i, j) => base + i * rowStride + j * colStride };
}

/** One call: out (M,N) = a (M,K) · b (K,N), or for pv out = acc (M,N) rescaled by corr (M,1) plus that product. */
interface Tile {
  a: Operand;
  b: Operand;
  out: Operand;
  corr?: Operand;
  call(k: TestingExports): void;
}

/** Inputs read back from memory: the f32 values, exactly, as float64. */
interface Values {
  a: number[][];
  b: number[][];
  acc: number[][];
  corr: number[];
}

/** want: the float64 result; mag: Σ|term| per element; terms: how many terms each element's f32 sum chains. */
interface Expected {
  want: number[][];
  mag: number[][];
  terms: number;
}

function product({ a, b }: Values, init: (i: number, j: number) => number): Expected {
  const want = a.map((row, i) => b[0]!.map((_, j) => init(i, j) + row.reduce((s, x, k) => s + x * b[k]![j]!, 0)));
  const mag = a.map((row, i) => b[0]!.map((_, j) => Math.abs(init(i, j)) + row.reduce((s, x, k) => s + Math.abs(x * b[k]![j]!), 0)));
  return { want, mag, terms: b.length };
}

/** qk: s = q · kᵀ, D terms. */
const qk = (v: Values): Expected => product(v, () => 0);
/** pv: acc·corr + p · v; the rescaled accumulator is one more term. */
const pv = (v: Values): Expected => {
  const e = product(v, (i, j) => v.acc[i]![j]! * v.corr[i]!);
  return { ...e, terms: e.terms + 1 };
};

interface KernelCase {
  name: string;
  /** The kernel's name for the reduction length (D for qk, J for pv) and the values it admits. */
  dim: 'D' | 'J';
  sizes: readonly number[];
  reference: (v: Values) => Expected;
  tile(m: Arena, n: number): Tile;
}

const bytes = (floats: number) => floats * 4;

/** A key panel [D][8] as the qk kernels read it: b (D,8). */
const panel = (m: Arena, D: number) => strided(m.alloc(8 * D), D, 8, 8);

const KERNELS: KernelCase[] = [
  {
    name: 'f32_qk_4x8p', dim: 'D', sizes: EDGES, reference: qk,
    tile(m, D) {
      const q = m.alloc(4 * D); // packed [D][4]
      const b = panel(m, D);
      const sStride = 8 + PAD;
      const s = m.alloc(4 * sStride);
      return {
        a: strided(q, 4, D, 1, 4), b, out: strided(s, 4, 8, sStride),
        call: (k) => k.f32_qk_4x8p(bytes(q), bytes(b.at(0, 0)), D, bytes(s), bytes(sStride)),
      };
    },
  },
  {
    name: 'f32_qk_1x8', dim: 'D', sizes: EDGES, reference: qk,
    tile(m, D) {
      const q = m.alloc(D);
      const b = panel(m, D);
      const s = m.alloc(8);
      return {
        a: strided(q, 1, D, D), b, out: strided(s, 1, 8, 8),
        call: (k) => k.f32_qk_1x8(bytes(q), bytes(b.at(0, 0)), D, bytes(s)),
      };
    },
  },
  {
    name: 'f32_qk_1x32', dim: 'D', sizes: EDGES, reference: qk,
    tile(m, D) {
      const q = m.alloc(D);
      const panelFloats = 8 * D + PAD; // 4 panels [D][8], PAD floats apart
      const kp = m.alloc(4 * panelFloats);
      const s = m.alloc(32);
      return {
        a: strided(q, 1, D, D),
        b: { rows: D, cols: 32, at: (d, n) => kp + (n >> 3) * panelFloats + d * 8 + (n & 7) },
        out: strided(s, 1, 32, 32),
        call: (k) => k.f32_qk_1x32(bytes(q), bytes(kp), bytes(panelFloats), D, bytes(s)),
      };
    },
  },
  {
    name: 'f32_pv_4x8', dim: 'J', sizes: EDGES, reference: pv,
    tile(m, J) {
      const [pStride, vStride, accStride] = [J + PAD, 8 + PAD, 8 + PAD];
      const [p, v, acc, corr] = [m.alloc(4 * pStride), m.alloc(J * vStride), m.alloc(4 * accStride), m.alloc(4)];
      return {
        a: strided(p, 4, J, pStride), b: strided(v, J, 8, vStride), out: strided(acc, 4, 8, accStride), corr: strided(corr, 4, 1, 1),
        call: (k) => k.f32_pv_4x8(bytes(p), bytes(pStride), bytes(v), bytes(vStride), J, bytes(acc), bytes(accStride), bytes(corr)),
      };
    },
  },
  {
    name: 'f32_pv_4x8b', dim: 'J', sizes: EDGES.filter((J) => J <= BLOCK), reference: pv,
    tile(m, J) {
      const [vStride, accStride] = [8 + PAD, 8 + PAD];
      const [p, v, acc, corr] = [m.alloc(4 * BLOCK), m.alloc(J * vStride), m.alloc(4 * accStride), m.alloc(4)];
      return {
        a: strided(p, 4, J, BLOCK), b: strided(v, J, 8, vStride), out: strided(acc, 4, 8, accStride), corr: strided(corr, 4, 1, 1),
        call: (k) => k.f32_pv_4x8b(bytes(p), bytes(v), bytes(vStride), J, bytes(acc), bytes(accStride), bytes(corr)),
      };
    },
  },
  ...([8, 32] as const).map((N): KernelCase => ({
    name: `f32_pv_1x${N}`, dim: 'J', sizes: EDGES, reference: pv,
    tile(m, J) {
      const vStride = N + PAD;
      const [p, v, acc, corr] = [m.alloc(J), m.alloc(J * vStride), m.alloc(N), m.alloc(1)];
      return {
        a: strided(p, 1, J, J), b: strided(v, J, N, vStride), out: strided(acc, 1, N, N), corr: strided(corr, 1, 1, 1),
        call: (k) => k[`f32_pv_1x${N}`](bytes(p), bytes(v), bytes(vStride), J, bytes(acc), bytes(corr)),
      };
    },
  })),
];

/** Unit roundoff of f32 and f64, and Higham's γ_n = n·u / (1 − n·u): |fl(Σ xᵢyᵢ) − Σ xᵢyᵢ| ≤ γ_n Σ|xᵢyᵢ| for n terms in any order, with or without FMA. */
const gamma = (n: number, u: number) => (n * u) / (1 - n * u);

function fill(m: Arena, op: Operand, values: Float32Array): void {
  const f32 = m.f32;
  for (let i = 0; i < op.rows; i++) for (let j = 0; j < op.cols; j++) f32[op.at(i, j)] = values[i * op.cols + j]!;
}

function read(m: Arena, op: Operand): number[][] {
  const f32 = m.f32;
  return Array.from({ length: op.rows }, (_, i) => Array.from({ length: op.cols }, (_, j) => f32[op.at(i, j)]!));
}

/**
 * Runs `kernel` once at reduction length n on random inputs (corr for row i: 0, 1 or a random value in (0, 1],
 * rotating with `trial`) and returns the worst |error| / bound over its tile and the indices it wrote outside it.
 */
function run(kernels: TestingExports, kernel: KernelCase, n: number, trial: number): { worst: number; stray: number[] } {
  const m = new Arena(kernels);
  const t = kernel.tile(m, n);
  const seed = n * 1000 + trial * 10 + KERNELS.indexOf(kernel);
  fill(m, t.a, random(t.a.rows * t.a.cols, seed));
  fill(m, t.b, random(t.b.rows * t.b.cols, seed + 1));
  if (t.corr) {
    const r = random(t.corr.rows, seed + 2);
    fill(m, t.out, random(t.out.rows * t.out.cols, seed + 3));
    fill(m, t.corr, Float32Array.from(r, (x, i) => [0, 1, Math.abs(x) || 1][(i + trial) % 3]!));
  }
  const values: Values = {
    a: read(m, t.a), b: read(m, t.b),
    acc: t.corr ? read(m, t.out) : [], corr: t.corr ? read(m, t.corr).map((r) => r[0]!) : [],
  };
  const { want, mag, terms } = kernel.reference(values);
  m.snapshot();
  t.call(kernels);
  const outputs = new Set<number>();
  let worst = 0;
  const got = read(m, t.out);
  for (let i = 0; i < t.out.rows; i++) {
    for (let j = 0; j < t.out.cols; j++) {
      outputs.add(t.out.at(i, j));
      const bound = (gamma(terms, 2 ** -24) + gamma(terms, 2 ** -53)) * mag[i]![j]!;
      const err = Math.abs(got[i]![j]! - want[i]![j]!);
      // NaN (a sentinel read) counts as unbounded; an exact result as 0 even where the bound is 0.
      worst = Math.max(worst, Number.isNaN(err) ? Infinity : err === 0 ? 0 : err / bound);
    }
  }
  return { worst, stray: m.changedOutside(outputs) };
}

const CASES = KERNELS.flatMap((kernel) => kernel.sizes.map((n) => [kernel.name, kernel.dim, n, kernel] as const));

describe.each(['wasm-simd', 'wasm-relaxed-simd'] as const)('%s gemm micro-kernels', (variant) => {
  test('BLOCK_STRIDE is the weight-row stride the f32_pv_4x8b cases use', async () => {
    expect((await instantiateTesting(variant)).BLOCK_STRIDE.value).toBe(BLOCK * 4);
  });

  test.each(CASES)('%s %s=%i: float64 reference within γ(terms)·Σ|terms|, nothing written outside the tile', async (_, __, n, kernel) => {
    const kernels = await instantiateTesting(variant);
    for (let trial = 0; trial < (kernel.reference === pv ? 3 : 1); trial++) {
      const { worst, stray } = run(kernels, kernel, n, trial);
      expect(worst, `trial ${trial}: worst |error| / bound`).toBeLessThanOrEqual(1);
      expect(stray, `trial ${trial}: floats written outside the tile`).toEqual([]);
    }
  });
});
