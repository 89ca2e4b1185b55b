// Long context (no L×L matrix: memory stays O(L·D)) and S4 decode: the whole call, which copies all of K/V,
// against a KV-cache step (append one token, attend over the cache), per wasm backend.
import { SHAPES, flops, inputsFor, optionsOf } from '../shapes.mjs';
import { maxAbsDiff, medianMs } from './timing.mjs';

export async function longSection({ wasmEngines, createAttention }) {
  const rows = [];
  const long = { batch: 1, heads: 8, seqQ: 16384, seqK: 16384, headDim: 64 };
  const { q, k, v } = inputsFor(long);
  for (const e of wasmEngines) {
    const fresh = await createAttention({ backend: e.backend });
    const { ms, samples } = await medianMs(`${e.backend} L16384`, () => fresh.attention(q, k, v, long), 'once');
    const extra = (fresh.memoryBytes - 4 * q.byteLength) / 2 ** 20;
    rows.push(`| B1 H8 L16384 D64, one call | ${e.backend} | ${ms.toFixed(0)} | ${(flops(long) / ms / 1e6).toFixed(1)} | ` +
      `wasm memory ${(fresh.memoryBytes / 2 ** 20).toFixed(0)} MiB: ${extra.toFixed(1)} MiB beyond q, k, v, out | ${samples} |`);
    fresh.dispose();
  }
  const s4 = SHAPES.find((x) => x.id === 'S4');
  const d = inputsFor(s4);
  const { heads, seqK, headDim } = s4;
  const tokens = (x, from, to) => {
    const out = new Float32Array(heads * (to - from) * headDim);
    for (let h = 0; h < heads; h++) out.set(x.subarray((h * seqK + from) * headDim, (h * seqK + to) * headDim), h * (to - from) * headDim);
    return out;
  };
  const [k0, v0, k1, v1] = [tokens(d.k, 0, seqK - 1), tokens(d.v, 0, seqK - 1), tokens(d.k, seqK - 1, seqK), tokens(d.v, seqK - 1, seqK)];
  for (const e of wasmEngines) {
    const whole = await medianMs(`${e.backend} S4`, () => e.attention(d.q, d.k, d.v, optionsOf(s4)));
    const cache = e.createKVCache({ batch: 1, kvHeads: heads, headDim, capacity: seqK + 2048 });
    cache.append(k0, v0);
    const step = () => {
      cache.append(k1, v1);
      return cache.attend(d.q, { heads, seqQ: 1, causal: 'bottom-right' });
    };
    const err = maxAbsDiff(step(), e.attention(d.q, d.k, d.v, optionsOf(s4)));
    if (!(err <= 1e-5)) throw new Error(`${e.backend} KV cache: max abs diff ${err} vs one-shot`);
    const cached = await medianMs(`${e.backend} S4 KV step`, step);
    rows.push(`| S4 decode, whole call | ${e.backend} | ${whole.ms.toFixed(2)} | ${(flops(s4) / whole.ms / 1e6).toFixed(1)} | copies 128 MiB of K/V per call | ${whole.samples} |`);
    rows.push(`| S4 decode, KV-cache step | ${e.backend} | ${cached.ms.toFixed(2)} | ${(flops(s4) / cached.ms / 1e6).toFixed(1)} | ` +
      `${(whole.ms / cached.ms).toFixed(1)}× faster than the whole call; cache length ${seqK}–${cache.length} | ${cached.samples} |`);
    cache.dispose();
  }
  return ['Long context and decode',
    '| case | backend | median ms | GFLOP/s | note | samples |\n|---|---|---:|---:|---|---:|\n' + rows.join('\n')];
}
