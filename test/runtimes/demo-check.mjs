// The demo page (demo/) in one browser session: the backend and thread support it reports, the live timing,
// the activation heatmaps under each structure (read back from the canvases' pixels), and the "benchmark this
// browser" button (quick tables). Timings are only required to be numbers, never judged. Screenshots go to
// test-results/demo-<engine>.png.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './consumer.mjs';
import { waitFor } from './engines/index.mjs';

const ACTIVATIONS = ['softmax', 'softmax1', 'squared', 'sigmoid', 'relu', 'polynomial'];
const L = 32;

/** Sets the heatmap controls ({ id: value }) the way a visitor does, firing 'input'. */
const setControls = (controls) => `(() => {
  for (const [id, v] of Object.entries(${JSON.stringify(controls)})) {
    const el = document.getElementById(id);
    if (typeof v === 'boolean') el.checked = v; else el.value = String(v);
    el.dispatchEvent(new Event('input'));
  }
  return true;
})()`;

/**
 * Per panel: each cell's colour (r+g+b, or -1 for the grey of an excluded key), the sink column, opacity, the
 * number of distinct colours and the caption. Geometry from demo/heatmaps.js: 5-px cells after a 9-px sink strip.
 */
const readPanels = `(() => {
  const out = {};
  for (const a of ${JSON.stringify(ACTIVATIONS)}) {
    const c = document.getElementById('hm-' + a);
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const px = (x, y) => { const p = (y * c.width + x) * 4; return [data[p], data[p + 1], data[p + 2]]; };
    const value = ([r, g, b]) => (r === 226 && g === 229 && b === 235 ? -1 : r + g + b);
    const cells = [], sink = [], colours = new Set();
    let transparent = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 255) transparent++;
    for (let i = 0; i < ${L}; i++) {
      sink.push(value(px(2, i * 5 + 2)));
      for (let j = 0; j < ${L}; j++) {
        const rgb = px(9 + j * 5 + 2, i * 5 + 2);
        colours.add(rgb.join());
        cells.push(value(rgb));
      }
    }
    out[a] = { cells, sink, transparent, colours: colours.size, caption: c.nextElementSibling.textContent };
  }
  return out;
})()`;

function check(condition, message) {
  if (!condition) throw new Error(`demo: ${message}`);
}

/** Mean colour value of the cells (i, j) with i − j = d, over the rows that have one. */
function band(cells, d) {
  let sum = 0, n = 0;
  for (let i = d; i < L; i++) sum += cells[i * L + i - d], n++;
  return sum / n;
}

