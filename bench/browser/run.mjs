// npm run bench:browser [-- chromium firefox webkit] [--quick] [--no-write]: the benchmark tables of tables.mjs
// in each installed browser engine (drivers: test/runtimes/engines/), WebKit also with JavaScriptCore's
// SharedArrayBuffer and relaxed SIMD switched on. The page is served cross-origin isolated, so threads run where
// the engine has SharedArrayBuffer. Each engine's tables go into its own section of bench/RESULTS.md (between
// <!-- browser:NAME:start/end --> markers, inside the "In the browser" block); --quick (a short run) and
// --no-write only print.
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../demo/serve.mjs';
import { ENGINES, selectEngines, waitFor, withSession } from '../../test/runtimes/engines/index.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FILE = new URL('../RESULTS.md', import.meta.url);
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const write = !quick && !args.includes('--no-write');
const engines = selectEngines(args.filter((a) => !a.startsWith('--')));
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.arch()}`;
const date = new Date().toISOString().slice(0, 10);

/** Replaces the block between `<!-- key:start -->` and `<!-- key:end -->` in `text`, or inserts it at `at`. */
function replaceBlock(text, key, body, at) {
  const [start, end] = [`<!-- ${key}:start -->`, `<!-- ${key}:end -->`];
  const block = `${start}\n${body.trim()}\n${end}`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) return text.slice(0, i) + block + text.slice(j + end.length);
  return at(text, block);
}

const HEADER = `## In the browser

\`npm run bench:browser\`: the tables above (S1–S5, model shapes, 1 vs 2 threads) measured inside each browser
engine, headless on the machine named below, the page served from 127.0.0.1 cross-origin isolated (COOP + COEP).
Same rules as the Node tables: answers checked against JS first, medians of whole calls, the wasm backends and
thread counts in two interleaved rounds (each keeps its better round), JS once; ratios divide medians of the same
run. Browsers coarsen \`performance.now()\`, so each sample times a batch of calls of at least 20 ms. The demo's
"benchmark this browser" button runs the same tables in a visitor's browser.`;

const browsers = [];
const server = await startServer(ROOT, 0, ISOLATION);
let failed = false;
try {
  for (const engine of engines) {
    const missing = engine.driver.missing();
    if (missing !== null) {
      console.warn(`${engine.label}: skipped (${missing})`);
      continue;
    }
    const runs = [{ key: engine.driver.name, what: '', options: {} },
      ...(engine.extra ?? []).map((x, i) => ({ key: `${engine.driver.name}-${i + 1}`, what: ` with ${x.what}`, options: x.options }))];
    for (const run of runs) {
      try {
        const t0 = Date.now();
        const load0 = os.loadavg()[0];
        const { version, bench } = await withSession(engine, run.options, async (s) => {
          await s.goto(`${server.url}/bench/browser/index.html?scope=${quick ? 'quick' : 'full'}`);
          await waitFor(s, 'window.__bench', 40 * 60_000, 'the benchmark');
          return { version: s.version, bench: await s.evaluate('window.__bench') };
        });
        if (!bench.ok) throw new Error(bench.error);
        const e = bench.env;
        // The machine may be shared: the 1-minute load average before and after says how busy it was.
        const load = `load average ${load0.toFixed(1)} → ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores`;
        const section = `### ${version}${run.what}\n\nMeasured ${date} in ${((Date.now() - t0) / 60000).toFixed(1)} min (${load}). ` +
          `\`createAttention()\` picked **${e.picked}**; supported: ${e.supported.join(', ')}; threads: ${e.threads}. ` +
          `navigator.hardwareConcurrency ${e.cores}, crossOriginIsolated ${e.crossOriginIsolated}, timer resolution ${(e.timerResolutionMs * 1000).toPrecision(2)} µs. ` +
          `Machine: ${machine}.\n\n${bench.markdown}`;
        console.log(`${section}\n`);
        browsers.push({ key: run.key, section });
      } catch (error) {
        failed = true;
        console.error(`${engine.label}${run.what}: ${error.stack ?? error}`);
      }
    }
    await engine.driver.close();
  }
} finally {
  await server.close();
}

if (write && browsers.length > 0) {
  let text = readFileSync(FILE, 'utf8');
  // Engines measured earlier and not in this run keep their sections.
  const sections = new Map();
  for (const m of text.matchAll(/<!-- browser:(\S+):start -->\n([\s\S]*?)\n<!-- browser:\1:end -->/g)) sections.set(m[1], m[2]);
  for (const { key, section } of browsers) sections.set(key, section);
  const order = ENGINES.flatMap((e) => [e.driver.name, ...(e.extra ?? []).map((_, i) => `${e.driver.name}-${i + 1}`)]);
  const keys = [...sections.keys()].sort((x, y) => order.indexOf(x) - order.indexOf(y));
  const body = `${HEADER}\n\n${keys.map((k) => `<!-- browser:${k}:start -->\n${sections.get(k).trim()}\n<!-- browser:${k}:end -->`).join('\n\n')}`;
  // The block goes before the peers section (or at the end of the file).
  text = replaceBlock(text, 'browsers', body, (t, block) => {
    const peers = t.indexOf('<!-- peers:start -->');
    return peers >= 0 ? `${t.slice(0, peers)}${block}\n\n${t.slice(peers)}` : `${t.trimEnd()}\n\n${block}\n`;
  });
  writeFileSync(FILE, text);
  console.log(`wrote ${browsers.length} browser section(s) into bench/RESULTS.md`);
}
if (failed) process.exitCode = 1;
