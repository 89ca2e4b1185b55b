// e^x for the JS backend's softmax, where every exponent is score − row max ≤ 0. V8's Math.exp is an out-of-line
// call (≈ 10 ns here) and Math.round has a slow path; this one inlines into the weighing loop (≈ 5 ns), which
// was 22 % of a JS S2 call. Float64 throughout: relative error ≤ 3e-10 wherever e^x is a normal float64
// (test/exp.test.ts), 10⁵× below the float32 output's rounding.

/** 2^n for n = −1075 … 0 (index n + 1075): the scale of e^x = 2^n · 2^f. 2^−1075 rounds to 0. */
const POW2 = new Float64Array(1076).map((_, i) => 2 ** (i - 1075));
/** Adding and subtracting 1.5·2^52 rounds a float64 of magnitude < 2^51 to the nearest integer (ties to even). */
const ROUND = 6755399441055744;
const LN2 = Math.LN2;
// Taylor coefficients of 2^f = e^(f·ln 2), ln2^i / i!, for |f| ≤ 1/2: truncation ≤ (ln2/2)^9 / 9! ≈ 2.0e-10.
const C2 = LN2 ** 2 / 2, C3 = LN2 ** 3 / 6, C4 = LN2 ** 4 / 24, C5 = LN2 ** 5 / 120;
const C6 = LN2 ** 6 / 720, C7 = LN2 ** 7 / 5040, C8 = LN2 ** 8 / 40320;

/** e^x for x ≤ 0: 0 below −745.2 (and for −∞), NaN for NaN; x > 0 goes to Math.exp. */
export function expNonPositive(x: number): number {
  const t = x * Math.LOG2E;
  if (!(t >= -1075 && t <= 0)) return t <= 0 ? 0 : Math.exp(x);
  const n = (t + ROUND) - ROUND;
  // 2^f with f = t − n ∈ [−1/2, 1/2], in Estrin's form: four short chains instead of one of eight steps.
  const f = t - n, f2 = f * f, f4 = f2 * f2;
  const p = ((1 + LN2 * f) + f2 * (C2 + C3 * f)) + f4 * ((C4 + C5 * f) + f2 * (C6 + C7 * f)) + f4 * f4 * C8;
  return p * POW2[n + 1075]!;
}
