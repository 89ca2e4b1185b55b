// The options real models need (issue 9), each timed against the call without it in interleaved rounds on one
// engine, so the ratio comes from one time window: a sliding window against plain causal attention at long
// context, a packed-documents (block-diagonal) mask against no mask, and the cost of ALiBi, sinks and RoPE on S2.
import { random, referenceAttention, relativeError, SHAPES, inputsFor, optionsOf } from '../../test/runtimes/cases.mjs';
import { fixedMedian } from './timing.mjs';

/** Base and variant in `rounds` interleaved rounds; each keeps its median round. */
async function ab(base, variant, iterations, rounds = 3) {
  const a = [], b = [];
  for (let r = 0; r < rounds; r++) {
    a.push(await fixedMedian(base, iterations));
    b.push(await fixedMedian(variant, iterations));
  }
  const mid = (x) => x.sort((p, q) => p - q)[x.length >> 1];
  return { base: mid(a), variant: mid(b) };
}

/** The first `rows` query rows of every head of a (1, H, L, D) tensor. */
function firstRows(x, H, L, D, rows) {
  const out = new Float32Array(H * rows * D);
  for (let h = 0; h < H; h++) out.set(x.subarray(h * L * D, (h * L + rows) * D), h * rows * D);
  return out;
}

/** Throws unless `got` matches `want` (both (1, H, rows, D)) to 1e-5 of its peak. */
function check(label, got, want) {
  const err = relativeError(got, want);
  if (!(err <= 1e-5)) throw new Error(`${label}: relative error ${err} against float64`);
}

export async function modelsSection(engine) {
  const rows = [];
  const row = (label, base, variant, r, target) =>
    rows.push(`| ${label} | ${base.toFixed(2)} | ${variant.toFixed(2)} | ${r} | ${target} |`);

  // Sliding window 512 (Mistral-style [511, 0] with causal) against plain causal, B1 H4 L8192 D64.
  {
    const o = { batch: 1, heads: 4, seqQ: 8192, seqK: 8192, headDim: 64, causal: true };
    const q = random(4 * 8192 * 64, 1), k = random(4 * 8192 * 64, 2), v = random(4 * 8192 * 64, 3);
    const w = { ...o, window: [511, 0] };
    // The first 600 queries of a causal call see only the first 600 keys: a float64 check of that corner.
    const n = 600, head = (x) => firstRows(x, 4, 8192, 64, n);
    check('window 512', head(engine.attention(q, k, v, w)), referenceAttention(head(q), head(k), head(v), { ...w, seqQ: n, seqK: n }));
    const t = await ab(() => engine.attention(q, k, v, o), () => engine.attention(q, k, v, w), 2, 2);
    row('sliding window 512 vs causal, B1 H4 L8192 D64', t.base, t.variant, `${(t.base / t.variant).toFixed(2)}× faster`, '≥ 5× (ideal ≈ 7×)');
  }
  // 8 packed documents: block-diagonal bool mask against no mask, B1 H8 L2048 D64 (density 1/8).
  {
    const L = 2048, H = 8, D = 64, size = L / 8;
    const mask = new Uint8Array(L * L);
    for (let i = 0; i < L; i++) mask.fill(1, i * L + Math.floor(i / size) * size, i * L + (Math.floor(i / size) + 1) * size);
    const o = { batch: 1, heads: H, seqQ: L, seqK: L, headDim: D };
    const q = random(H * L * D, 4), k = random(H * L * D, 5), v = random(H * L * D, 6);
    const n = 64; // the first 64 queries, against every key (no position rule depends on seqQ here)
    check('8 documents', firstRows(engine.attention(q, k, v, { ...o, mask }), H, L, D, n),
      referenceAttention(firstRows(q, H, L, D, n), k, v, { ...o, seqQ: n, mask: mask.subarray(0, n * L) }));
    const t = await ab(() => engine.attention(q, k, v, o), () => engine.attention(q, k, v, { ...o, mask }), 3);
    row('8-document block-diagonal bool mask vs no mask, B1 H8 L2048 D64', t.base, t.variant, `${(t.base / t.variant).toFixed(2)}× faster`, '≥ 5×');
  }
  // ALiBi, sinks and RoPE on S2 against the plain call.
  {
    const s2 = SHAPES.find((s) => s.id === 'S2');
    const o = optionsOf(s2);
    const { q, k, v } = inputsFor(s2);
    const H = s2.heads;
    const variants = [
      ['ALiBi', { alibiSlopes: Float32Array.from({ length: H }, (_, h) => 2 ** (-8 * (h + 1) / H)) }],
      ['sinks', { sinks: Float32Array.from({ length: H }, (_, h) => h / H) }],
      ['RoPE (headDim channels, base 10000)', { rope: {} }],
    ];
    for (const [label, extra] of variants) {
      const x = { ...o, ...extra };
      check(label, engine.attention(q, k, v, x), referenceAttention(q, k, v, x));
      const t = await ab(() => engine.attention(q, k, v, o), () => engine.attention(q, k, v, x), 15, 5);
      row(`${label} on S2 (${s2.label})`, t.base, t.variant, `${((t.variant / t.base - 1) * 100).toFixed(1)} % cost`, '≤ 10 %');
    }
  }
  return [`Model options (${engine.backend})`,
    'Each variant against the same call without it, in interleaved rounds on one engine (median of the round ' +
    'medians); every variant is checked against the float64 reference first.\n\n' +
    '| case | without ms | with ms | result | target |\n|---|---:|---:|---:|---|\n' + rows.join('\n')];
}
