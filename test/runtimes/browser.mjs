// `npm run test:browser`: the package in Chromium (Debian's /usr/bin/chromium, driven by playwright-core,
// headless). Pages are served from 127.0.0.1 by demo/serve.mjs, the smoke pages cross-origin isolated (COOP +
// COEP headers, so SharedArrayBuffer and threads are available) unless said otherwise.
//  1. smoke.mjs in a page that imports the npm-installed package as an ES module: must pick wasm-relaxed-simd,
//     and a 2-thread engine (module Web Worker) must match a single-threaded one element for element.
//  2. the same page served without COOP/COEP: createAttention({ threads: 2 }) must throw BACKEND_UNAVAILABLE,
//     everything single-threaded must still pass.
//  3. the same page with V8 in --jitless mode (no WebAssembly at all; V8 15 has no flag that removes only
//     SIMD): must pick the JS fallback and still be correct; threads unavailable.
//  4. a Vite app importing the package, built with `vite build` (default options): the build must emit the
//     worker; run in Chromium, isolated: same suite, threads included.
//  5. the demo page (demo/): timing and heatmap render; a screenshot goes to test-results/demo.png and the
//     heatmap canvas must show a real heatmap (not blank, not one colour).
import { existsSync, cpSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import { startServer } from '../../demo/serve.mjs';
import { HERE, ROOT, SMOKE_MODULES, createConsumer, finish, removeConsumer } from './consumer.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
const TIMEOUT = 90_000;
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

if (!existsSync(CHROMIUM)) {
  console.error(`${CHROMIUM} not found: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  process.exit(1);
}

const results = [];
async function test(name, fn) {
  try {
    const detail = await fn();
    results.push({ ok: true, name, detail });
  } catch (error) {
    results.push({ ok: false, name, detail: String(error?.stack ?? error) });
  }
}

async function withPage(extraArgs, url, fn) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...ARGS, ...extraArgs], headless: true });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 640 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(url);
    return await fn(page, errors, browser.version());
  } finally {
    await browser.close();
  }
}

/** Waits for window.__smoke and turns a failure into a thrown error; `isolated`: what crossOriginIsolated must be. */
async function smokeResult(page, errors, isolated) {
  await page.waitForFunction(() => window.__smoke !== undefined, null, { timeout: TIMEOUT });
  const smoke = await page.evaluate(() => window.__smoke);
  if (!smoke.ok) throw new Error(`${smoke.error}\npage errors: ${errors.join('\n')}`);
  const coi = await page.evaluate(() => globalThis.crossOriginIsolated);
  if (coi !== isolated) throw new Error(`crossOriginIsolated is ${coi}, expected ${isolated}`);
  const r = smoke.result;
  const threads = r.threads === 'ok'
    ? `threads ok (${r.threadChecks} checks identical to 1 thread, worst error ${r.threadWorstError.toExponential(2)})`
    : `threads ${r.threads}`;
  return `picked ${r.picked}; ${r.checks} checks over ${r.supported.join(', ')}; worst error ${r.worstError.toExponential(2)}; ${threads}`;
}

const dir = createConsumer(SMOKE_MODULES);
cpSync(join(HERE, 'pages/smoke.html'), join(dir, 'smoke.html'));
cpSync(join(HERE, 'vite-app'), join(dir, 'vite-app'), { recursive: true });
const site = await startServer(dir, 0, ISOLATION);
const plain = await startServer(dir);
const repo = await startServer(ROOT);
try {
  await test('chromium: ES module from localhost (COOP+COEP) picks wasm-relaxed-simd, all backends and 2 threads match the reference', () =>
    withPage([], `${site.url}/smoke.html?expect=wasm-relaxed-simd&threads=1`, async (page, errors, version) =>
      `Chromium ${version}: ${await smokeResult(page, errors, true)}`));

  await test('chromium: the same page without COOP/COEP: threads BACKEND_UNAVAILABLE, single-threaded correct', () =>
    withPage([], `${plain.url}/smoke.html?expect=wasm-relaxed-simd&threads=0`, async (page, errors) =>
      await smokeResult(page, errors, false)));

  await test('chromium --js-flags=--jitless (no WebAssembly): JS fallback picked and correct, no threads', () =>
    withPage(['--js-flags=--jitless'], `${site.url}/smoke.html?expect=js&threads=0`, async (page, errors) => {
      const wasm = await page.evaluate(() => typeof WebAssembly);
      if (wasm !== 'undefined') throw new Error(`WebAssembly is still ${wasm} under --jitless`);
      return await smokeResult(page, errors, true);
    }));

  await test('vite build of an app importing the package (worker emitted), run in chromium with 2 threads', async () => {
    const root = join(dir, 'vite-app');
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
    return withPage([], `${site.url}/vite-app/dist/index.html?expect=wasm-relaxed-simd&threads=1`, async (page, errors) =>
      `${entry[0]} ${(bundle.length / 1024).toFixed(0)} KiB + ${worker[0]} ${(workerCode.length / 1024).toFixed(1)} KiB: ${await smokeResult(page, errors, true)}`);
  });

  await test('demo page: live wasm-vs-JS timing and a heatmap of the weights (screenshot test-results/demo.png)', () =>
    withPage([], `${repo.url}/demo/`, async (page, errors) => {
      await page.waitForFunction(() => document.body.dataset.timing === 'done' || document.body.dataset.error,
        null, { timeout: TIMEOUT });
      const state = await page.evaluate(() => ({ ...document.body.dataset }));
      if (state.error || errors.length > 0) throw new Error(`demo failed: ${state.error} ${errors.join('\n')}`);
      if (state.backend !== 'wasm-relaxed-simd' || state.heatmap !== 'done') throw new Error(`demo state ${JSON.stringify(state)}`);
      const timing = await page.evaluate(() => ['wasm-ms', 'js-ms'].map((id) => Number(document.getElementById(id).textContent)));
      if (!timing.every((t) => Number.isFinite(t) && t > 0)) throw new Error(`timings not shown: ${timing}`);
      // The heatmap: opaque, many distinct colours, bright cells on the diagonal (each token attends mostly to
      // itself and its neighbours), darker far below it, and exactly the colour of weight 0 above it (causal).
      const pixels = await page.evaluate(() => {
        const c = document.getElementById('heatmap');
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const colours = new Set();
        let transparent = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (data[i + 3] !== 255) transparent++;
          colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
        }
        const cell = c.width / 32;
        const at = (row, col) => {
          const p = ((Math.floor((row + 0.5) * cell) * c.width) + Math.floor((col + 0.5) * cell)) * 4;
          return data[p] + data[p + 1] + data[p + 2];
        };
        let diagonal = 0, far = 0, upper = 0;
        for (let i = 0; i < 32; i++) diagonal += at(i, i);
        for (let i = 16; i < 32; i++) far += at(i, i - 16);
        for (let i = 0; i < 16; i++) upper += at(i, i + 16);
        return { colours: colours.size, transparent, diagonal: diagonal / 32, far: far / 16, upper: upper / 16 };
      });
      mkdirSync(join(ROOT, 'test-results'), { recursive: true });
      await page.screenshot({ path: join(ROOT, 'test-results/demo.png') });
      await page.locator('#heatmap').screenshot({ path: join(ROOT, 'test-results/demo-heatmap.png') });
      const darkest = 68 + 1 + 84; // the colour map's 0
      if (pixels.transparent > 0 || pixels.colours < 20) throw new Error(`blank heatmap: ${JSON.stringify(pixels)}`);
      if (!(pixels.diagonal > pixels.far + 100) || pixels.upper !== darkest) throw new Error(`heatmap does not show causal local attention: ${JSON.stringify(pixels)}`);
      return `wasm ${timing[0]} ms vs js ${timing[1]} ms per call; heatmap ${pixels.colours} colours`;
    }));
} finally {
  await site.close();
  await plain.close();
  await repo.close();
  removeConsumer(dir);
}
finish('browser', results);
