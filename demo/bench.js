// "Benchmark this browser": the tables of `npm run bench:browser` (bench/browser/tables.mjs), run in the
// visitor's own browser and shown as HTML tables, with the backend and thread support detected.
import { runBenchmark } from '../bench/browser/tables.mjs';

const $ = (id) => document.getElementById(id);

function table({ title, note, head, rows }) {
  const section = document.createElement('section');
  const h = document.createElement('h3');
  h.textContent = title;
  section.append(h);
  if (note) {
    const p = document.createElement('p');
    p.className = 'sub';
    p.textContent = note;
    section.append(p);
  }
  if (head.length > 0) {
    const t = document.createElement('table');
    t.className = 'bench';
    const tr = t.createTHead().insertRow();
    for (const c of head) tr.append(Object.assign(document.createElement('th'), { textContent: c }));
    const body = t.createTBody();
    for (const r of rows) {
      const row = body.insertRow();
      for (const c of r) row.insertCell().textContent = c;
    }
    section.append(t);
  }
  return section;
}

/** Wires the button; `beforeRun()` stops whatever else is timing on the page. */
export function setupBenchmark(pkg, beforeRun) {
  $('bench-run').addEventListener('click', async () => {
    beforeRun();
    $('bench-run').disabled = true;
    $('bench-out').replaceChildren();
    document.body.dataset.bench = 'running';
    try {
      const result = await runBenchmark(pkg, { scope: $('bench-scope').value, progress: (text) => { $('bench-status').textContent = text; } });
      const e = result.env;
      $('bench-status').textContent = `createAttention() picked ${e.picked}; supported: ${e.supported.join(', ')}; threads: ${e.threads}; ` +
        `${e.cores} logical cores; cross-origin isolated: ${e.crossOriginIsolated}; timer resolution ${(e.timerResolutionMs * 1000).toPrecision(2)} µs`;
      $('bench-out').append(...result.sections.map(table));
      document.body.dataset.bench = 'done';
    } catch (error) {
      $('bench-status').textContent = `error: ${error.message}`;
      document.body.dataset.bench = `error: ${error.message}`;
    } finally {
      $('bench-run').disabled = false;
    }
  });
}