export async function checkDemo(session, url, { picks, threads, name, timeout }) {
  await session.goto(url);
  await waitFor(session, "document.body.dataset.timing === 'done' || document.body.dataset.error", timeout, 'the demo');
  const state = await session.evaluate('({ ...document.body.dataset })');
  check(!state.error && session.errors().length === 0, `failed: ${state.error} ${session.errors().join('\n')}`);
  check(state.backend === picks, `picked ${state.backend}, expected ${picks}`);
  check(threads === 'ok' ? state.threads === 'available' : threads.pattern.test(state.threads), `threads: ${state.threads}`);
  const timing = await session.evaluate("['wasm-ms', 'js-ms'].map((id) => Number(document.getElementById(id).textContent))");
  check(timing.every((t) => Number.isFinite(t) && t > 0), `timings not shown: ${timing}`);

  // Causal (the default): every panel drawn, opaque, many colours; keys above the diagonal grey, none below.
  const plain = await session.evaluate(readPanels);
  for (const a of ACTIVATIONS) {
    const p = plain[a];
    check(p.transparent === 0 && p.colours >= 10, `${a}: blank heatmap (${p.colours} colours, ${p.transparent} transparent)`);
    const wrong = p.cells.findIndex((v, n) => (v === -1) !== (n % L > Math.floor(n / L)));
    check(wrong < 0, `${a}: cell (${Math.floor(wrong / L)}, ${wrong % L}) grey where it should not be, or the reverse`);
  }
  const soft = plain.softmax.cells;
  check(band(soft, 0) > band(soft, 16) + 100, `softmax: no local attention (diagonal ${band(soft, 0)}, 16 below ${band(soft, 16)})`);

  // A sliding window of 8: keys 8 or more tokens back are grey too.
  await session.evaluate(setControls({ 'hm-window': 8 }));
  const windowed = (await session.evaluate(readPanels)).softmax.cells;
  const outside = windowed.findIndex((v, n) => (v === -1) !== (n % L > Math.floor(n / L) || Math.floor(n / L) - (n % L) >= 8));
  check(outside < 0, `window 8: cell (${Math.floor(outside / L)}, ${outside % L}) wrongly drawn`);

  // ALiBi: far keys lose weight against near ones.
  await session.evaluate(setControls({ 'hm-window': 0, 'hm-alibi': true }));
  const alibi = (await session.evaluate(readPanels)).softmax.cells;
  check(band(alibi, 6) < band(soft, 6), `ALiBi: keys 6 back no darker (${band(alibi, 6)} vs ${band(soft, 6)})`);

  // A sink: a column left of softmax takes weight, so the rows over the tokens sum to less than 1.
  await session.evaluate(setControls({ 'hm-alibi': false, 'hm-sinks': true }));
  const sunk = (await session.evaluate(readPanels)).softmax;
  check(sunk.sink.every((v) => v > 0), `sink column not drawn: ${sunk.sink}`);
  const sums = sunk.caption.match(/rows sum ([\d.]+)(?:…([\d.]+))?/);
  check(sums && Number(sums[2] ?? sums[1]) < 1, `with a sink, softmax rows still sum to 1: ${sunk.caption}`);
  const out = join(ROOT, 'test-results');
  mkdirSync(out, { recursive: true });
  await session.screenshot(join(out, `demo-${name}.png`));

  // The benchmark button, quick tables: one row per supported backend and case; threads measured where available.
  await session.evaluate(`(() => { document.getElementById('bench-scope').value = 'quick'; document.getElementById('bench-run').click(); return true; })()`);
  await waitFor(session, "document.body.dataset.bench === 'done' || document.body.dataset.bench?.startsWith('error')", timeout, 'the benchmark');
  const bench = await session.evaluate(`({
    state: document.body.dataset.bench,
    status: document.getElementById('bench-status').textContent,
    tables: [...document.querySelectorAll('#bench-out section')].map((s) => ({
      title: s.querySelector('h3').textContent,
      rows: [...s.querySelectorAll('tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent)),
    })),
  })`);
  check(bench.state === 'done', `benchmark: ${bench.state}`);
  const backends = picks === 'wasm-relaxed-simd' ? ['wasm-relaxed-simd', 'wasm-simd', 'js'] : picks === 'wasm-simd' ? ['wasm-simd', 'js'] : ['js'];
  check(bench.tables.length === 3 && bench.tables[0].rows.map((r) => r[1]).join() === backends.join(), `benchmark tables: ${JSON.stringify(bench.tables)}`);
  check(bench.tables.slice(0, 2).every((t) => t.rows.every((r) => r.slice(2).every((x) => Number.isFinite(Number(x))))), 'benchmark: a cell is not a number');
  const threadRows = bench.tables[2].rows.length;
  check(threads === 'ok' ? threadRows === 2 : threadRows === 0, `benchmark: ${threadRows} thread rows`);
  await session.screenshot(join(out, `demo-${name}-benchmark.png`));
  return `wasm ${timing[0]} ms vs js ${timing[1]} ms per call; 6 heatmaps, window, ALiBi and sink drawn; ` +
    `benchmark button: ${bench.tables.map((t) => `${t.title} ${t.rows.length} rows`).join(', ')} (${bench.status})`;
}
