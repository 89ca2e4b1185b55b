// Where a call's time goes, from a sampling profile: `npm run profile -- [shape] [--out] [--ms N]`.
// Needs Linux `perf` (Debian: linux-perf; software clock only, so it works in VMs without PMU counters) and a
// built package (npm run build). It runs the shape's whole calls for --ms milliseconds in a child Node under
// `perf record -e cpu-clock`, with V8's --perf-prof so jitted wasm has symbols, names wasm functions from
// build/relaxed-simd.wat, and prints the time by part: the f32-qk/f32-pv register-tile loops (found as the
// backward-branch loops of attendPass (block.ts) holding ≥ 8 vfmadd), the rest of the kernels, copies (libc memmove /
// memset), the OS (page faults of fresh output arrays), V8/JS. It also prints the loops' own rate: every FLOP
// of a call is done in them, so FLOPs ÷ (time in the loops) against the FMA peak measured in the same child
// is how close the tiles run to the peak in place (the micro-benchmark's ceiling), the rest is what a call
// spends around them; and the softmax stage alone (softmaxRows4 on S2's key-block shape), the other cost of every
// softmax call. x64 only (the loop detection reads x64 instructions).
//   shape: a case id of test/runtimes/cases.mjs (S1–S5, MiniLM-L6, BERT-base, ViT-B/16, …) or H,L,S,D.
//   --out: pass `out` (a reused Float32Array) instead of allocating the result per call.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const WARMUP_MS = 1500;

if (process.env.PROFILE_CHILD) await child();
else parent();

/** The profiled process: warm up, then call for MS ms and report calls, FLOPs per call and the peak. */
async function child() {
  const { createAttention } = await import(join(root, 'dist/index.js'));
  const { measureExponents, measurePeak, measureTiles } = await import(join(root, 'bench/sections/peak.mjs'));
  const { computedFlops } = await import(join(root, 'bench/sections/timing.mjs'));
  const { SHAPES, MODEL_SHAPES, inputsFor, optionsOf } = await import(join(root, 'test/runtimes/cases.mjs'));
  const s = shapeOf(process.env.PROFILE_SHAPE || undefined, [...SHAPES, ...MODEL_SHAPES]); // '': no shape given
  const engine = await createAttention({ backend: 'wasm-relaxed-simd' });
  const { q, k, v } = inputsFor(s);
  const o = optionsOf(s);
  if (process.env.PROFILE_OUT) o.out = new Float32Array(s.batch * s.heads * s.seqQ * (s.headDimV ?? s.headDim));
  const peak = measurePeak({ rounds: 5, ms: 20 }).gflops; // before recording starts (perf record -D)
  const tiles = measureTiles(); // GFLOP/s
  const exps = measureExponents(peak); // ns and cycles per 4-score vector
  const until = performance.now() + WARMUP_MS;
  while (performance.now() < until) engine.attention(q, k, v, o);
  const t0 = performance.now();
  let calls = 0;
  while (performance.now() - t0 < Number(process.env.PROFILE_MS)) {
    engine.attention(q, k, v, o);
    calls++;
  }
  const ms = (performance.now() - t0) / calls;
  console.log(JSON.stringify({ id: s.id, calls, ms, flops: computedFlops(s), peak, tiles, exps }));
}

function shapeOf(arg = 'BERT-base', cases) {
  const known = cases.find((c) => c.id === arg);
  if (known) return known;
  const n = arg.split(',').map(Number);
  if (n.length !== 4 || n.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`unknown shape ${arg}: a case id or H,L,S,D`);
  const [heads, seqQ, seqK, headDim] = n;
  return { id: arg, batch: 1, heads, seqQ, seqK, headDim };
}

