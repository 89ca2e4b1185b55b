// Operand packing, done once per (batch, kv head) and shared by every query head that reads it (GQA/MQA).

/** Rounds n up to a multiple of 8 (the key-panel and value-panel width). */
// @ts-ignore: decorator
@inline export function ceil8(n: i32): i32 {
  return (n + 7) & ~7;
}

/**
 * k (S,D) row-major -> panels [ceil8(S)/8][D][8]: the 8 keys of a panel are contiguous for each d, which is
 * what the qk micro-kernels stream. Keys past S are zero (their scores are masked off anyway).
 */
export function packKeys(k: usize, S: i32, D: i32, dst: usize): void {
  const rowBytes = <usize>D << 2;
  const panels = ceil8(S) >> 3;
  for (let p = 0; p < panels; p++) {
    for (let jj = 0; jj < 8; jj++) {
      const j = (p << 3) + jj;
      let out = dst + (<usize>jj << 2);
      if (j < S) {
        let src = k + <usize>j * rowBytes;
        for (let d = 0; d < D; d++) {
          store<f32>(out, load<f32>(src));
          src += 4;
          out += 32;
        }
      } else {
        for (let d = 0; d < D; d++) {
          store<f32>(out, 0);
          out += 32;
        }
      }
    }
    dst += rowBytes << 3;
  }
}

/**
 * v (S,Dv) -> (S, ceil8(Dv)) with zero columns, so the pv micro-kernels never need a column tail.
 * Only used when Dv is not already a multiple of 8.
 */
export function padValues(v: usize, S: i32, Dv: i32, dst: usize): void {
  const srcBytes = <usize>Dv << 2;
  const dstBytes = <usize>ceil8(Dv) << 2;
  for (let j = 0; j < S; j++) {
    memory.copy(dst, v, srcBytes);
    memory.fill(dst + srcBytes, 0, dstBytes - srcBytes);
    v += srcBytes;
    dst += dstBytes;
  }
}

/**
 * Four query rows (q rows `rowBytes` apart) -> [D][4], the layout qk4x8p reads with one pointer.
 */
export function packQueries(q: usize, rowBytes: usize, D: i32, dst: usize): void {
  const q1 = q + rowBytes;
  const q2 = q1 + rowBytes;
  const q3 = q2 + rowBytes;
  for (let d = 0; d < D; d++) {
    const o = <usize>d << 2;
    store<f32>(dst, load<f32>(q + o));
    store<f32>(dst, load<f32>(q1 + o), 4);
    store<f32>(dst, load<f32>(q2 + o), 8);
    store<f32>(dst, load<f32>(q3 + o), 12);
    dst += 16;
  }
}
