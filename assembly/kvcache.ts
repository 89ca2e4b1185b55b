// The resident KV cache's layout: keys as the packed panels the flash loop reads ([ceil8(capacity)/8][D][8] per
// (batch, kv head)) and values as rows padded to ceil8(Dv) ([capacity][ceil8(Dv)]), so an attend call repacks
// nothing. Appending writes only the new tokens.
import { Params } from "./params.generated";
import { ceil8 } from "./pack";

/**
 * Appends the S new tokens k (B,KVH,S,D) and v (B,KVH,S,Dv) — (B,S,KVH,·) when bshd — of the call at `params` to
 * the cache at cacheK / cacheV, at positions cachePos … cachePos + S − 1.
 */
export function kvAppend(params: usize): void {
  const p = changetype<Params>(params);
  const k = p.k, v = p.v, n = p.S, D = p.D, Dv = p.Dv, pos = p.cachePos, capacity = p.capacity;
  const dv8 = ceil8(Dv);
  const kHeadBytes = <usize>ceil8(capacity) * <usize>D << 2;
  const vHeadBytes = <usize>capacity * <usize>dv8 << 2;
  const KVH = p.KVH, bshd = p.bshd != 0;
  for (let h = 0; h < p.B * KVH; h++) {
    const kHead = p.cacheK + <usize>h * kHeadBytes;
    const vHead = p.cacheV + <usize>h * vHeadBytes;
    // token t of (b, kv head) = h is source row h·n + t, or (b·n + t)·KVH + kv head with bshd
    const b = h / KVH;
    const row0 = bshd ? <usize>b * <usize>n * <usize>KVH + <usize>(h - b * KVH) : <usize>h * <usize>n;
    const rowStep: usize = bshd ? <usize>KVH : 1;
    for (let t = 0; t < n; t++) {
      const j = pos + t;
      const row = row0 + <usize>t * rowStep;
      const src = k + (row * <usize>D << 2);
      // token j lives in panel j/8, lane j%8: element d at panel + (d·8 + j%8)·4
      let dst = kHead + (<usize>(j >> 3) * <usize>D << 5) + (<usize>(j & 7) << 2);
      for (let d = 0; d < D; d++) {
        store<f32>(dst, load<f32>(src + (<usize>d << 2)));
        dst += 32;
      }
      const vRow = vHead + (<usize>j * <usize>dv8 << 2);
      memory.copy(vRow, v + (row * <usize>Dv << 2), <usize>Dv << 2);
      if (dv8 != Dv) memory.fill(vRow + (<usize>Dv << 2), 0, <usize>(dv8 - Dv) << 2);
    }
  }
}
