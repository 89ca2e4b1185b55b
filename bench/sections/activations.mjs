// Each activation on S2, next to softmax (wasm backends; weights are not materialised), checked against JS first.
import { SHAPES, flops, inputsFor, optionsOf } from '../shapes.mjs';
import { maxAbsDiff, medianMs } from './timing.mjs';

export async function activationsSection({ wasmEngines, engine, ACTIVATIONS }) {
  const shape = SHAPES.find((s) => s.id === 'S2');
  const { q, k, v } = inputsFor(shape);
  const rows = [];
  for (const e of wasmEngines) {
    let softmaxMs = NaN;
    for (const activation of ACTIVATIONS) {
      const options = { ...optionsOf(shape), activation };
      const err = maxAbsDiff(e.attention(q, k, v, options), engine('js').attention(q, k, v, options));
      if (!(err <= 1e-4)) throw new Error(`${e.backend} ${activation}: max abs diff ${err} vs JS`);
      const { ms, samples } = await medianMs(`${e.backend} ${activation}`, () => e.attention(q, k, v, options));
      if (activation === 'softmax') softmaxMs = ms;
      rows.push(`| ${activation} | ${e.backend} | ${ms.toFixed(2)} | ${(flops(shape) / ms / 1e6).toFixed(1)} | ${(softmaxMs / ms).toFixed(2)} | ${samples} |`);
    }
  }
  return ['Activations on S2 (B1 H12 L512 D64)',
    '| activation | backend | median ms | GFLOP/s | speed vs softmax | samples |\n|---|---|---:|---:|---:|---:|\n' + rows.join('\n')];
}
