// `npm run test:runtimes`: the smoke suite (smoke.mjs) in every JS runtime we ship for, each importing the
// installed package by name from a consumer project (consumer.mjs). Deno runs with no permissions at all.
// Each runtime must pick the backend listed here and run threads where listed; a wrong pick, a wrong number or
// a threaded engine that differs from a single-threaded one fails the run.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, cacheSummary, createConsumer, finish, removeConsumer } from './consumer.mjs';

const nodeMajor = Number(process.versions.node.split('.')[0]);
const bin = (name) => join(ROOT, 'node_modules/.bin', name);

// `threads`: whether createAttention({ threads: 2 }) must run there (true) or must throw BACKEND_UNAVAILABLE (false).
const RUNTIMES = [
  // Node 20 ships relaxed SIMD behind a flag; from Node 22 (V8 11.4+) it is on by default.
  { name: `node ${process.version}`, cmd: process.execPath, args: [], expect: nodeMajor >= 22 ? 'wasm-relaxed-simd' : 'wasm-simd', threads: true },
  { name: `node ${process.version} --experimental-wasm-relaxed-simd`, cmd: process.execPath, args: ['--experimental-wasm-relaxed-simd'], expect: 'wasm-relaxed-simd', threads: true },
  // No --allow-* flag and no prompt: importing an npm package needs no permission. --cached-only: the package
  // resolves from the consumer's node_modules, nothing is fetched. Threads too: a worker whose file is in
  // node_modules starts without read permission (outside node_modules Deno would ask for --allow-read).
  { name: 'deno, no permissions:', cmd: bin('deno'), args: ['run', '--no-prompt', '--cached-only'], expect: 'wasm-relaxed-simd', threads: true, version: ['--version'] },
  // Bun (JavaScriptCore) validates and runs the relaxed-SIMD build.
  { name: 'bun', cmd: bin('bun'), args: [], expect: 'wasm-relaxed-simd', threads: true, version: ['--version'] },
];

const dir = createConsumer();
const results = [];
try {
  for (const rt of RUNTIMES) {
    let name = rt.name;
    if (rt.version) name += ` ${spawnSync(rt.cmd, rt.version, { encoding: 'utf8' }).stdout?.split('\n')[0] ?? '(not found)'}`;
    const run = spawnSync(rt.cmd, [...rt.args, 'entry.mjs', rt.expect, rt.name, rt.threads ? 'yes' : 'no'], {
      cwd: dir, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1' },
    });
    const line = (run.stdout ?? '').split('\n').find((l) => l.startsWith('SMOKE '));
    if (run.status === 0 && line) {
      const r = JSON.parse(line.slice(6));
      const threads = r.threads === 'ok'
        ? `threads ok (${r.threadChecks} checks identical to 1 thread, worst error ${r.threadWorstError.toExponential(2)})`
        : `threads ${r.threads}`;
      const ok = (r.threads === 'ok') === rt.threads;
      results.push({ ok, name, detail: `picked ${r.picked}; ${r.checks} checks over ${r.supported.join(', ')}; worst error ${r.worstError.toExponential(2)}; ${cacheSummary(r)}; ${threads}` });
    } else {
      results.push({ ok: false, name, detail: `exit ${run.status} ${run.error ?? ''}\n${run.stdout}\n${run.stderr}` });
    }
  }
} finally {
  removeConsumer(dir);
}
finish('runtimes', results);
