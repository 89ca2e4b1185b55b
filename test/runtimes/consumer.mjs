// A throwaway consumer project that installs the package the way a user does: `npm pack` of this repo, then
// `npm install <tarball>` (offline: the package has no dependencies) into a fresh directory. The runtime,
// browser, bundler and typed-consumer suites all import 'wasm-attention' from there, so they test the
// published files and the package.json "exports", not the source tree.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const HERE = join(ROOT, 'test/runtimes');

const npm = (args, cwd) => execFileSync('npm', args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

/** The smoke suite's modules: copied side by side, so smoke.mjs imports the others by the same relative path. */
export const SMOKE_MODULES = ['smoke.mjs', 'smoke-kv.mjs', 'cases.mjs', 'reference.mjs', 'quantize.mjs'];

/** Packs the repo (dist/ must be built) and installs the tarball into a new directory; returns its path. */
export function createConsumer(files = [...SMOKE_MODULES, 'entry.mjs']) {
  if (!existsSync(join(ROOT, 'dist/index.js'))) throw new Error('dist/ is not built: run `npm run build` first');
  const dir = mkdtempSync(join(tmpdir(), 'wasm-attention-consumer-'));
  const packed = npm(['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], ROOT).trim().split('\n').pop();
  writeFileSync(join(dir, 'package.json'), JSON.stringify({
    name: 'wasm-attention-consumer', private: true, type: 'module',
    dependencies: { 'wasm-attention': `file:./${packed}` },
  }, null, 2));
  npm(['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--silent'], dir);
  if (!existsSync(join(dir, 'node_modules/wasm-attention/dist/index.js'))) throw new Error(`npm install of ${packed} failed`);
  for (const f of files) cpSync(join(HERE, f), join(dir, f));
  return dir;
}

export function removeConsumer(dir) {
  if (dir.startsWith(tmpdir()) && dir.includes('wasm-attention-consumer-')) rmSync(dir, { recursive: true, force: true });
}

/** Prints the summary line CI reads, and exits non-zero on any failure. */
export function finish(suite, results) {
  const failed = results.filter((r) => !r.ok);
  for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'} ${r.name}${r.detail ? ` — ${r.detail}` : ''}`);
  console.log(`${suite}: ${results.length - failed.length} passed, ${failed.length} failed`);
  if (failed.length > 0 || results.length === 0) process.exitCode = 1;
}

export { mkdirSync, readdirSync };

/** The smoke result's KV-cache part in words: worst float16 / int8 error over the backends, 16-bit arrays checked. */
export function cacheSummary(r) {
  const all = Object.values(r.caches ?? {});
  if (all.length === 0) return 'no cache checks';
  const worst = (d) => Math.max(...all.map((c) => c.worst[d] ?? 0)).toExponential(1);
  return `float16 / int8 caches within ${worst('float16')} / ${worst('int8')} of max |out|, 16-bit tensors as ${all[0].halfTensors}`;
}
