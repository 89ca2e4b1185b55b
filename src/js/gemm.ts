// The pure-JS backend's two products for one or two query rows: s = q · kᵀ (dots, dots2) and o += p · v
// (weightedSum, weightedSum2), in float64, k and v rows `ks`/`vs` apart. The one-row pair also reads float32 k
// and v directly (decoding: a float64 copy would cost as much as the products when each key serves one row;
// float32 → float64 is exact, so the sums are the same; one function for both types measured as fast as two
// monomorphic copies, 1.01× in an interleaved A/B). Written for V8's optimizing compiler: every
// typed-array read costs an index computation and a bounds check, and x64 code has 15 xmm registers, so each
// kernel makes as many products per read as it can with ≤ 8 sums in flight (more made V8 spill sums to the
// stack, which puts a store and a load on each step's dependency chain). Sums are float64; a kernel's order of
// addition differs from a plain loop's by float64 rounding only, far below the float32 output's.

/**
 * s_j = q_row · k_j for lo ≤ j < hi: s (n) = q (D) · kᵀ (D,n), key rows `ks` apart from kHead (key 0). Four keys
 * share each load of q and keep four independent sums in flight (≈ 3× the one-key loop).
 */
export function dots(
  s: Float64Array, q: Float64Array, qRow: number, k: Float64Array | Float32Array, kHead: number, ks: number, D: number, lo: number, hi: number,
): void {
  let j = lo;
  for (; j + 4 <= hi; j += 4) {
    const k0 = kHead + j * ks, k1 = k0 + ks, k2 = k1 + ks, k3 = k2 + ks;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let d = 0; d < D; d++) {
      const x = q[qRow + d]!;
      s0 += x * k[k0 + d]!;
      s1 += x * k[k1 + d]!;
      s2 += x * k[k2 + d]!;
      s3 += x * k[k3 + d]!;
    }
    s[j] = s0; s[j + 1] = s1; s[j + 2] = s2; s[j + 3] = s3;
  }
  for (; j < hi; j++) {
    const kRow = kHead + j * ks;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qRow + d]! * k[kRow + d]!;
    s[j] = dot;
  }
}

/**
 * dots for two query rows at once (rows a and b, into sa and sb): each load of k serves both rows, so a step of
 * four keys makes eight products from six loads instead of four from five. Same sums in the same order as dots.
 */
export function dots2(
  sa: Float64Array, sb: Float64Array, q: Float64Array, qa: number, qb: number, k: Float64Array, kHead: number, ks: number,
  D: number, lo: number, hi: number,
): void {
  let j = lo;
  for (; j + 4 <= hi; j += 4) {
    const k0 = kHead + j * ks, k1 = k0 + ks, k2 = k1 + ks, k3 = k2 + ks;
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    for (let d = 0; d < D; d++) {
      const x = q[qa + d]!, y = q[qb + d]!;
      const y0 = k[k0 + d]!, y1 = k[k1 + d]!, y2 = k[k2 + d]!, y3 = k[k3 + d]!;
      a0 += x * y0; a1 += x * y1; a2 += x * y2; a3 += x * y3;
      b0 += y * y0; b1 += y * y1; b2 += y * y2; b3 += y * y3;
    }
    sa[j] = a0; sa[j + 1] = a1; sa[j + 2] = a2; sa[j + 3] = a3;
    sb[j] = b0; sb[j + 1] = b1; sb[j + 2] = b2; sb[j + 3] = b3;
  }
  if (j < hi) {
    dots(sa, q, qa, k, kHead, ks, D, j, hi);
    dots(sb, q, qb, k, kHead, ks, D, j, hi);
  }
}

/**
 * Keys per pass of weightedSum2: a register-blocked pass reads the same value rows Dv/4 times (once per four
 * channels), so the rows of a chunk (≤ 8192 floats, 64 KiB) should stay in L2 between those reads; without
 * chunks, S = 4096 and Dv = 128 (4 MiB of v) would read v 32 times from memory.
 */
