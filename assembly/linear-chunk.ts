// One chunk of chunkwise linear attention (flash-linear-attention, GLA, RetNet's chunkwise form) on the
// register-tile micro-kernels of gemm.ts. For a chunk of n ≤ LC keys and the queries aligned to them:
//
//   out (m, Dv) = [ corr ⊙ φ̂Q·Ŝ  +  (φ̂Q·φ̂Kᵀ ⊙ decay-and-causal mask) · V ] / den      (the queries)
//   Ŝ (D, Dv)   = c·Ŝ + (w ⊙ φ̂K)ᵀ · V,   ẑ = c·ẑ + (w ⊙ φ̂K)ᵀ · 1                        (the state)
//
// Every magnitude lives in float64 logs: a state holds Ŝ, ẑ and σ with S = e^σ·Ŝ, z = e^σ·ẑ; features are
// scaled by their block maxima (linear-features.ts: λ); decay products are exponentials of differences of
// cumulative log-decays g_u = Σ_{s ≤ u} (ln γ + a_s). Each exponent below is ≤ 0, so nothing overflows, and
// whatever underflows is negligible next to a term of the same row that does not.
import { BLOCK_STRIDE, f32_pv_1x32, f32_pv_1x8, f32_pv_4x8b, f32_qk_1x8, f32_qk_4x8p } from "./gemm";
import { expd, scaledFeatures } from "./linear-features";
import { ceil8, x32_packk_8, x32_packq_4, x32_padv_8 } from "./pack";
import { ceil4, sigmaAt } from "./linear-layout";
import { LC, Params } from "./params.generated";
import { hsum, vexp } from "./vmath";

// The call's constants and scratch regions, set by setup().
let D = 0, Dv = 0, dv8 = 0, D4 = 0, fmap = 0;
let normalize = false;
let eps: f64 = 0;
let kRows: usize = 0, kPanel: usize = 0, kwT: usize = 0, pBuf: usize = 0, qRows: usize = 0, qPack: usize = 0;
let acc: usize = 0, vPad: usize = 0, gCum: usize = 0, rowMu: usize = 0, rowRho: usize = 0, rowCorr: usize = 0;
let rowSum: usize = 0, rowZ: usize = 0, wRow: usize = 0, corr4: usize = 0, xRow: usize = 0;

/** Lays out the scratch of the call at `p` from `scratch`; returns the call's own state region. */
export function setup(p: Params, scratch: usize): usize {
  D = p.D;
  Dv = p.Dv;
  dv8 = ceil8(Dv);
  D4 = ceil4(D);
  fmap = p.featureMap;
  normalize = p.normalize != 0;
  eps = <f64>p.param;
  const block = <usize>(LC * D) << 2;
  let at = scratch;
  kRows = at; at += block;
  kPanel = at; at += block;
  qRows = at; at += block;
  qPack = at; at += block;
  kwT = at; at += <usize>D4 * BLOCK_STRIDE;
  pBuf = at; at += <usize>LC * BLOCK_STRIDE;
  acc = at; at += <usize>(LC * dv8) << 2;
  vPad = at; at += <usize>(LC * dv8) << 2;
  gCum = at; at += <usize>LC << 3;
  rowMu = at; at += <usize>LC << 3;
  rowRho = at; at += <usize>LC << 3;
  rowCorr = at; at += <usize>LC << 2;
  rowSum = at; at += <usize>LC << 2;
  rowZ = at; at += <usize>LC << 2;
  wRow = at; at += <usize>LC << 2;
  corr4 = at; at += 16;
  xRow = at; at += BLOCK_STRIDE;
  // Rows D … D4 − 1 of (w ⊙ φ̂K)ᵀ stay zero, so the 4-row state update leaves the padding rows of Ŝ at 0.
  memory.fill(kwT + <usize>D * BLOCK_STRIDE, 0, <usize>(D4 - D) * BLOCK_STRIDE);
  return at;
}

/** φ̂ of m query rows (D floats apart) into qRows, their λ into rowMu, and full 4-row groups packed [D][4]. */
function featureRows(q: usize, m: i32): void {
  const rowBytes = <usize>D << 2;
  for (let r = 0; r < m; r++) {
    const at = <usize>r * rowBytes;
    store<f64>(rowMu + (<usize>r << 3), scaledFeatures(fmap, q + at, rowBytes, 1, D, qRows + at));
  }
  for (let r = 0; r + 4 <= m; r += 4) x32_packq_4(qRows + <usize>r * rowBytes, rowBytes, D, qPack + <usize>r * rowBytes);
}

