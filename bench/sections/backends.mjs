// Every backend on S1–S5, one thread: median ms, GFLOP/s, share of the in-run wasm peak, speed over JS. Every
// backend's answer is checked against the JS fallback (itself tested against float64) before it is timed.
import { flops, inputsFor, optionsOf } from '../shapes.mjs';
import { computedFlops, maxAbsDiff, medianMs, shareOf } from './timing.mjs';

export async function backendsSection({ engines, engine, shapes, peak }) {
  const rows = [];
  for (const shape of shapes) {
    peak.measure();
    const { q, k, v } = inputsFor(shape);
    const options = optionsOf(shape);
    const js = engine('js').attention(q, k, v, options);
    for (const e of engines) {
      const err = maxAbsDiff(e.attention(q, k, v, options), js);
      if (!(err <= 1e-5)) throw new Error(`${e.backend} ${shape.id}: max abs diff ${err} vs JS`);
    }
    // The wasm backends in two interleaved rounds, each keeping its better round median; JS (seconds a call) once.
    const medians = new Map();
    for (let round = 0; round < 2; round++) {
      for (const e of engines) {
        if (e.backend === 'js' && round > 0) continue;
        const m = await medianMs(`${e.backend} ${shape.id}`, () => e.attention(q, k, v, options), e.backend === 'js' && flops(shape) > 1e9);
        const best = medians.get(e.backend);
        if (best === undefined || m.ms < best.ms) medians.set(e.backend, { ms: m.ms, samples: m.samples + (best?.samples ?? 0) });
        else best.samples += m.samples;
      }
    }
    const jsMs = medians.get('js').ms;
    for (const [backend, { ms, samples }] of medians) {
      const gflops = flops(shape) / ms / 1e6;
      const computed = computedFlops(shape) / ms / 1e6;
      rows.push(`| ${shape.id} ${shape.label} | ${backend} | ${ms.toFixed(2)} | ${gflops.toFixed(1)} | ` +
        `${shape.causal ? computed.toFixed(1) : '—'} | ${shareOf(computed, peak.gflops)} | ${(jsMs / ms).toFixed(1)} | ${samples} |`);
    }
  }
  return ['Backends on S1–S5',
    'GFLOP/s counts 4·B·H·Lq·Lk·D (causal S5 in full, as the peer table does); for causal rows "computed" counts only ' +
    'the admitted half, and the share of the wasm peak is of the computed rate.\n\n' +
    '| shape | backend | median ms | GFLOP/s | computed GFLOP/s | % of peak | × JS | samples |\n' +
    '|---|---|---:|---:|---:|---:|---:|---:|\n' + rows.join('\n')];
}
