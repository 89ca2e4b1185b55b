// The wasm FMA peak of this machine, measured in the same process as the benchmarks, so every row can report its
// share of it: 12 independent f32x4.relaxed_madd chains in a loop (enough to cover FMA latency × issue width on
// current x64 and arm64 cores), 96 flops per iteration. The module is a few hand-assembled bytes (no build step).
// Where relaxed SIMD is off, the chains use f32x4.mul + f32x4.add (the SIMD build's best), reported as such.

import { readFileSync } from 'node:fs';

const CHAINS = 12;
const uleb = (n) => {
  const out = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
};
const section = (id, bytes) => [id, ...uleb(bytes.length), ...bytes];
const f32 = (x) => [...new Uint8Array(new Float32Array([x]).buffer)];
const SIMD = 0xfd;

/** (func (param $n i32) (result f32)): runs $n iterations of CHAINS chains c ← c·a + b, returns a lane sum. */
function peakModule(relaxed) {
  const A = CHAINS, B = CHAINS + 1; // locals after the param: c0..c11, a, b (v128)
  const body = [];
  const get = (i) => [0x20, ...uleb(i + 1)];
  const set = (i) => [0x21, ...uleb(i + 1)];
  // a = 0.999, b = 1e-3: every chain converges to 1 (no overflow, no subnormals); c_i starts at i.
  body.push(0x43, ...f32(0.999), SIMD, ...uleb(0x13), ...set(A));
  body.push(0x43, ...f32(1e-3), SIMD, ...uleb(0x13), ...set(B));
  for (let i = 0; i < CHAINS; i++) body.push(0x43, ...f32(i), SIMD, ...uleb(0x13), ...set(i));
  body.push(0x03, 0x40); // loop
  for (let i = 0; i < CHAINS; i++) {
    if (relaxed) body.push(...get(i), ...get(A), ...get(B), SIMD, ...uleb(0x105)); // f32x4.relaxed_madd(c, a, b)
    else body.push(...get(i), ...get(A), SIMD, ...uleb(0xe6), ...get(B), SIMD, ...uleb(0xe4)); // f32x4.mul, f32x4.add
    body.push(...set(i));
  }
  // $n -= 1; br_if 0 ($n != 0)
  body.push(0x20, 0, 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0, 0x0b);
  body.push(...get(0));
  for (let i = 1; i < CHAINS; i++) body.push(...get(i), SIMD, ...uleb(0xe4));
  body.push(SIMD, ...uleb(0x1f), 0, 0x0b); // f32x4.extract_lane 0; end
  const locals = [1, ...uleb(CHAINS + 2), 0x7b];
  const func = [...locals, ...body];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 1, 0x7f, 1, 0x7d]),
    ...section(3, [1, 0]),
    ...section(7, [1, 4, ...[...'peak'].map((c) => c.charCodeAt(0)), 0, 0]),
    ...section(10, [1, ...uleb(func.length), ...func]),
  ]);
}

/**
 * GFLOP/s of one core's wasm FMA peak: the best of `rounds` timed runs of ≈ `ms` each (the best, not the median:
 * a peak is what the core can do when nothing else runs). `relaxed` false where the runtime lacks relaxed SIMD.
 */
export function measurePeak({ rounds = 7, ms = 40 } = {}) {
  const relaxed = WebAssembly.validate(peakModule(true));
  const bytes = peakModule(relaxed);
  const { peak } = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
  peak(1e5); // tier up
  let n = 1e5;
  for (;;) {
    const t = performance.now();
    peak(n);
    const dt = performance.now() - t;
    if (dt > ms / 4) {
      n = Math.ceil((n * ms) / dt);
      break;
    }
    n *= 4;
  }
  let best = 0;
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    peak(n);
    const dt = performance.now() - t;
    best = Math.max(best, (n * CHAINS * 8) / dt / 1e6);
  }
  return { gflops: best, relaxed, chains: CHAINS };
}

