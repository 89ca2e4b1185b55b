// The float64 reference attention: one plain ES module with no imports, written from the README semantics (and
// issue 9's options) independently of src/. vitest, the runtime smoke suite (Node, Deno, Bun, Chromium, a Vite
// bundle) and both benchmarks check every backend against it.
//
// Shapes: q [B, H, L, D], k [B, KVH, S, D], v [B, KVH, S, Dv], output [B, H, L, Dv] ('bhsd', the default), or
// q [B, L, H, D], k [B, S, KVH, D], v [B, S, KVH, Dv], output [B, L, H, Dv] ('bshd'); weights are [B, H, L, S]
// in both. Query head h reads kv head ⌊h / (H / KVH)⌋ (GQA / MQA).
//
// One score of query row i (batch b, head h) against key j, in this order:
//   s  = scale · (q̃_i · k̃_j)                 q̃, k̃: q and k rotated by RoPE when `rope` is given
//   s  = softcap · tanh(s / softcap)           `softcap`
//   s += −slope_h · |i + off_b − j|            `alibiSlopes`
//   s += mask[b, h, i, j]                      float `mask` (broadcast from `maskShape`)
//   j excluded by: causal, `window`, `keyLengths`, a bool `mask` 0, a float `mask` −∞ (whatever q·k is), or s = −∞
//   w  = activation(row of s)                  softmax (with `sinks`), softmax1, squared, sigmoid, relu, polynomial
// where off_b = keyLengths[b] − L (S − L without key lengths): query i sits at key i + off_b, bottom-right aligned.
// An excluded key has weight exactly 0; a row with no admissible key is all zeros (PyTorch ≥ 2.5 _safe_softmax).

/** Offset of row i of head h, batch b, in a tensor of `heads` heads × `rows` rows × `dim` channels. */
function rowAt(layout, b, h, i, heads, rows, dim) {
  return layout === 'bshd' ? ((b * rows + i) * heads + h) * dim : ((b * heads + h) * rows + i) * dim;
}

/** Head h of batch b as a float64 (rows, dim) matrix. */
function headOf(x, layout, b, h, heads, rows, dim) {
  const out = new Float64Array(rows * dim);
  for (let i = 0; i < rows; i++) {
    const at = rowAt(layout, b, h, i, heads, rows, dim);
    for (let d = 0; d < dim; d++) out[i * dim + d] = x[at + d];
  }
  return out;
}

/**
 * RoPE, in place on x (rows, D): row r sits at position p0 + r. Pair t is (t, t + dims/2), or (2t, 2t + 1) when
 * interleaved, turned by the angle p·f_t with f_t = base^(−2t/dims) or frequencies[t]; channels ≥ dims pass through.
 */
function rotate(x, rows, D, p0, rope) {
  const dims = rope.dims ?? D;
  if (dims % 2 !== 0 || dims > D) throw new Error(`reference: rope dims ${dims} must be even and at most headDim ${D}`);
  const half = dims / 2;
  const base = rope.base ?? 10000;
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < half; t++) {
      const f = rope.frequencies ? rope.frequencies[t] : base ** ((-2 * t) / dims);
      const theta = (p0 + r) * f;
      const cos = Math.cos(theta), sin = Math.sin(theta);
      const a = r * D + (rope.interleaved ? 2 * t : t);
      const c = r * D + (rope.interleaved ? 2 * t + 1 : t + half);
      const x0 = x[a], y0 = x[c];
      // (x, y) -> (x cos θ − y sin θ, x sin θ + y cos θ)
      x[a] = x0 * cos - y0 * sin;
      x[c] = x0 * sin + y0 * cos;
    }
  }
}

/** Element (b, h, i, j) of a mask broadcast to [B, H, L, S] (shape right-aligned, size-1 dims broadcast). */
function maskAt(mask, shape, b, h, i, j) {
  const full = [1, 1, 1, 1];
  for (let d = 0; d < shape.length; d++) full[4 - shape.length + d] = shape[d];
  const idx = [b, h, i, j].map((x, d) => (full[d] === 1 ? 0 : x));
  return mask[((idx[0] * full[1] + idx[1]) * full[2] + idx[2]) * full[3] + idx[3]];
}

/** Whether key j is structurally visible to query i: key length, causal, window. */
function visible(i, j, off, len, o) {
  if (j >= len) return false;
  if (o.causal === 'bottom-right' ? j > i + off : o.causal && j > i) return false;
  if (o.window && (j < i + off - o.window[0] || j > i + off + o.window[1])) return false;
  return true;
}

/**
 * Weights of one row of scores s (1, S), −∞ marking an excluded key (weight exactly 0); h picks the sink. `keys`:
 * the keys the row's batch entry uses (keyLengths[b], else seqK): sigmoid's default bias −ln n, relu's 1/n and
 * polynomial's 1/√n take n = keys (1 for a row without keys), as a call over those keys alone would.
 */
