// `npm run test:browser [chromium firefox webkit]`: the package in every browser engine (engines/: Debian's
// Chromium via playwright-core, Firefox ESR via puppeteer-core over WebDriver BiDi, WebKitGTK's MiniBrowser via
// WebKitWebDriver under Xvfb). Pages are served from 127.0.0.1 by demo/serve.mjs. In each engine:
//  1. smoke.mjs in a page that imports the npm-installed package as an ES module, served cross-origin isolated
//     (COOP + COEP): must pick the engine's backend (engines/index.mjs); a 2-thread engine (module Web Worker)
//     must match a single-threaded one element for element where the engine has SharedArrayBuffer, and must be
//     BACKEND_UNAVAILABLE, naming the engine rather than the headers, where it has not (WebKitGTK).
//  2. the same page served without COOP/COEP: threads BACKEND_UNAVAILABLE naming the missing isolation,
//     everything single-threaded must still pass.
//  3. the same isolated page without WebAssembly, or without wasm SIMD (Chromium --jitless, Firefox's
//     javascript.options.wasm pref, WebKit JSC_useJIT=0): must pick the JS fallback and still be correct.
//  4. a Vite app importing the package, built once with `vite build` (default options; the build must emit the
//     worker), isolated: the same suite, threads as in 1.
//  5. the demo page (demo-check.mjs): heatmaps, timing, and the benchmark button; screenshots in test-results/.
// WebKit also runs 1 and 4 with JavaScriptCore's SharedArrayBuffer and relaxed SIMD switched on (JSC_*), where
// threads and wasm-relaxed-simd must work. Timings are shown, never judged.
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'vite';
import { startServer } from '../../demo/serve.mjs';
import { HERE, ROOT, SMOKE_MODULES, cacheSummary, createConsumer, finish, removeConsumer } from './consumer.mjs';
import { checkDemo } from './demo-check.mjs';
import { THREADS, selectEngines, waitFor, withSession } from './engines/index.mjs';

const TIMEOUT = 120_000;
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
const engines = selectEngines(process.argv.slice(2));

const results = [];
async function test(name, fn) {
  const t0 = Date.now();
  try {
    const detail = await fn();
    results.push({ ok: true, name, detail: `${detail} (${((Date.now() - t0) / 1000).toFixed(1)} s)` });
  } catch (error) {
    results.push({ ok: false, name, detail: String(error?.stack ?? error) });
  }
  console.log(`${results.at(-1).ok ? 'pass' : 'FAIL'} ${name}`);
}

const describeThreads = (t) => (t === 'ok' ? '2 threads identical to 1' : `threads BACKEND_UNAVAILABLE (${t.says})`);

/**
 * Loads a smoke page (the ES-module page or the Vite app) in `session` and checks its result: the backend
 * picked, crossOriginIsolated, typeof WebAssembly, and the threads outcome ('ok' or a pattern for the reason).
 */
async function smokePage(session, url, { picks, isolated, threads, webAssembly = 'object' }) {
  const query = new URLSearchParams({ expect: picks, threads: threads === 'ok' ? '1' : '0', label: session.version });
  await session.goto(`${url}?${query}`);
  await waitFor(session, 'window.__smoke !== undefined', TIMEOUT, 'the smoke suite');
  const smoke = await session.evaluate('window.__smoke');
  if (!smoke.ok) throw new Error(`${smoke.error}\npage errors: ${session.errors().join('\n')}`);
  const env = await session.evaluate('({ coi: globalThis.crossOriginIsolated, wasm: typeof WebAssembly })');
  if (env.coi !== isolated) throw new Error(`crossOriginIsolated is ${env.coi}, expected ${isolated}`);
  if (env.wasm !== webAssembly) throw new Error(`typeof WebAssembly is ${env.wasm}, expected ${webAssembly}`);
  const r = smoke.result;
  if (threads === 'ok' ? r.threads !== 'ok' : !threads.pattern.test(r.threads)) throw new Error(`threads: ${r.threads}, expected ${threads.pattern ?? threads}`);
  const t = r.threads === 'ok'
    ? `threads ok (${r.threadChecks} checks identical to 1 thread, worst error ${r.threadWorstError.toExponential(2)})`
    : `threads ${r.threads}`;
  return `picked ${r.picked}; ${r.checks} checks over ${r.supported.join(', ')}; worst error ${r.worstError.toExponential(2)}; ${cacheSummary(r)}; ${t}`;
}