function parent() {
  const args = process.argv.slice(2);
  const ms = Number(args.includes('--ms') ? args[args.indexOf('--ms') + 1] : 4000);
  const shape = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--ms');
  if (spawnSync('perf', ['--version']).status !== 0) {
    console.error('profile: needs Linux perf (Debian: apt-get install linux-perf)');
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), 'attention-profile-'));
  const hz = Number(process.env.PROFILE_HZ ?? 999);
  try {
    const run = spawnSync('perf', [
      'record', '-D', String(WARMUP_MS + 300), '-e', 'cpu-clock', '-F', String(hz), '-k', 'mono', '-o', 'perf.data', '--',
      process.execPath, '--experimental-wasm-relaxed-simd', '--perf-prof', '--no-wasm-lazy-compilation', fileURLToPath(import.meta.url),
    ], { cwd: dir, encoding: 'utf8', env: { ...process.env, PROFILE_CHILD: '1', PROFILE_SHAPE: shape ?? '', PROFILE_MS: String(ms), PROFILE_OUT: args.includes('--out') ? '1' : '' } });
    if (run.status !== 0) throw new Error(`perf record failed: ${run.stderr}`);
    const info = JSON.parse(run.stdout.trim().split('\n').pop());
    execFileSync('perf', ['inject', '--jit', '-i', 'perf.data', '-o', 'jit.data'], { cwd: dir, stdio: 'ignore' });
    report(dir, info, hz);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Function names of the wasm module by index (its functions in the .wat's order; the module imports none). */
function wasmNames() {
  const wat = readFileSync(join(root, 'build/relaxed-simd.wat'), 'utf8');
  return [...wat.matchAll(/^ ?\(func \$(\S+)/gm)].map((m) => m[1].split('/').pop());
}

function report(dir, info, hz) {
  const names = wasmNames();
  const text = execFileSync('perf', ['report', '-i', 'jit.data', '--stdio', '--sort', 'dso,symbol'], { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 28 });
  const parts = new Map();
  let attendSymbol = null;
  const add = (k, p) => parts.set(k, (parts.get(k) ?? 0) + p);
  for (const line of text.split('\n')) {
    const m = /^\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*(?:-\s+-\s*)?$/.exec(line);
    if (!m) continue;
    const [, pct, dso, kind, symbol] = m;
    const p = Number(pct);
    const wasm = /wasm-function\[(\d+)\]-\d+-(\w+)/.exec(symbol);
    if (wasm && wasm[2] === 'turbofan' && names[Number(wasm[1])] === 'attendPass') attendSymbol = symbol.split(/\s+/)[0];
    if (wasm) add(`wasm ${names[Number(wasm[1])] ?? wasm[1]}`, p);
    else if (/memmove|memcpy|memset/.test(symbol)) add('copies (libc memmove/memset)', p);
    else if (kind === 'k') add('OS kernel (page faults, syscalls)', p);
    else if (/^JS:|^Builtins|^v8::|^node::/.test(symbol) || dso === 'node') add('V8 / JS', p);
    else add(`other (${dso})`, p);
  }
  const callsShare = [...parts.values()].reduce((a, b) => a + b, 0);
  let loops = 0;
  if (attendSymbol) loops = loopShare(dir, attendSymbol) * (parts.get('wasm attendPass') ?? 0) / 100;
  if (loops > 0) {
    add('wasm attendPass', -loops);
    add('wasm attendPass: f32-qk / f32-pv tile loops', loops);
  }
  const inLoops = (info.calls * info.ms * loops) / callsShare; // ms of the timed window spent in the loops
  const loopRate = (info.calls * info.flops) / inLoops / 1e6;
  console.log(`${info.id}: ${info.calls} calls, ${info.ms.toFixed(3)} ms per call, ${(info.flops / info.ms / 1e6).toFixed(1)} GFLOP/s = ${(100 * info.flops / info.ms / 1e6 / info.peak).toFixed(0)} % of the peak ${info.peak.toFixed(1)} GFLOP/s measured in the same process (${Math.round(info.calls * info.ms)} ms sampled at ${hz} Hz)`);
  for (const [k, p] of [...parts].sort((a, b) => b[1] - a[1])) if (p >= 0.1) console.log(`  ${(100 * p / callsShare).toFixed(1).padStart(5)} %  ${k}`);
  if (loops > 0) console.log(`tile loops: ${loopRate.toFixed(1)} GFLOP/s while in them = ${(100 * loopRate / info.peak).toFixed(0)} % of the peak (every FLOP of the call is done there)`);
  const pc = ([median, best]) => `median ${(100 * median / info.peak).toFixed(0)} %, best ${(100 * best / info.peak).toFixed(0)} %`;
  if (info.tiles) console.log(`the same loops alone on data in L1, 40 rounds: f32-qk-4x8 ${pc(info.tiles.qk)}, f32-pv-4x8 ${pc(info.tiles.pv)} of the peak`);
  if (info.exps) console.log(`softmaxRows4 alone (16 four-row groups × 128 keys, as in S2): ${info.exps.ns.toFixed(2)} ns per 4-score vector, ≈ ${info.exps.cycles.toFixed(1)} cycles at the peak's clock`);
}

/** Share (%) of attendPass's samples inside its tile loops: backward branches spanning ≥ 8 vfmadd. */
function loopShare(dir, symbol) {
  const text = execFileSync('perf', ['annotate', '-i', 'jit.data', '--stdio', '-s', symbol], { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 28 });
  const rows = [];
  for (const line of text.split('\n')) {
    const m = /^\s+([\d.]+)\s+:\s+([0-9a-f]+):\s+(.*)$/.exec(line);
    if (m) rows.push({ p: Number(m[1]), at: parseInt(m[2], 16), ins: m[3] });
  }
  const spans = [];
  for (const r of rows) {
    const j = /^j\w+\s+([0-9a-f]+)/.exec(r.ins);
    if (!j) continue;
    const to = parseInt(j[1], 16);
    if (to >= r.at || r.at - to > 0x800) continue;
    if (rows.filter((x) => x.at >= to && x.at <= r.at && x.ins.startsWith('vfmadd')).length >= 8) spans.push([to, r.at]);
  }
  const inside = (at) => spans.some(([a, b]) => at >= a && at <= b);
  const all = rows.reduce((s, r) => s + r.p, 0);
  return all > 0 ? (100 * rows.filter((r) => inside(r.at)).reduce((s, r) => s + r.p, 0)) / all : 0;
}