/** The testing build's exports (build/testing-relaxed-simd.wasm), instantiated once; null where it is missing. */
let tileKernels;
function kernels() {
  if (tileKernels !== undefined) return tileKernels;
  tileKernels = null;
  let bytes;
  try {
    bytes = readFileSync(new URL('../../build/testing-relaxed-simd.wasm', import.meta.url));
  } catch {
    return null;
  }
  if (!WebAssembly.validate(bytes)) return null; // no relaxed SIMD here
  const k = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
  k.memory.grow(8);
  const f = new Float32Array(k.memory.buffer);
  for (let i = TILE_BASE >> 2; i < (TILE_BASE + (1 << 18)) >> 2; i++) f[i] = ((i * 7919) % 1000) / 1000 - 0.5;
  f.fill(1, (TILE_BASE + 0x1c000) >> 2, ((TILE_BASE + 0x1c000) >> 2) + 4); // corr = 1
  return (tileKernels = k);
}
const TILE_BASE = 1 << 16;

/**
 * The attention kernels' register-tile loops alone, on data in L1 (build/testing-relaxed-simd.wasm, built by
 * `npm run build`: f32_qk_4x8p_n over 4 key panels of D = 64, f32_pv_4x8b_n over 32 keys × 64 columns), in 40
 * rounds of ≈ 1 ms each: { qk, pv } as [median, best] GFLOP/s. A whole call cannot run faster than its tile
 * loops, so this bounds every row on this machine; null where the testing build is missing.
 */
export function measureTiles() {
  const k = kernels();
  if (k === null) return null;
  const q = TILE_BASE, s = q + 0x4000, kp = q + 0x8000, v = q + 0x10000, acc = q + 0x18000, corr = q + 0x1c000;
  // FLOPs per call: qk 4 panels × 4 rows × 8 keys × 64 × 2; pv 8 column groups × 32 keys × 4 rows × 8 × 2.
  const qk = (n) => { for (let i = 0; i < n; i++) k.f32_qk_4x8p_n(q, kp, 64, s, 512, 4); return n * 16384; };
  const pv = (n) => { for (let i = 0; i < n; i++) k.f32_pv_4x8b_n(s, v, 32 * 32, 32, 32, acc, 256, corr, 8); return n * 16384; };
  const rates = (fn) => {
    fn(20000); // tier up
    const xs = roundRates(fn, 1500, 40).map((perMs) => perMs / 1e6); // GFLOP/s
    return [xs[20], xs[39]];
  };
  return { qk: rates(qk), pv: rates(pv) };
}

/** `rounds` timed runs of fn(n), which returns how much work it did: work per ms of each run, ascending. */
function roundRates(fn, n, rounds) {
  const xs = [];
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    const work = fn(n);
    xs.push(work / (performance.now() - t));
  }
  return xs.sort((a, b) => a - b);
}

/**
 * The softmax stage alone (softmaxRows4, the testing build): a key block of 16 four-row groups × 128 keys, as in
 * S2, repeated in place (scores stay in [0, 1] after the first pass, every call takes the one-op exponent path).
 * Returns { ns, cycles } per 4-score vector, median of 15 rounds; cycles from the peak's clock (2 FMA pipes ×
 * 4 lanes × 2 flops per cycle), null where the testing build is missing.
 */
export function measureExponents(peakGflops) {
  const k = kernels();
  if (k === null) return null;
  const s = TILE_BASE + 0x20000, state = s + 16 * 4 * 512;
  const f = new Float32Array(k.memory.buffer);
  for (let i = 0; i < 16 * 4 * 128; i++) f[(s >> 2) + i] = Math.sin(i * 0.37) * 8;
  f.fill(-Infinity, state >> 2, (state >> 2) + 4).fill(0, (state >> 2) + 4, (state >> 2) + 16); // max, sum, corr, ε
  const run = (n) => { // returns the 4-score vectors it exponentiated
    for (let i = 0; i < n; i++) {
      for (let g = 0; g < 16; g++) k.softmaxRows4(s + g * 2048, 512, 128, 0.125, state, state + 16, state + 32, state + 48);
    }
    return n * 16 * 4 * 32;
  };
  run(2000); // tier up
  const ns = 1e6 / roundRates(run, 300, 15)[7]; // the median round's vectors per ms, as ns per vector
  return { ns, cycles: ns * (peakGflops / 16) };
}
