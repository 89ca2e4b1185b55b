// The runtime smoke suite: one plain-JS ES module, no imports, run unchanged by Node, Deno, Bun, Chromium,
// Firefox, WebKit and a Vite bundle. It takes the imported package (its namespace, or an object with the same
// exports), checks which backend `createAttention()` picked, and compares every backend this runtime supports
// against its own small float64 reference on a handful of shapes. Then threads: where they are available, a
// 2-thread engine must match a single-threaded engine of the same backend element for element, and the float64
// reference; where they are not, createAttention({ threads: 2 }) must throw BACKEND_UNAVAILABLE. Any mismatch
// throws; the result is a plain JSON-able object whose `threads` is 'ok' or 'unavailable: <reason>'.

/** Which backends each runtime must support, by the backend `'auto'` picks. */
const SUPPORTED_BY_PICK = {
  'wasm-relaxed-simd': ['wasm-relaxed-simd', 'wasm-simd', 'js'],
  'wasm-simd': ['wasm-simd', 'js'],
  js: ['js'],
};

/** Deterministic uniform [−1, 1) floats (mulberry32). */
function random(n, seed) {
  let t = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    a[i] = (((r ^ (r >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return a;
}

/**
 * An error as text: name, message and stack. Firefox's and WebKit's `error.stack` holds only the frames, V8's
 * repeats the message; the message is written once either way.
 */
export function describeError(error) {
  if (!(error instanceof Error)) return String(error);
  const head = `${error.name}: ${error.message}`;
  const stack = String(error.stack ?? '');
  return stack.startsWith(head) ? stack : `${head}\n${stack}`;
}

/** What `fn` throws, or null. */
function thrown(fn) {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return null;
}

function maskAt(mask, shape, b, h, i, j) {
  const full = [1, 1, 1, 1];
  for (let d = 0; d < shape.length; d++) full[4 - shape.length + d] = shape[d];
  const idx = [b, h, i, j].map((x, d) => (full[d] === 1 ? 0 : x));
  return mask[((idx[0] * full[1] + idx[1]) * full[2] + idx[2]) * full[3] + idx[3]];
}

/** Weights of one row of scores (null = inadmissible), per the README's activation table. */
function rowWeights(x, o) {
  const S = o.seqK;
  const live = x.filter((s) => s !== null);
  switch (o.activation ?? 'softmax') {
    case 'softmax': {
      if (live.length === 0) return x.map(() => 0);
      const max = Math.max(...live);
      const sum = live.reduce((a, s) => a + Math.exp(s - max), 0);
      return x.map((s) => (s === null ? 0 : Math.exp(s - max) / sum));
    }
    case 'softmax1': {
      const m = Math.max(0, ...live);
      const sum = Math.exp(-m) + live.reduce((a, s) => a + Math.exp(s - m), 0);
      return x.map((s) => (s === null ? 0 : Math.exp(s - m) / sum));
    }
    case 'squared': {
      const sum = live.reduce((a, s) => a + s * s, 0) + (o.epsilon ?? 1e-6);
      return x.map((s) => (s === null ? 0 : (s * s) / sum));
    }
    case 'sigmoid': {
      const bias = o.bias ?? -Math.log(S);
      return x.map((s) => (s === null ? 0 : 1 / (1 + Math.exp(-(s + bias)))));
    }
    case 'relu':
      return x.map((s) => (s === null ? 0 : Math.max(0, s) / S));
    case 'polynomial':
      return x.map((s) => (s === null ? 0 : s ** (o.power ?? 3) / Math.sqrt(S)));
    default:
      throw new Error(`smoke reference: unknown activation ${o.activation}`);
  }
}

/** Float64 reference attention (README semantics): masks, causal alignments, GQA, zero rows. */
export function reference(q, k, v, o) {
  const { batch: B, heads: H, seqQ: L, seqK: S, headDim: D } = o;
  const KVH = o.kvHeads ?? H;
  const Dv = o.headDimV ?? D;
  const scale = o.scale ?? 1 / Math.sqrt(D);
  const shape = o.maskShape ?? [L, S];
  const offset = o.causal === 'bottom-right' ? S - L : 0;
  const out = new Float64Array(B * H * L * Dv);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / KVH));
      for (let i = 0; i < L; i++) {
        const scores = [];
        for (let j = 0; j < S; j++) {
          let x = 0;
          for (let d = 0; d < D; d++) x += q[((b * H + h) * L + i) * D + d] * k[((b * KVH + kvh) * S + j) * D + d];
          x *= scale;
          let admissible = !o.causal || j <= i + offset;
          if (o.mask instanceof Float32Array) x += maskAt(o.mask, shape, b, h, i, j);
          if (o.mask instanceof Uint8Array && maskAt(o.mask, shape, b, h, i, j) === 0) admissible = false;
          if (x === -Infinity) admissible = false;
          scores.push(admissible ? x : null);
        }
        const w = rowWeights(scores, o);
        for (let c = 0; c < Dv; c++) {
          let acc = 0;
          for (let j = 0; j < S; j++) if (w[j] !== 0) acc += w[j] * v[((b * KVH + kvh) * S + j) * Dv + c];
          out[((b * H + h) * L + i) * Dv + c] = acc;
        }
      }
    }
  }
  return out;
}