function activate(s, o, h, keys) {
  const S = Math.max(keys, 1);
  const w = new Float64Array(s.length);
  const live = s.filter((x) => x !== -Infinity);
  const max = live.reduce((m, x) => Math.max(m, x), -Infinity); // NaN propagates, as in Math.max(...live)
  switch (o.activation ?? 'softmax') {
    case 'softmax': {
      // w_j = e^{s_j} / (e^{sink_h} + Σ e^{s}), every exponent shifted by m = max(sink_h, max s)
      if (live.length === 0) return w;
      const sink = o.sinks ? o.sinks[h] : undefined;
      const m = sink === undefined ? max : Math.max(sink, max);
      let sum = sink === undefined ? 0 : Math.exp(sink - m);
      for (const x of live) sum += Math.exp(x - m);
      for (let j = 0; j < s.length; j++) if (s[j] !== -Infinity) w[j] = Math.exp(s[j] - m) / sum;
      return w;
    }
    case 'softmax1': {
      // e^s / (1 + Σ e^s), scaled by e^(−m) top and bottom with m = max(0, max s)
      const m = Math.max(0, max);
      let sum = Math.exp(-m);
      for (const x of live) sum += Math.exp(x - m);
      for (let j = 0; j < s.length; j++) if (s[j] !== -Infinity) w[j] = Math.exp(s[j] - m) / sum;
      return w;
    }
    case 'squared': {
      let sum = 0;
      for (const x of live) sum += x * x;
      sum += o.epsilon ?? 1e-6;
      // ε = 0 and every score 0: a zero row
      for (let j = 0; j < s.length; j++) if (s[j] !== -Infinity && sum !== 0) w[j] = (s[j] * s[j]) / sum;
      return w;
    }
    case 'sigmoid': {
      const bias = o.bias ?? -Math.log(S);
      for (let j = 0; j < s.length; j++) if (s[j] !== -Infinity) w[j] = 1 / (1 + Math.exp(-(s[j] + bias)));
      return w;
    }
    case 'relu':
      for (let j = 0; j < s.length; j++) if (s[j] !== -Infinity) w[j] = Math.max(0, s[j]) / S;
      return w;
    case 'polynomial':
      for (let j = 0; j < s.length; j++) if (s[j] !== -Infinity) w[j] = s[j] ** (o.power ?? 3) / Math.sqrt(S);
      return w;
    default:
      throw new Error(`reference: unknown activation ${o.activation}`);
  }
}

/** Float32's unit roundoff. */
const U = 2 ** -24;

/**
 * Float64 attention: `{ output, weights }` (output in the layout of q, weights [B, H, L, S]).
 *
 * With `{ bound: true }` it also returns `outputBound` and `weightsBound`: per element, how far a correct float32
 * kernel may land from the float64 result because its scores are rounded to float32. Each score s_j carries an
 * error δ_j ≤ (D + 2)·u·|scale|·Σ_d |q_d k_d| (the dot product, the scaling, RoPE) + 4e-7·|s| (soft-capping's
 * tanh, vmath.ts vtanh) + u·(|s| + |ALiBi| + |mask|) (each addition); the bound is Σ_j max over ±δ_j of the change
 * of the row's weights (and of weights · v) when s_j alone moves by δ_j. It is negligible where the row is well
 * conditioned (softmax moves by at most δ/4 per unit of |v|) and large only where the maths is: 'squared' with
 * scores near √ε, where s_j² / (Σs² + ε) changes by up to δ/√ε. Costs O(S²) per row: for small property tests.
 */
