/** Deterministic uniform [−1, 1) floats (mulberry32), the same generator as the smoke suite's. */
export function random(n, seed) {
  let t = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    a[i] = (((r ^ (r >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return a;
}