/** acc (m, dv8) = φ̂Q · Ŝ and rowZ (m) = φ̂Q · ẑ, for the state `st`. */
function stateProduct(st: usize, m: i32): void {
  const rowBytes = <usize>D << 2;
  const accStride = <usize>dv8 << 2;
  const slabBytes = <usize>D4 << 5;
  let r = 0;
  for (; r + 4 <= m; r += 4) {
    const ar = acc + <usize>r * accStride;
    for (let c = 0; c < dv8; c += 8) {
      f32_qk_4x8p(qPack + <usize>r * rowBytes, st + <usize>(c >> 3) * slabBytes, D, ar + (<usize>c << 2), accStride);
    }
  }
  for (; r < m; r++) {
    const ar = acc + <usize>r * accStride;
    for (let c = 0; c < dv8; c += 8) f32_qk_1x8(qRows + <usize>r * rowBytes, st + <usize>(c >> 3) * slabBytes, D, ar + (<usize>c << 2));
  }
  const z = st + (<usize>(dv8 * D4) << 2);
  const D4f = D & ~3;
  for (r = 0; r < m; r++) {
    const qr = qRows + <usize>r * rowBytes;
    let s = f32x4.splat(0);
    let d = 0;
    for (; d < D4f; d += 4) s = f32x4.add(s, f32x4.mul(v128.load(qr + (<usize>d << 2)), v128.load(z + (<usize>d << 2))));
    let t = hsum(s);
    for (; d < D; d++) t += load<f32>(qr + (<usize>d << 2)) * load<f32>(z + (<usize>d << 2));
    store<f32>(rowZ + (<usize>r << 2), t);
  }
}

/**
 * pBuf (m, ≤ LC) = φ̂Q · φ̂Kᵀ on the causal part only (query row r sits at chunk key u = r + shift), then each
 * admitted weight times e^(κ − ρ_r + g_u − g_j) and the rest 0; rowSum = the rows' sums.
 */
function intra(m: i32, shift: i32, kappa: f64, decayed: bool): void {
  const rowBytes = <usize>D << 2;
  let r = 0;
  for (; r + 4 <= m; r += 4) {
    const cols = ceil8(r + shift + 4);
    const pr = pBuf + <usize>r * BLOCK_STRIDE;
    for (let c = 0; c < cols; c += 8) {
      f32_qk_4x8p(qPack + <usize>r * rowBytes, kPanel + <usize>c * rowBytes, D, pr + (<usize>c << 2), BLOCK_STRIDE);
    }
  }
  for (; r < m; r++) {
    const cols = ceil8(r + shift + 1);
    const pr = pBuf + <usize>r * BLOCK_STRIDE;
    for (let c = 0; c < cols; c += 8) f32_qk_1x8(qRows + <usize>r * rowBytes, kPanel + <usize>c * rowBytes, D, pr + (<usize>c << 2));
  }
  for (r = 0; r < m; r++) {
    const u = r + shift;
    const pr = pBuf + <usize>r * BLOCK_STRIDE;
    const rho = load<f64>(rowRho + (<usize>r << 3));
    const lanes = ceil4(u + 1);
    if (decayed) {
      // Exponents in float64 (differences of cumulative sums), rounded once to float32 for vexp.
      const top = kappa - rho + load<f64>(gCum + (<usize>u << 3));
      for (let j = 0; j <= u; j++) store<f32>(xRow + (<usize>j << 2), <f32>(top - load<f64>(gCum + (<usize>j << 3))));
      for (let j = 0; j < lanes; j += 4) {
        const at = pr + (<usize>j << 2);
        v128.store(at, f32x4.mul(v128.load(at), vexp(v128.load(xRow + (<usize>j << 2)))));
      }
    } else {
      const f = <f32>expd(kappa - rho);
      if (f != 1) {
        const vf = f32x4.splat(f);
        for (let j = 0; j < lanes; j += 4) v128.store(pr + (<usize>j << 2), f32x4.mul(v128.load(pr + (<usize>j << 2)), vf));
      }
    }
    // Keys after u: 0 (the 4-row group's P·V reads up to 3 of them).
    for (let j = u + 1; j < u + 4; j++) store<f32>(pr + (<usize>j << 2), 0);
    let s = f32x4.splat(0);
    for (let j = 0; j < lanes; j += 4) s = f32x4.add(s, v128.load(pr + (<usize>j << 2)));
    store<f32>(rowSum + (<usize>r << 2), hsum(s));
  }
}