export function referenceWithWeights(q, k, v, o, { bound = false } = {}) {
  const { batch: B, heads: H, seqQ: L, seqK: S, headDim: D } = o;
  const KVH = o.kvHeads ?? H;
  const Dv = o.headDimV ?? D;
  const G = H / KVH; // query heads per kv head
  const scale = o.scale ?? 1 / Math.sqrt(D);
  const layout = o.layout ?? 'bhsd';
  const shape = o.maskShape ?? [L, S];
  if (o.sinks && (o.activation ?? 'softmax') !== 'softmax') throw new Error('reference: sinks need softmax');
  const output = new Float64Array(B * H * L * Dv);
  const weights = new Float64Array(B * H * L * S);
  const outputBound = bound ? new Float64Array(output.length) : undefined;
  const weightsBound = bound ? new Float64Array(weights.length) : undefined;
  const s = new Float64Array(S);
  const err = new Float64Array(S); // δ_j: float32 rounding error of score j
  for (let b = 0; b < B; b++) {
    const len = o.keyLengths ? o.keyLengths[b] : S; // keys j < len take part
    const off = len - L; // query i is aligned with key i + off
    for (let kvh = 0; kvh < KVH; kvh++) {
      const k_ = headOf(k, layout, b, kvh, KVH, S, D); // k (S, D)
      const v_ = headOf(v, layout, b, kvh, KVH, S, Dv); // v (S, Dv)
      if (o.rope) rotate(k_, S, D, o.rope.positionK ?? 0, o.rope);
      for (let h = kvh * G; h < (kvh + 1) * G; h++) {
        const q_ = headOf(q, layout, b, h, H, L, D); // q (L, D)
        if (o.rope) rotate(q_, L, D, o.rope.positionQ ?? 0, o.rope);
        for (let i = 0; i < L; i++) {
          // q_i (1, D) · kᵀ (D, S) -> s (1, S), then softcap, ALiBi, mask, exclusions
          for (let j = 0; j < S; j++) {
            let x = 0, magnitude = 0;
            for (let d = 0; d < D; d++) {
              const p = q_[i * D + d] * k_[j * D + d];
              x += p;
              magnitude += Math.abs(p);
            }
            x *= scale;
            let e = (D + 2) * U * Math.abs(scale) * magnitude;
            if (o.softcap !== undefined) {
              x = o.softcap * Math.tanh(x / o.softcap); // tanh' ≤ 1 carries the dot product's error through
              e += 4e-7 * Math.abs(x);
            }
            if (o.alibiSlopes) {
              const a = -o.alibiSlopes[h] * Math.abs(i + off - j);
              x += a;
              e += U * (Math.abs(x) + Math.abs(a));
            }
            if (o.mask instanceof Float32Array) {
              const m = maskAt(o.mask, shape, b, h, i, j);
              x += m;
              e += U * (Math.abs(x) + Math.abs(m));
            }
            // Excluded: by position, by a bool 0, or by a float −∞ whatever the score (NaN + −∞ would be NaN).
            const m = o.mask ? maskAt(o.mask, shape, b, h, i, j) : 1;
            const dropped = !visible(i, j, off, len, o) || (o.mask instanceof Uint8Array ? m === 0 : m === -Infinity);
            s[j] = dropped ? -Infinity : x;
            err[j] = e;
          }
          const w = activate(s, o, h, len); // (1, S)
          weights.set(w, ((b * H + h) * L + i) * S);
          // w (1, S) · v (S, Dv) -> out_i (1, Dv); a zero weight skips its value (0 · NaN is not evaluated)
          const at = rowAt(layout, b, h, i, H, L, Dv);
          for (let c = 0; c < Dv; c++) {
            let acc = 0;
            for (let j = 0; j < S; j++) if (w[j] !== 0) acc += w[j] * v_[j * Dv + c];
            output[at + c] = acc;
          }
          if (bound) roundingBound(s, err, w, v_, Dv, o, h, len, outputBound, at, weightsBound, ((b * H + h) * L + i) * S);
        }
      }
    }
  }
  return bound ? { output, weights, outputBound, weightsBound } : { output, weights };
}

/**
 * Adds to outputBound[at …] and weightsBound[wat …] the change of one row's weights w (and of w · v) when each
 * finite score s_j alone moves by ±err[j]: the score-rounding part of referenceWithWeights' bound.
 */
function roundingBound(s, err, w, v_, Dv, o, h, keys, outputBound, at, weightsBound, wat) {
  const S = s.length;
  for (let j = 0; j < S; j++) {
    if (!Number.isFinite(s[j]) || err[j] === 0) continue;
    const sj = s[j];
    const dOut = new Float64Array(Dv);
    const dW = new Float64Array(S);
    for (const step of [err[j], -err[j]]) {
      s[j] = sj + step;
      const moved = activate(s, o, h, keys);
      for (let t = 0; t < S; t++) dW[t] = Math.max(dW[t], Math.abs(moved[t] - w[t]));
      for (let c = 0; c < Dv; c++) {
        let d = 0;
        for (let t = 0; t < S; t++) if (moved[t] !== w[t]) d += (moved[t] - w[t]) * v_[t * Dv + c];
        dOut[c] = Math.max(dOut[c], Math.abs(d));
      }
    }
    s[j] = sj;
    for (let t = 0; t < S; t++) weightsBound[wat + t] += dW[t];
    for (let c = 0; c < Dv; c++) outputBound[at + c] += dOut[c];
  }
}

/** Float64 attention output only. */
export function referenceAttention(q, k, v, o) {
  return referenceWithWeights(q, k, v, o).output;
}