/** The shapes: tile edges (16-query × 64-key blocks), causal modes, GQA/MQA, both mask kinds, decode. */
function cases(activations) {
  const list = [
    { name: 'square 17x65 d32', o: { batch: 1, heads: 2, seqQ: 17, seqK: 65, headDim: 32 } },
    { name: 'causal top-left 33x33', o: { batch: 2, heads: 1, seqQ: 33, seqK: 33, headDim: 16, causal: true } },
    { name: 'causal bottom-right decode', o: { batch: 1, heads: 4, seqQ: 1, seqK: 129, headDim: 8, causal: 'bottom-right' } },
    { name: 'GQA 4/2, headDimV 5, scale 0.3', o: { batch: 1, heads: 4, kvHeads: 2, seqQ: 9, seqK: 70, headDim: 12, headDimV: 5, scale: 0.3 } },
    { name: 'MQA bool mask [H,1,S]', o: { batch: 1, heads: 3, kvHeads: 1, seqQ: 6, seqK: 20, headDim: 7 }, mask: 'bool', maskShape: [3, 1, 20] },
    { name: 'float mask with -Infinity + causal', o: { batch: 2, heads: 1, seqQ: 20, seqK: 24, headDim: 4, causal: 'bottom-right' }, mask: 'float', maskShape: [2, 1, 20, 24] },
    { name: 'fully masked row → zeros', o: { batch: 1, heads: 1, seqQ: 3, seqK: 5, headDim: 3 }, mask: 'none-row' },
  ];
  for (const activation of activations) {
    if (activation === 'softmax') continue;
    list.push({ name: `activation ${activation}`, o: { batch: 1, heads: 2, seqQ: 18, seqK: 67, headDim: 8, causal: true, activation } });
  }
  return list.map((c, n) => {
    const o = { ...c.o };
    const kvh = o.kvHeads ?? o.heads;
    const dv = o.headDimV ?? o.headDim;
    const q = random(o.batch * o.heads * o.seqQ * o.headDim, 10 * n + 1);
    const k = random(o.batch * kvh * o.seqK * o.headDim, 10 * n + 2);
    const v = random(o.batch * kvh * o.seqK * dv, 10 * n + 3);
    if (c.mask === 'bool' || c.mask === 'float') {
      const noise = random(c.maskShape.reduce((a, d) => a * d, 1), 10 * n + 4);
      o.maskShape = c.maskShape;
      o.mask = c.mask === 'bool'
        ? Uint8Array.from(noise, (x) => (x > -0.4 ? 1 : 0))
        : Float32Array.from(noise, (x) => (x < -0.6 ? -Infinity : 3 * x));
    } else if (c.mask === 'none-row') {
      o.mask = Uint8Array.from({ length: o.seqQ * o.seqK }, (_, idx) => (Math.floor(idx / o.seqK) === 1 ? 0 : 1));
    }
    return { name: c.name, o, q, k, v };
  });
}

function maxError(got, want) {
  if (got.length !== want.length) throw new Error(`output length ${got.length}, expected ${want.length}`);
  let peak = 1;
  let err = 0;
  for (let i = 0; i < want.length; i++) {
    peak = Math.max(peak, Math.abs(want[i]));
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
  }
  return { err, peak };
}

function check(condition, message) {
  if (!condition) throw new Error(`smoke: ${message}`);
}

/**
 * Runs the suite. `expectBackend` is what `createAttention()` must pick in this runtime; from it follows which
 * backends must (and must not) be supported. `expectThreads`: whether a 2-thread engine must run (true), must be
 * unavailable (false), or may be either (undefined). Throws on the first failure; returns a summary otherwise.
 */