/** acc = acc ⊙ rowCorr + pBuf · V (V rows vStride bytes apart, ceil8(Dv) columns readable). */
function pv(m: i32, shift: i32, v: usize, vStride: usize): void {
  const accStride = <usize>dv8 << 2;
  let r = 0;
  for (; r + 4 <= m; r += 4) {
    const ar = acc + <usize>r * accStride;
    for (let c = 0; c < dv8; c += 8) {
      f32_pv_4x8b(pBuf + <usize>r * BLOCK_STRIDE, v + (<usize>c << 2), vStride, r + shift + 4, ar + (<usize>c << 2), accStride, rowCorr + (<usize>r << 2));
    }
  }
  for (; r < m; r++) {
    const pr = pBuf + <usize>r * BLOCK_STRIDE;
    const ar = acc + <usize>r * accStride;
    const cr = rowCorr + (<usize>r << 2);
    const J = r + shift + 1;
    let c = 0;
    for (; c + 32 <= dv8; c += 32) f32_pv_1x32(pr, v + (<usize>c << 2), vStride, J, ar + (<usize>c << 2), cr);
    for (; c < dv8; c += 8) f32_pv_1x8(pr, v + (<usize>c << 2), vStride, J, ar + (<usize>c << 2), cr);
  }
}

/**
 * out rows (Dv floats apart) from acc. Normalised: acc / (rowCorr·rowZ + rowSum + ε·e^(−λ_q − ρ)), a row whose
 * denominator is exactly 0 written as zeros; otherwise acc · e^(λ_q + ρ). Scale factors outside float32's
 * comfortable range go through float64 per element, so a huge factor never meets a tiny accumulator in float32.
 */
function finish(out: usize, m: i32): void {
  const accStride = <usize>dv8 << 2;
  const dv4 = Dv & ~3;
  for (let r = 0; r < m; r++) {
    const ar = acc + <usize>r * accStride;
    const or = out + (<usize>(r * Dv) << 2);
    const mu = load<f64>(rowMu + (<usize>r << 3));
    const rho = load<f64>(rowRho + (<usize>r << 3));
    let f: f64;
    if (normalize) {
      const den = <f64>load<f32>(rowCorr + (<usize>r << 2)) * <f64>load<f32>(rowZ + (<usize>r << 2)) +
        <f64>load<f32>(rowSum + (<usize>r << 2)) + (eps == 0 ? 0 : eps * expd(-mu - rho));
      if (den == 0) {
        memory.fill(or, 0, <usize>Dv << 2);
        continue;
      }
      f = 1 / den;
    } else {
      f = expd(mu + rho);
    }
    let c = 0;
    if (abs(f) > 1e-30 && abs(f) < 1e30) {
      const vf = f32x4.splat(<f32>f);
      for (; c < dv4; c += 4) v128.store(or + (<usize>c << 2), f32x4.mul(v128.load(ar + (<usize>c << 2)), vf));
      for (; c < Dv; c++) store<f32>(or + (<usize>c << 2), load<f32>(ar + (<usize>c << 2)) * <f32>f);
    } else {
      for (; c < Dv; c++) store<f32>(or + (<usize>c << 2), <f32>(<f64>load<f32>(ar + (<usize>c << 2)) * f));
    }
  }
}

/** Output rows of m ≤ LC queries (q, out: their first rows) that see the state `st` and no key of this call. */
export function stateRows(st: usize, q: usize, out: usize, m: i32): void {
  const sigma = load<f64>(st + sigmaAt(D, Dv));
  const empty = sigma == -Infinity;
  featureRows(q, m);
  for (let r = 0; r < m; r++) {
    store<f64>(rowRho + (<usize>r << 3), empty ? 0 : sigma);
    store<f32>(rowCorr + (<usize>r << 2), 1);
    store<f32>(rowSum + (<usize>r << 2), 0);
  }
  if (empty) {
    memory.fill(acc, 0, <usize>(m * dv8) << 2);
    memory.fill(rowZ, 0, <usize>m << 2);
  } else {
    stateProduct(st, m);
  }
  finish(out, m);
}

/**
 * One chunk: keys k, values v (n ≤ LC rows, D / Dv floats apart) with per-key log-gates at `gates` (or 0) and
 * ln γ; the m queries at q (their outputs at out) sit at chunk keys shift … shift + m − 1. With `update` the
 * chunk is then folded into the state `st`.
 */