/**
 * Linear attention the quadratic way (bhsd), in float64. Per batch b and query head h (kv head ⌊h / (H / KVH)⌋):
 *
 *   w_ij  = φ(q_i)·φ(k_j) · e^(c_i' − c_j)       over the keys j ≤ i' (causal) or every key (non-causal)
 *   out_i = Σ_j w_ij v_j / (Σ_j w_ij + ε)        (normalize, the default; a denominator of exactly 0 gives zeros)
 *   out_i = Σ_j w_ij v_j                         (normalize: false)
 *
 * φ = elu + 1 (featureMap 'elu+1', the default) or the identity. i' = i top-left, i + S − L bottom-right. c are
 * the cumulative log-decays c_t = Σ_{s ≤ t} (ln γ_h + a_s) (`decay` γ per head, `gates` a per [b, h, t]), so
 * e^(c_i' − c_j) = Π_{s = j+1 … i'} d_s, the decay product of the recurrence S_t = d_t·S_{t−1} + φ(k_t)v_tᵀ.
 */
export function referenceLinear(q, k, v, o) {
  const { batch: B, heads: H, seqQ: L, seqK: S, headDim: D } = o;
  const KVH = o.kvHeads ?? H;
  const Dv = o.headDimV ?? D;
  const normalize = o.normalize ?? true;
  const eps = normalize ? (o.epsilon ?? 1e-6) : 0;
  const off = o.causal === 'bottom-right' ? S - L : 0;
  const phi = o.featureMap === 'identity' ? (x) => x : (x) => (x > 0 ? x + 1 : Math.exp(x));
  const out = new Float64Array(B * H * L * Dv);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / KVH));
      const q_ = headOf(q, 'bhsd', b, h, H, L, D).map(phi); // φ(q) (L, D)
      const k_ = headOf(k, 'bhsd', b, kvh, KVH, S, D).map(phi); // φ(k) (S, D)
      const v_ = headOf(v, 'bhsd', b, kvh, KVH, S, Dv); // v (S, Dv)
      const c = new Float64Array(S); // cumulative log-decay
      for (let t = 0, sum = 0; t < S; t++) {
        sum += (o.decay ? Math.log(o.decay[h]) : 0) + (o.gates ? o.gates[(b * H + h) * S + t] : 0);
        c[t] = sum;
      }
      for (let i = 0; i < L; i++) {
        const num = new Float64Array(Dv);
        let den = eps;
        for (let j = 0; j < S; j++) {
          if (o.causal && j > i + off) continue;
          // φ(q_i) (1, D) · φ(k_j)ᵀ (D, 1) -> w (1, 1), times the decay from key j to key i'
          let w = 0;
          for (let d = 0; d < D; d++) w += q_[i * D + d] * k_[j * D + d];
          if (o.causal) w *= Math.exp(c[Math.min(i + off, S - 1)] - c[j]); // i' ≥ S: the state after the last key
          den += w;
          for (let c_ = 0; c_ < Dv; c_++) num[c_] += w * v_[j * Dv + c_];
        }
        for (let c_ = 0; c_ < Dv; c_++) {
          out[((b * H + h) * L + i) * Dv + c_] = !normalize ? num[c_] : den === 0 ? 0 : num[c_] / den;
        }
      }
    }
  }
  return out;
}

/** Max |got − want|; NaN when the lengths differ or the two disagree on NaN-ness. */
export function maxAbsError(got, want) {
  if (got.length !== want.length) return NaN;
  let err = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (Number.isNaN(d)) return NaN;
    if (d > err) err = d;
  }
  return err;
}

/** The suites' tolerance for a float32 result against the float64 reference `want`: 1e-5 · max(1, max |want|). */
export function tolerance(want) {
  let peak = 1;
  for (let i = 0; i < want.length; i++) peak = Math.max(peak, Math.abs(want[i]));
  return 1e-5 * peak;
}

/**
 * `{ err, tol, ok }`: whether `got` is within `tolerance(want)` of `want` (NaN anywhere fails). With `bound`
 * (referenceWithWeights' outputBound or weightsBound) element i may also be off by bound[i]; then `err` is the
 * largest |got − want| − bound and `tol` stays the plain tolerance.
 */
export function closeTo(got, want, bound) {
  const tol = tolerance(want);
  if (!bound) {
    const err = maxAbsError(got, want);
    return { err, tol, ok: err <= tol };
  }
  if (got.length !== want.length || bound.length !== want.length) return { err: NaN, tol, ok: false };
  let err = -Infinity;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]) - bound[i];
    if (Number.isNaN(d)) return { err: NaN, tol, ok: false };
    if (d > err) err = d;
  }
  return { err, tol, ok: err <= tol };
}

/** Max |got − ref| relative to max |ref| (NaN if any value is NaN or the lengths differ): the benchmarks' check. */
export function relativeError(got, ref) {
  if (got.length !== ref.length) return NaN;
  let err = 0, peak = 0;
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(got[i] - ref[i]);
    if (Number.isNaN(e)) return NaN;
    if (e > err) err = e;
    peak = Math.max(peak, Math.abs(ref[i]));
  }
  return err / Math.max(peak, Number.MIN_VALUE);
}
