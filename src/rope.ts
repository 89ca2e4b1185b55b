// Rotary position embedding: the angle tables (float64 angles, rounded once to float32 cos/sin) and the rotation
// itself for the JS backend. The wasm kernels rotate with the same float32 tables (assembly/rope.ts).
import type { RopePlan } from './plan-model.js';

/** Positions between exact reseeds of the angle recurrence: drift stays below 1e-13 rad. */
const RESEED = 64;

/**
 * cos and sin of p·f_t for positions p = first … first + n − 1 and t < dims/2, as float32 [n][dims/2] each (in one
 * array: cos first). Angles are float64: the recurrence (cos, sin)(p + 1) = rotate((cos, sin)(p), f_t) is exact to
 * ~1e-16 per step and is restarted from Math.cos/Math.sin every 64 positions, so positions of 10^5 and beyond
 * keep full float32 accuracy (a float32 angle p·f_t would lose ~1e-3 rad there).
 */
export function ropeTable(rope: RopePlan, first: number, n: number): Float32Array {
  const half = rope.dims / 2;
  const table = new Float32Array(2 * n * half);
  const sinAt = n * half;
  for (let t = 0; t < half; t++) {
    const f = rope.frequencies[t]!;
    const cf = Math.cos(f), sf = Math.sin(f);
    let c = 0, s = 0;
    for (let i = 0; i < n; i++) {
      if (i % RESEED === 0) {
        const angle = (first + i) * f;
        c = Math.cos(angle);
        s = Math.sin(angle);
      } else {
        const c1 = c * cf - s * sf;
        s = s * cf + c * sf;
        c = c1;
      }
      table[i * half + t] = c;
      table[sinAt + i * half + t] = s;
    }
  }
  return table;
}

/**
 * Rotates, in place, rows of x: row r (of `rows`, `stride` floats apart from `at`) is at table row r. Pairs are
 * (t, t + dims/2) or, interleaved, (2t, 2t + 1); the channels past `dims` are left alone.
 * (x, y) → (x·cos − y·sin, x·sin + y·cos), in float64 rounded to float32.
 */
export function rotateRows(
  x: Float32Array, at: number, stride: number, rows: number, rope: RopePlan, table: Float32Array, tableRow0: number,
): void {
  const half = rope.dims / 2;
  const sinAt = table.length / 2; // ropeTable's own array
  for (let r = 0; r < rows; r++) {
    const row = at + r * stride;
    const tr = (tableRow0 + r) * half;
    for (let t = 0; t < half; t++) {
      const i0 = row + (rope.interleaved ? 2 * t : t);
      const i1 = row + (rope.interleaved ? 2 * t + 1 : t + half);
      const c = table[tr + t]!, s = table[sinAt + tr + t]!;
      const a = x[i0]!, b = x[i1]!;
      x[i0] = a * c - b * s;
      x[i1] = a * s + b * c;
    }
  }
}

/**
 * A rotated copy of a [batch, heads, seq, dim] tensor ([batch, seq, heads, dim] when `bshd`), row i of every
 * (batch, head) at position first + i, or first[b] + i for batch row b. x (possibly a caller's) is copied through
 * its internal slots: Float32Array.from would run an own or inherited iterator.
 */
export function rotated(
  x: Float32Array, batch: number, heads: number, seq: number, dim: number, bshd: boolean, rope: RopePlan,
  first: number | ArrayLike<number>,
): Float32Array {
  const y = new Float32Array(x);
  const shared = typeof first === 'number' ? ropeTable(rope, first, seq) : null;
  for (let b = 0; b < batch; b++) {
    const table = shared ?? ropeTable(rope, (first as ArrayLike<number>)[b]!, seq);
    for (let h = 0; h < heads; h++) {
      const at = bshd ? (b * seq * heads + h) * dim : (b * heads + h) * seq * dim;
      rotateRows(y, at, bshd ? heads * dim : dim, seq, rope, table, 0);
    }
  }
  return y;
}
