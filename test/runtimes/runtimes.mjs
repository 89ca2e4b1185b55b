// `npm run test:runtimes`: the smoke suite (smoke.mjs) in every JS runtime we ship for, each importing the
// installed package by name from a consumer project (consumer.mjs). Deno runs with no permissions at all.
// Each runtime must pick the backend listed here; a wrong pick or a wrong number fails the run.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, createConsumer, finish, removeConsumer } from './consumer.mjs';

const nodeMajor = Number(process.versions.node.split('.')[0]);
const bin = (name) => join(ROOT, 'node_modules/.bin', name);

const RUNTIMES = [
  // Node 20 ships relaxed SIMD behind a flag; from Node 22 (V8 11.4+) it is on by default.
  { name: `node ${process.version}`, cmd: process.execPath, args: [], expect: nodeMajor >= 22 ? 'wasm-relaxed-simd' : 'wasm-simd' },
  { name: `node ${process.version} --experimental-wasm-relaxed-simd`, cmd: process.execPath, args: ['--experimental-wasm-relaxed-simd'], expect: 'wasm-relaxed-simd' },
  // No --allow-* flag and no prompt: importing an npm package needs no permission. --cached-only: the package
  // resolves from the consumer's node_modules, nothing is fetched.
  { name: 'deno, no permissions:', cmd: bin('deno'), args: ['run', '--no-prompt', '--cached-only'], expect: 'wasm-relaxed-simd', version: ['--version'] },
  // Bun (JavaScriptCore) validates and runs the relaxed-SIMD build.
  { name: 'bun', cmd: bin('bun'), args: [], expect: 'wasm-relaxed-simd', version: ['--version'] },
];

const dir = createConsumer();
const results = [];
try {
  for (const rt of RUNTIMES) {
    let name = rt.name;
    if (rt.version) name += ` ${spawnSync(rt.cmd, rt.version, { encoding: 'utf8' }).stdout?.split('\n')[0] ?? '(not found)'}`;
    const run = spawnSync(rt.cmd, [...rt.args, 'entry.mjs', rt.expect, rt.name], {
      cwd: dir, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1' },
    });
    const line = (run.stdout ?? '').split('\n').find((l) => l.startsWith('SMOKE '));
    if (run.status === 0 && line) {
      const r = JSON.parse(line.slice(6));
      results.push({ ok: true, name, detail: `picked ${r.picked}; ${r.checks} checks over ${r.supported.join(', ')}; worst error ${r.worstError.toExponential(2)}` });
    } else {
      results.push({ ok: false, name, detail: `exit ${run.status} ${run.error ?? ''}\n${run.stdout}\n${run.stderr}` });
    }
  }
} finally {
  removeConsumer(dir);
}
finish('runtimes', results);