export function chunk(
  st: usize, k: usize, v: usize, n: i32, gates: usize, lnGamma: f64, q: usize, out: usize, m: i32, shift: i32, update: bool,
): void {
  const decayed = gates != 0 || lnGamma != 0;
  let G: f64 = 0;
  if (decayed) {
    for (let u = 0; u < n; u++) {
      G += lnGamma + (gates != 0 ? <f64>load<f32>(gates + (<usize>u << 2)) : 0);
      store<f64>(gCum + (<usize>u << 3), G);
    }
  }
  const rowBytes = <usize>D << 2;
  const kappa = scaledFeatures(fmap, k, rowBytes, n, D, kRows);
  x32_packk_8(kRows, rowBytes, n, D, kPanel);
  let vb = v;
  let vStride = <usize>Dv << 2;
  if ((Dv & 7) != 0) {
    x32_padv_8(v, vStride, n, Dv, vPad);
    vb = vPad;
    vStride = <usize>dv8 << 2;
  }
  const sAt = st + sigmaAt(D, Dv);
  const sigma = load<f64>(sAt);
  const empty = sigma == -Infinity;

  if (m > 0) {
    featureRows(q, m);
    // ρ_r = max(σ + g_u, κ): the larger of the row's two terms, factored out of both.
    for (let r = 0; r < m; r++) {
      const gu = decayed ? load<f64>(gCum + (<usize>(r + shift) << 3)) : 0;
      const rho = empty ? kappa : max(sigma + gu, kappa);
      store<f64>(rowRho + (<usize>r << 3), rho);
      store<f32>(rowCorr + (<usize>r << 2), empty ? 0 : <f32>expd(sigma + gu - rho));
    }
    if (empty) {
      memory.fill(acc, 0, <usize>(m * dv8) << 2);
      memory.fill(rowZ, 0, <usize>m << 2);
    } else {
      stateProduct(st, m);
    }
    intra(m, shift, kappa, decayed);
    pv(m, shift, vb, vStride);
    finish(out, m);
  }
  if (!update) return;

  // σ' = max(σ + G, κ); key j enters with weight w_j = e^(κ + G − g_j − σ'), the old state with c = e^(σ + G − σ').
  const sigma2 = empty ? kappa : max(sigma + G, kappa);
  const c: f32 = empty ? 0 : <f32>expd(sigma + G - sigma2);
  const n8 = ceil8(n);
  for (let j = 0; j < n8; j++) {
    const w = j >= n ? 0 : expd(kappa - sigma2 + (decayed ? G - load<f64>(gCum + (<usize>j << 3)) : 0));
    store<f32>(wRow + (<usize>j << 2), <f32>w);
  }
  // (w ⊙ φ̂K)ᵀ (D, n8), rows BLOCK_STRIDE apart, straight from the key panels (8 keys contiguous per d).
  for (let p = 0; p < n8 >> 3; p++) {
    const w0 = v128.load(wRow + (<usize>p << 5));
    const w1 = v128.load(wRow + (<usize>p << 5), 16);
    let src = kPanel + <usize>p * (<usize>D << 5);
    let dst = kwT + (<usize>p << 5);
    for (let d = 0; d < D; d++) {
      v128.store(dst, f32x4.mul(v128.load(src), w0));
      v128.store(dst, f32x4.mul(v128.load(src, 16), w1), 16);
      src += 32;
      dst += BLOCK_STRIDE;
    }
  }
  // Ŝ (D4, dv8) = c·Ŝ + (w ⊙ φ̂K)ᵀ · V, one 4×8 tile of a state panel at a time.
  v128.store(corr4, f32x4.splat(c));
  const slabBytes = <usize>D4 << 5;
  for (let d = 0; d < D4; d += 4) {
    const kr = kwT + <usize>d * BLOCK_STRIDE;
    for (let c8 = 0; c8 < dv8; c8 += 8) {
      f32_pv_4x8b(kr, vb + (<usize>c8 << 2), vStride, n, st + <usize>(c8 >> 3) * slabBytes + (<usize>d << 5), 32, corr4);
    }
  }
  // ẑ = c·ẑ + (w ⊙ φ̂K)ᵀ · 1
  const z = st + (<usize>(dv8 * D4) << 2);
  for (let d = 0; d < D; d++) {
    const kr = kwT + <usize>d * BLOCK_STRIDE;
    let s = f32x4.splat(0);
    for (let j = 0; j < n8; j += 4) s = f32x4.add(s, v128.load(kr + (<usize>j << 2)));
    const at = z + (<usize>d << 2);
    store<f32>(at, c * load<f32>(at) + hsum(s));
  }
  store<f64>(sAt, sigma2);
}
