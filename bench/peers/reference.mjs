// Float64 reference attention (softmax, optional top-left causal) on [B,H,L,D] float32 inputs. Deliberately
// naive and independent of src/: scores in float64, subtract the row max, exp, normalise, weight v.
export function referenceAttention(q, k, v, { batch: B, heads: H, seqQ: L, seqK: S, headDim: D, causal = false }) {
  const out = new Float64Array(B * H * L * D);
  const scale = 1 / Math.sqrt(D);
  const p = new Float64Array(S);
  const acc = new Float64Array(D);
  for (let bh = 0; bh < B * H; bh++) {
    const qo = bh * L * D, ko = bh * S * D;
    for (let i = 0; i < L; i++) {
      const end = causal ? Math.min(S, i + 1) : S;
      let max = -Infinity;
      for (let j = 0; j < end; j++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += q[qo + i * D + d] * k[ko + j * D + d];
        p[j] = s * scale;
        if (p[j] > max) max = p[j];
      }
      let sum = 0;
      acc.fill(0);
      for (let j = 0; j < end; j++) {
        const w = Math.exp(p[j] - max);
        sum += w;
        for (let d = 0; d < D; d++) acc[d] += w * v[ko + j * D + d];
      }
      for (let d = 0; d < D; d++) out[qo + i * D + d] = acc[d] / sum;
    }
  }
  return out;
}

/** Max |got − ref| relative to max |ref| (NaN if any value is NaN or lengths differ). */
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