const chunkOf = (Dv: number): number => Math.max(16, Math.floor(8192 / Dv));

/**
 * o (Dv) += Σ_{lo≤j<hi} p_j · v_j: p (n) · v (n,Dv), value rows `vs` apart, four rows per pass over o (o stays in
 * L1, v streams once). For one row this beats register blocking (below), which reads v Dv/4 times.
 */
export function weightedSum(o: Float64Array, p: Float64Array, v: Float64Array | Float32Array, vHead: number, vs: number, Dv: number, lo: number, hi: number): void {
  let j = lo;
  for (; j + 4 <= hi; j += 4) {
    const v0 = vHead + j * vs, v1 = v0 + vs, v2 = v1 + vs, v3 = v2 + vs;
    const p0 = p[j]!, p1 = p[j + 1]!, p2 = p[j + 2]!, p3 = p[j + 3]!;
    for (let c = 0; c < Dv; c++) o[c] = o[c]! + p0 * v[v0 + c]! + p1 * v[v1 + c]! + p2 * v[v2 + c]! + p3 * v[v3 + c]!;
  }
  for (; j < hi; j++) {
    const pj = p[j]!, vRow = vHead + j * vs;
    for (let c = 0; c < Dv; c++) o[c] = o[c]! + pj * v[vRow + c]!;
  }
}

/**
 * weightedSum for two rows (weights pa, pb into oa, ob) over the keys both admit, lo ≤ j < hi: o (2,Dv) += [p_a;
 * p_b] (2,n) · v (n,Dv). 2 rows × 4 channels in locals (8 sums): each step reads p_a,j, p_b,j and v_j[c … c + 3]
 * for eight products. The sums of the rows' own keys at either end are added by weightedSum afterwards.
 */
export function weightedSum2(
  oa: Float64Array, ob: Float64Array, pa: Float64Array, pb: Float64Array, v: Float64Array, vHead: number, vs: number,
  Dv: number, lo: number, hi: number,
): void {
  const step = chunkOf(Dv);
  for (let from = lo; from < hi; from += step) weightedSum2Chunk(oa, ob, pa, pb, v, vHead, vs, Dv, from, Math.min(hi, from + step));
}

function weightedSum2Chunk(
  oa: Float64Array, ob: Float64Array, pa: Float64Array, pb: Float64Array, v: Float64Array, vHead: number, vs: number,
  Dv: number, lo: number, hi: number,
): void {
  let c = 0;
  for (; c + 4 <= Dv; c += 4) {
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    for (let j = lo, t = vHead + lo * vs + c; j < hi; j++, t += vs) {
      const x = pa[j]!, y = pb[j]!;
      const v0 = v[t]!, v1 = v[t + 1]!, v2 = v[t + 2]!, v3 = v[t + 3]!;
      a0 += x * v0; a1 += x * v1; a2 += x * v2; a3 += x * v3;
      b0 += y * v0; b1 += y * v1; b2 += y * v2; b3 += y * v3;
    }
    oa[c] = oa[c]! + a0; oa[c + 1] = oa[c + 1]! + a1; oa[c + 2] = oa[c + 2]! + a2; oa[c + 3] = oa[c + 3]! + a3;
    ob[c] = ob[c]! + b0; ob[c + 1] = ob[c + 1]! + b1; ob[c + 2] = ob[c + 2]! + b2; ob[c + 3] = ob[c + 3]! + b3;
  }
  for (; c < Dv; c++) { // the last Dv mod 4 channels
    let a = 0, b = 0;
    for (let j = lo, t = vHead + lo * vs + c; j < hi; j++, t += vs) {
      const x = v[t]!;
      a += pa[j]! * x; b += pb[j]! * x;
    }
    oa[c] = oa[c]! + a; ob[c] = ob[c]! + b;
  }
}
