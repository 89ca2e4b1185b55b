// The runtime smoke suite: plain-JS ES modules (this one, cases.mjs and reference.mjs, nothing else), run
// unchanged by Node, Deno, Bun, Chromium, Firefox, WebKit and a Vite bundle. It takes the imported package (its namespace, or an
// object with the same exports), checks which backend `createAttention()` picked, and compares every backend this
// runtime supports against the float64 reference (reference.mjs) on the shapes of cases.mjs. Then threads: where
// they are available, a 2-thread engine must match a single-threaded engine of the same backend element for
// element, and the float64 reference; where they are not, createAttention({ threads: 2 }) must throw
// BACKEND_UNAVAILABLE. Any mismatch throws; the result is a plain JSON-able object whose `threads` is 'ok' or
// 'unavailable: <reason>'.

import { cases, closeTo, linearCases, random, referenceAttention, referenceLinear, threadCases } from './cases.mjs';
import { checkCaches } from './smoke-kv.mjs';

/** Which backends each runtime must support, by the backend `'auto'` picks. */
const SUPPORTED_BY_PICK = {
  'wasm-relaxed-simd': ['wasm-relaxed-simd', 'wasm-simd', 'js'],
  'wasm-simd': ['wasm-simd', 'js'],
  js: ['js'],
};

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
    // With threads too the backend is the reason, not threads (Node 20 without --experimental-wasm-relaxed-simd).
    let argument = null;
    try {
      await pkg.createAttention({ backend: n, threads: 2 });
    } catch (e) {
      argument = e && e.code === 'BACKEND_UNAVAILABLE' ? e.argument : `${e && e.code}`;
    }
    check(argument === 'options.backend', `${label}: createAttention({ backend: '${n}', threads: 2 }) should throw BACKEND_UNAVAILABLE on options.backend, got ${argument}`);
  }

  const activations = Array.isArray(pkg.ACTIVATIONS) ? pkg.ACTIVATIONS : ['softmax'];
  const all = cases(activations);
  const checks = [];
  const caches = {}; // per backend: float16/int8 cache errors, which 16-bit arrays were checked
  for (const backend of supported) {
    const engine = backend === picked ? auto : await pkg.createAttention({ backend });
    check(engine.backend === backend, `asked for ${backend}, got ${engine.backend}`);
    for (const { name, o, q, k, v } of all) {
      const got = engine.attention(q, k, v, o);
      check(got instanceof Float32Array, `${backend} ${name}: result is not a Float32Array`);
      const { err, tol, ok } = closeTo(got, referenceAttention(q, k, v, o));
      check(ok, `${label} ${backend} ${name}: max abs error ${err} (tolerance ${tol}, ${got.length} elements)`);
      checks.push({ backend, name, err });
    }
    checkLinear(pkg, engine, `${label} ${backend}`, checks);
    caches[backend] = checkCaches(pkg, engine, `${label} ${backend}`);
    // Bad input: a typed error, and the engine still works afterwards.
    const { o, q, k, v } = all[0];
    let error = thrown(() => engine.attention(q.subarray(1), k, v, o));
    check(error instanceof pkg.AttentionError && error.code === 'SHAPE_MISMATCH' && error.argument === 'q',
      `${backend}: a short q must throw AttentionError SHAPE_MISMATCH on 'q', got ${error}`);
    check(closeTo(engine.attention(q, k, v, o), referenceAttention(q, k, v, o)).ok, `${backend}: wrong result after an error`);
    engine.dispose();
    error = thrown(() => engine.attention(q, k, v, o));
    check(error instanceof pkg.AttentionError && error.code === 'DISPOSED', `${backend}: use after dispose must throw DISPOSED, got ${error}`);
  }
  const worst = Math.max(...checks.map((c) => c.err));
  const threaded = await runThreads(pkg, { picked, label, activations, expectThreads });
  return {
    label, picked, supported, activations: [...activations], checks: checks.length, worstError: worst, caches,
    threads: threaded.status, threadChecks: threaded.checks, threadWorstError: threaded.worstError,
  };
}

/** Positions t0..t1 of a [B, heads, T, dim] tensor. */
function positions(x, BH, T, dim, t0, t1) {
  const out = new Float32Array(BH * (t1 - t0) * dim);
  for (let i = 0; i < BH; i++) out.set(x.subarray((i * T + t0) * dim, (i * T + t1) * dim), i * (t1 - t0) * dim);
  return out;
}

/** Linear attention against referenceLinear; `stream` cases also through a state in two pieces (= one call). */
function checkLinear(pkg, engine, what, checks) {
  for (const { name, o, q, k, v, stream } of linearCases()) {
    const got = engine.linearAttention(q, k, v, o);
    const { err, tol, ok } = closeTo(got, referenceLinear(q, k, v, o));
    check(ok, `${what} ${name}: max abs error ${err} (tolerance ${tol})`);
    checks.push({ backend: engine.backend, name, err });
    if (!stream) continue;
    const { batch: B, heads: H, seqK: T, headDim: D } = o;
    const KVH = o.kvHeads ?? H, Dv = o.headDimV ?? D, cut = T - 3;
    const state = engine.createLinearState({ batch: B, heads: H, headDim: D, headDimV: Dv });
    const parts = [[0, cut], [cut, T]].map(([t0, t1]) => engine.linearAttention(positions(q, B * H, T, D, t0, t1),
      positions(k, B * KVH, T, D, t0, t1), positions(v, B * KVH, T, Dv, t0, t1),
      { ...o, seqQ: t1 - t0, seqK: t1 - t0, state, gates: o.gates && positions(o.gates, B * H, T, 1, t0, t1) }));
    check(state.length === T, `${what} ${name}: state.length ${state.length}, expected ${T}`);
    for (let i = 0; i < B * H; i++) {
      const whole = got.subarray(i * T * Dv, (i + 1) * T * Dv);
      const pieces = [...parts[0].subarray(i * cut * Dv, (i + 1) * cut * Dv), ...parts[1].subarray(i * 3 * Dv, (i + 1) * 3 * Dv)];
      check(closeTo(pieces, whole).ok, `${what} ${name}: two pieces through a state differ from one call`);
    }
    state.dispose();
    const error = thrown(() => engine.linearAttention(q, k, v, { ...o, state }));
    check(error instanceof pkg.AttentionError && error.code === 'DISPOSED', `${what}: a disposed state must throw DISPOSED, got ${error}`);
  }
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
    const { err, tol, ok } = closeTo(got, referenceAttention(q, k, v, o));
    check(ok, `${label} ${engine.backend} ${what}: max abs error ${err} (tolerance ${tol})`);
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