/** Builds the Vite app once; returns a description of the bundle. */
async function buildVite(root) {
  await build({ root, configFile: false, base: './', logLevel: 'warn', build: { outDir: join(root, 'dist'), emptyOutDir: true } });
  const assets = readdirSync(join(root, 'dist/assets'));
  const scripts = assets.filter((f) => f.endsWith('.js'));
  // The app, the browser worker (worker.ts: its own bundle) and the threaded binaries (loaded on demand).
  const entry = scripts.filter((f) => f.startsWith('index-'));
  const worker = scripts.filter((f) => f.startsWith('worker-'));
  const threaded = scripts.filter((f) => f.startsWith('binaries-threads'));
  if (entry.length !== 1 || worker.length !== 1 || threaded.length !== 1 || scripts.length !== 3 || assets.some((f) => f.endsWith('.wasm'))) {
    throw new Error(`unexpected bundle: ${assets.join(', ')}`);
  }
  const bundle = readFileSync(join(root, 'dist/assets', entry[0]), 'utf8');
  if (!bundle.includes('f32-attention-4x8-wasmrelaxedsimd')) throw new Error('the bundle does not contain the package');
  if (!bundle.includes(worker[0])) throw new Error(`the bundle does not load the emitted worker ${worker[0]}`);
  const workerCode = readFileSync(join(root, 'dist/assets', worker[0]), 'utf8');
  if (/\bimport\b|worker_threads/.test(workerCode)) throw new Error(`the worker bundle is not self-contained: ${workerCode.slice(0, 300)}`);
  return `${entry[0]} ${(bundle.length / 1024).toFixed(0)} KiB + ${worker[0]} ${(workerCode.length / 1024).toFixed(1)} KiB + ${threaded[0]}`;
}

const dir = createConsumer(SMOKE_MODULES);
cpSync(join(HERE, 'pages/smoke.html'), join(dir, 'smoke.html'));
cpSync(join(HERE, 'vite-app'), join(dir, 'vite-app'), { recursive: true });
const site = await startServer(dir, 0, ISOLATION);
const plain = await startServer(dir);
const repo = await startServer(ROOT, 0, ISOLATION);
const smokeUrl = `${site.url}/smoke.html`;
const viteUrl = `${site.url}/vite-app/dist/index.html`;
try {
  let vite = false;
  await test('vite build of an app importing the package: the worker and the threaded binaries emitted', async () => {
    const detail = await buildVite(join(dir, 'vite-app'));
    vite = true;
    return detail;
  });
  for (const engine of engines) {
    const E = engine.label;
    const missing = engine.driver.missing();
    if (missing !== null) {
      results.push({ ok: false, name: `${E}: installed`, detail: missing });
      continue;
    }
    const own = { picks: engine.picks, threads: engine.threads };
    await test(`${E}: ES module page, COOP+COEP: picks ${engine.picks}, ${describeThreads(engine.threads)}`, () =>
      withSession(engine, {}, async (s) => `${s.version}: ${await smokePage(s, smokeUrl, { ...own, isolated: true })}`));
    await test(`${E}: the same page without COOP/COEP: ${describeThreads(THREADS.NOT_ISOLATED)}, single-threaded correct`, () =>
      withSession(engine, {}, (s) => smokePage(s, `${plain.url}/smoke.html`, { ...own, threads: THREADS.NOT_ISOLATED, isolated: false })));
    const { noWasm } = engine;
    await test(`${E} ${noWasm.what}: picks js, correct; ${describeThreads(noWasm.threads)}`, () =>
      withSession(engine, noWasm.options, (s) => smokePage(s, smokeUrl, {
        picks: 'js', threads: noWasm.threads, isolated: true, webAssembly: noWasm.webAssembly,
      })));
    if (vite) {
      await test(`${E}: the Vite bundle, COOP+COEP: picks ${engine.picks}, ${describeThreads(engine.threads)}`, () =>
        withSession(engine, {}, (s) => smokePage(s, viteUrl, { ...own, isolated: true })));
    }
    await test(`${E}: demo page (COOP+COEP): heatmaps per activation and structure, live timing, the benchmark button`, () =>
      withSession(engine, {}, (s) => checkDemo(s, `${repo.url}/demo/`, { ...own, name: engine.driver.name, timeout: TIMEOUT })));
    for (const x of engine.extra ?? []) {
      await test(`${E} with ${x.what}: ES module page and Vite bundle (COOP+COEP): picks ${x.picks}, ${describeThreads(x.threads)}`, () =>
        withSession(engine, x.options, async (s) => {
          const page = await smokePage(s, smokeUrl, { picks: x.picks, threads: x.threads, isolated: true });
          const bundle = vite ? await smokePage(s, viteUrl, { picks: x.picks, threads: x.threads, isolated: true }) : 'no Vite build';
          return `page: ${page}. Vite bundle: ${bundle}`;
        }));
    }
  }
} finally {
  for (const engine of engines) await engine.driver.close();
  await site.close();
  await plain.close();
  await repo.close();
  removeConsumer(dir);
}
finish('browser', results);
