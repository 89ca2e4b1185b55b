// A watchdog for threaded engines: a stalled call (a lost wake-up in work.ts / pool.ts) blocks its thread in
// Atomics.wait for ever, which no in-process timeout can interrupt. So the calls run in a child process that the
// test kills and fails if it has not finished in time. (One thread-fuzzing run of an earlier stop timed out and
// never reproduced; this is the net for it.)
import { spawn } from 'node:child_process';
import { expect, test } from 'vitest';

const CALLS = 1500;
const LIMIT_MS = 120_000; // ≈ 10 s on a quiet 2-core machine

function hammer(seed: number): Promise<{ code: number | null; out: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--experimental-wasm-relaxed-simd', new URL('./workers/threads-hammer.mjs', import.meta.url).pathname, String(CALLS), String(seed)]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), LIMIT_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, out, timedOut: signal === 'SIGKILL' });
    });
  });
}

test(`${CALLS} back-to-back threaded calls finish (no stall) and match one thread`, async () => {
  const { code, out, timedOut } = await hammer(21);
  expect(timedOut, `stalled: no answer within ${LIMIT_MS} ms`).toBe(false);
  expect(code, out).toBe(0);
  expect(out.trim()).toBe(`ok ${CALLS}`);
}, LIMIT_MS + 10_000);