export async function runSmoke(pkg, { expectBackend, label = 'runtime', expectThreads } = {}) {
  check(typeof pkg.createAttention === 'function', 'package has no createAttention export');
  check(SUPPORTED_BY_PICK[expectBackend] !== undefined, `unknown expected backend ${expectBackend}`);
  const names = pkg.BACKENDS.map((b) => b.name);
  const supported = names.filter((n) => pkg.isBackendSupported(n));
  const auto = await pkg.createAttention();
  const picked = auto.backend;
  check(picked === expectBackend, `${label}: createAttention() picked ${picked}, expected ${expectBackend}`);
  check(JSON.stringify(supported) === JSON.stringify(SUPPORTED_BY_PICK[expectBackend]),
    `${label}: supported backends ${supported.join(',')}, expected ${SUPPORTED_BY_PICK[expectBackend].join(',')}`);
  for (const n of names.filter((x) => !supported.includes(x))) {
    let code = null;
    try {
      await pkg.createAttention({ backend: n });
    } catch (e) {
      code = e && e.code;
    }
    check(code === 'BACKEND_UNAVAILABLE', `${label}: createAttention({ backend: '${n}' }) should throw BACKEND_UNAVAILABLE, got ${code}`);
  }

  const activations = Array.isArray(pkg.ACTIVATIONS) ? pkg.ACTIVATIONS : ['softmax'];
  const all = cases(activations);
  const checks = [];
  for (const backend of supported) {
    const engine = backend === picked ? auto : await pkg.createAttention({ backend });
    check(engine.backend === backend, `asked for ${backend}, got ${engine.backend}`);
    for (const { name, o, q, k, v } of all) {
      const want = reference(q, k, v, o);
      const got = engine.attention(q, k, v, o);
      check(got instanceof Float32Array, `${backend} ${name}: result is not a Float32Array`);
      const { err, peak } = maxError(got, want);
      check(err <= 1e-5 * peak, `${label} ${backend} ${name}: max abs error ${err} (peak ${peak})`);
      checks.push({ backend, name, err });
    }
    // Bad input: a typed error, and the engine still works afterwards.
    const { o, q, k, v } = all[0];
    let error = thrown(() => engine.attention(q.subarray(1), k, v, o));
    check(error instanceof pkg.AttentionError && error.code === 'SHAPE_MISMATCH' && error.argument === 'q',
      `${backend}: a short q must throw AttentionError SHAPE_MISMATCH on 'q', got ${error}`);
    const again = maxError(engine.attention(q, k, v, o), reference(q, k, v, o));
    check(again.err <= 1e-5 * again.peak, `${backend}: wrong result after an error`);
    engine.dispose();
    error = thrown(() => engine.attention(q, k, v, o));
    check(error instanceof pkg.AttentionError && error.code === 'DISPOSED', `${backend}: use after dispose must throw DISPOSED, got ${error}`);
  }
  const worst = Math.max(...checks.map((c) => c.err));
  const threaded = await runThreads(pkg, { picked, label, activations, expectThreads });
  return {
    label, picked, supported, activations: [...activations], checks: checks.length, worstError: worst,
    threads: threaded.status, threadChecks: threaded.checks, threadWorstError: threaded.worstError,
  };
}

/** Shapes for the threaded engine: several 64-row work items per call (so every thread gets some), causal, GQA. */
function threadCases(activations) {
  const list = [
    { name: 'threads: 2x3 heads, 130x65 d13', o: { batch: 2, heads: 3, seqQ: 130, seqK: 65, headDim: 13 } },
    { name: 'threads: causal top-left 200x200 d16', o: { batch: 1, heads: 2, seqQ: 200, seqK: 200, headDim: 16, causal: true } },
    { name: 'threads: GQA 8/2 bottom-right 97x150, headDimV 5', o: { batch: 1, heads: 8, kvHeads: 2, seqQ: 97, seqK: 150, headDim: 24, headDimV: 5, causal: 'bottom-right' } },
    { name: 'threads: MQA 6/1 bool mask [S] 70x33', o: { batch: 1, heads: 6, kvHeads: 1, seqQ: 70, seqK: 33, headDim: 8 }, mask: 'bool' },
    { name: 'threads: decode seqQ 1, 8 heads', o: { batch: 1, heads: 8, kvHeads: 2, seqQ: 1, seqK: 90, headDim: 32, causal: 'bottom-right' } },
  ];
  if (activations.includes('sigmoid')) {
    list.push({ name: 'threads: sigmoid causal 100x70', o: { batch: 1, heads: 3, seqQ: 100, seqK: 70, headDim: 16, causal: true, activation: 'sigmoid' } });
  }
  return list.map((c, n) => {
    const o = { ...c.o };
    const kvh = o.kvHeads ?? o.heads;
    const q = random(o.batch * o.heads * o.seqQ * o.headDim, 1000 + 10 * n + 1);
    const k = random(o.batch * kvh * o.seqK * o.headDim, 1000 + 10 * n + 2);
    const v = random(o.batch * kvh * o.seqK * (o.headDimV ?? o.headDim), 1000 + 10 * n + 3);
    if (c.mask === 'bool') {
      o.mask = Uint8Array.from(random(o.seqK, 1000 + 10 * n + 4), (x) => (x > -0.5 ? 1 : 0));
      o.maskShape = [o.seqK];
    }
    return { name: c.name, o, q, k, v };
  });
}

