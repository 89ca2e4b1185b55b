// KV caches in the smoke suite (issue 11), run unchanged in every runtime: float16 and int8 caches against float64
// within their bounds (decode and a prefill chunk, GQA), ragged rows, a rolling window, and 16-bit tensors — a real
// Float16Array where the runtime has one, Uint16Array bits everywhere — bit for bit against the float32 call on
// their values.
import { random, referenceAttention } from './cases.mjs';
import { halfBitsOf, toHalf } from './quantize.mjs';

const BOUND = { float16: 2e-3, int8: 3e-2 };

function check(condition, message) {
  if (!condition) throw new Error(`smoke: ${message}`);
}

/** max |got − want| / max |want|. */
function ratio(got, want) {
  let err = 0, peak = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    peak = Math.max(peak, Math.abs(want[i]));
  }
  return err / peak;
}

/** Tokens from..to of a [1, KVH, T, D] tensor. */
function tokens(x, KVH, T, D, from, to) {
  const out = new Float32Array(KVH * (to - from) * D);
  for (let h = 0; h < KVH; h++) out.set(x.subarray((h * T + from) * D, (h * T + to) * D), h * (to - from) * D);
  return out;
}

/** Throws on a failure; returns which 16-bit arrays were checked and the largest error per cache dtype. */
export function checkCaches(pkg, engine, what) {
  const worst = {};
  const [H, KVH, D, T] = [4, 2, 40, 100];
  const K = random(KVH * T * D, 3001, 1.5), V = random(KVH * T * D, 3002);
  for (const dtype of ['float16', 'int8']) {
    const cache = engine.createKVCache({ batch: 1, kvHeads: KVH, headDim: D, capacity: T, dtype });
    let len = 0;
    for (const n of [90, 1, 9]) {
      cache.append(tokens(K, KVH, T, D, len, len + n), tokens(V, KVH, T, D, len, len + n));
      len += n;
      const q = random(H * n * D, 3003 + len, 1.5);
      const o = { heads: H, seqQ: n, causal: 'bottom-right' };
      const err = ratio(cache.attend(q, o), referenceAttention(q, tokens(K, KVH, T, D, 0, len), tokens(V, KVH, T, D, 0, len),
        { ...o, batch: 1, kvHeads: KVH, seqK: len, headDim: D }));
      check(err <= BOUND[dtype], `${what} ${dtype} cache, ${n} queries over ${len}: error ${err} (bound ${BOUND[dtype]})`);
      worst[dtype] = Math.max(worst[dtype] ?? 0, err);
    }
    cache.dispose();
  }
  // Ragged rows: row 1 behind row 0; entry i of q reads row rows[i], aligned to that row's own length.
  const ragged = engine.createKVCache({ batch: 2, kvHeads: KVH, headDim: D, capacity: T, dtype: 'int8' });
  ragged.append(tokens(K, KVH, T, D, 0, 60), tokens(V, KVH, T, D, 0, 60), { rows: [0] });
  ragged.append(tokens(K, KVH, T, D, 0, 25), tokens(V, KVH, T, D, 0, 25), { rows: [1] });
  check(ragged.lengths[0] === 60 && ragged.lengths[1] === 25, `${what}: ragged lengths ${ragged.lengths}`);
  const q2 = random(2 * H * D, 3100, 1.5);
  const both = ragged.attend(q2, { heads: H, seqQ: 1, rows: [1, 0] });
  for (const [i, row, len] of [[0, 1, 25], [1, 0, 60]]) {
    const q = q2.subarray(i * H * D, (i + 1) * H * D);
    const want = referenceAttention(q, tokens(K, KVH, T, D, 0, len), tokens(V, KVH, T, D, 0, len), { batch: 1, heads: H, kvHeads: KVH, seqQ: 1, seqK: len, headDim: D });
    const err = ratio(both.subarray(i * H * D, (i + 1) * H * D), want);
    check(err <= BOUND.int8, `${what}: ragged entry ${i} (row ${row}) error ${err}`);
  }
  ragged.dispose();
  // A rolling window of 16 over 100 tokens = attention over all of them with window [15, 0].
  const rolling = engine.createKVCache({ batch: 1, kvHeads: KVH, headDim: D, window: 16 });
  for (let t = 0; t < T; t++) rolling.append(tokens(K, KVH, T, D, t, t + 1), tokens(V, KVH, T, D, t, t + 1));
  const q1 = random(H * D, 3200, 1.5);
  const windowed = referenceAttention(q1, K, V, { batch: 1, heads: H, kvHeads: KVH, seqQ: 1, seqK: T, headDim: D, window: [15, 0] });
  check(ratio(rolling.attend(q1, { heads: H, seqQ: 1 }), windowed) <= 1e-5, `${what}: rolling window differs from attention with the window`);
  rolling.dispose();
  // 16-bit tensors: bits, and a Float16Array where there is one, give the float32 call on the same values.
  const o = { batch: 1, heads: H, kvHeads: KVH, seqQ: 3, seqK: 50, headDim: D };
  const values = [random(H * 3 * D, 3301), random(KVH * 50 * D, 3302), random(KVH * 50 * D, 3303)].map((x) => Float32Array.from(x, toHalf));
  const want = engine.attention(values[0], values[1], values[2], o);
  const bits = values.map((x) => Uint16Array.from(x, halfBitsOf));
  check(same(engine.attention(bits[0], bits[1], bits[2], o), want), `${what}: Uint16Array tensors differ from the float32 call`);
  const F16 = globalThis.Float16Array;
  if (typeof F16 === 'function') {
    const halves = values.map((x) => F16.from(x));
    check(same(engine.attention(halves[0], halves[1], halves[2], o), want), `${what}: Float16Array tensors differ from the float32 call`);
    const out = new F16(want.length);
    engine.attention(halves[0], bits[1], values[2], { ...o, out });
    check(same(out, Float32Array.from(want, toHalf)), `${what}: a Float16Array out is not the result rounded to float16`);
  }
  return { halfTensors: typeof F16 === 'function' ? 'Float16Array and Uint16Array' : 'Uint16Array', worst };
}

/** Element for element, NaN equal to NaN. */
function same(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}