/** Tokens from..from+n of a [1, KVH, T, D] tensor, as [1, KVH, n, D]. */
function tokens(x, KVH, T, D, from, n) {
  const out = new Float32Array(KVH * n * D);
  for (let h = 0; h < KVH; h++) out.set(x.subarray((h * T + from) * D, (h * T + from + n) * D), h * n * D);
  return out;
}

function identical(got, want, what) {
  check(got instanceof Float32Array && got.length === want.length, `${what}: result length ${got.length}, expected ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) throw new Error(`smoke: ${what}: element ${i} is ${got[i]} with 2 threads, ${want[i]} with 1`);
  }
}

/**
 * The threads check. `expectThreads`: true = they must run, false = createAttention({ threads: 2 }) must throw
 * BACKEND_UNAVAILABLE, undefined = either (reported).
 */
async function runThreads(pkg, { picked, label, activations, expectThreads }) {
  let engine;
  try {
    engine = await pkg.createAttention({ threads: 2 });
  } catch (e) {
    check(e instanceof pkg.AttentionError && e.code === 'BACKEND_UNAVAILABLE' && e.argument === 'options.threads',
      `${label}: createAttention({ threads: 2 }) must succeed or throw AttentionError BACKEND_UNAVAILABLE on 'options.threads', got ${describeError(e)}`);
    check(expectThreads !== true, `${label}: threads were expected to run, but createAttention({ threads: 2 }) threw: ${e.message}`);
    return { status: `unavailable: ${e.message}`, checks: 0, worstError: 0 };
  }
  check(expectThreads !== false, `${label}: threads were expected to be unavailable, but createAttention({ threads: 2 }) succeeded`);
  check(engine.threads === 2, `${label}: engine.threads is ${engine.threads}, expected 2`);
  check(engine.backend === picked, `${label}: threaded engine runs ${engine.backend}, expected ${picked}`);
  const single = await pkg.createAttention({ backend: engine.backend });
  check(single.threads === 1, `${label}: a single-threaded engine reports threads ${single.threads}`);
  let checks = 0;
  let worst = 0;
  const compare = (got, want, q, k, v, o, what) => {
    identical(got, want, `${label} ${engine.backend} ${what}`);
    const { err, peak } = maxError(got, reference(q, k, v, o));
    check(err <= 1e-5 * peak, `${label} ${engine.backend} ${what}: max abs error ${err} (peak ${peak})`);
    worst = Math.max(worst, err);
    checks++;
  };
  const cases = threadCases(activations);
  for (const { name, o, q, k, v } of cases) {
    compare(engine.attention(q, k, v, o), single.attention(q, k, v, o), q, k, v, o, name);
  }

  // A KV cache on each engine: a 150-token prefill attended by 70 queries, then decode steps of one token each.
  const [H, KVH, D, T] = [8, 2, 16, 160];
  const K = random(KVH * T * D, 2001);
  const V = random(KVH * T * D, 2002);
  const caches = [engine, single].map((e) => e.createKVCache({ batch: 1, kvHeads: KVH, headDim: D, capacity: T }));
  const step = (from, n, seqQ, seed) => {
    for (const c of caches) c.append(tokens(K, KVH, T, D, from, n), tokens(V, KVH, T, D, from, n));
    const len = from + n;
    const q = random(H * seqQ * D, seed);
    const attend = { heads: H, seqQ, causal: 'bottom-right' };
    const o = { ...attend, batch: 1, kvHeads: KVH, seqK: len, headDim: D };
    compare(caches[0].attend(q, attend), caches[1].attend(q, attend), q, tokens(K, KVH, T, D, 0, len), tokens(V, KVH, T, D, 0, len), o,
      `threads: KV cache ${seqQ === 1 ? 'decode' : 'prefill'} seqQ ${seqQ} over ${len} tokens`);
  };
  step(0, 150, 70, 2003);
  for (let t = 150; t < 155; t++) step(t, 1, 1, 2004 + t);
  for (const c of caches) c.dispose();

  // Bad input throws before any work, and the threaded engine keeps working.
  const { o, q, k, v } = cases[0];
  let error = thrown(() => engine.attention(q, k.subarray(1), v, o));
  check(error instanceof pkg.AttentionError && error.code === 'SHAPE_MISMATCH',
    `${label}: a short k on a threaded engine must throw SHAPE_MISMATCH, got ${error}`);
  compare(engine.attention(q, k, v, o), single.attention(q, k, v, o), q, k, v, o, 'threads: after an error');
  engine.dispose();
  single.dispose();
  error = thrown(() => engine.attention(q, k, v, o));
  check(error instanceof pkg.AttentionError && error.code === 'DISPOSED', `${label}: a disposed threaded engine must throw DISPOSED, got ${error}`);
  return { status: 'ok', checks, worstError: worst };
}
