// The browser engines the suites run in, and what each must do. Every engine module exports { name, missing(),
// open(options), close() }; open() resolves to a session: { version, goto(url), evaluate(expression), errors(),
// screenshot(path), close() }. `evaluate` takes an expression (a string) and returns its JSON-able value.
import { chromium } from './chromium.mjs';
import { firefox } from './firefox.mjs';
import { webkit } from './webkit.mjs';

// What the threads check must see: 'ok', or the reason BACKEND_UNAVAILABLE must give (`pattern`, summed up in `says`).
const NOT_ISOLATED = { says: 'page not isolated', pattern: /^unavailable: options\.threads: the page is not cross-origin isolated \(serve it with COOP and COEP headers\)/ };
const NO_SHARED_MEMORY = {
  says: 'engine has no SharedArrayBuffer although isolated',
  pattern: /^unavailable: options\.threads: this browser engine has no SharedArrayBuffer even though the page is cross-origin isolated/,
};
const NO_WASM_THREADS = { says: 'no wasm build runs', pattern: /^unavailable: options\.threads: none of wasm-relaxed-simd, wasm-simd can run with threads/ };

export const THREADS = { NOT_ISOLATED, NO_SHARED_MEMORY, NO_WASM_THREADS };

/**
 * label: how results name the engine. picks: what createAttention() must pick. threads: what a cross-origin
 * isolated page must get from createAttention({ threads: 2 }). noWasm: the run without WebAssembly (or without
 * SIMD): driver options, what `typeof WebAssembly` is there, and the threads outcome. extra: further runs with
 * other driver options, each with its own expectations (WebKit with JavaScriptCore's threads and relaxed SIMD).
 */
export const ENGINES = [
  {
    driver: chromium, label: 'Chromium', picks: 'wasm-relaxed-simd', threads: 'ok',
    // V8 has no flag that removes only wasm SIMD; --jitless removes WebAssembly altogether.
    noWasm: { what: '--js-flags=--jitless (no WebAssembly)', options: { args: ['--js-flags=--jitless'] }, webAssembly: 'undefined', threads: NO_WASM_THREADS },
  },
  {
    driver: firefox, label: 'Firefox', picks: 'wasm-relaxed-simd', threads: 'ok',
    noWasm: { what: 'pref javascript.options.wasm = false (no WebAssembly)', options: { prefs: { 'javascript.options.wasm': false } }, webAssembly: 'undefined', threads: NO_WASM_THREADS },
  },
  {
    // WebKitGTK 2.50: relaxed SIMD does not validate, and SharedArrayBuffer is missing even on an isolated page
    // (WebKit bug 317847), so threads must be BACKEND_UNAVAILABLE there, naming the engine, not the headers.
    driver: webkit, label: 'WebKit', picks: 'wasm-simd', threads: NO_SHARED_MEMORY,
    // No JIT: WebAssembly is there (the interpreter) but without SIMD, so neither wasm build validates.
    noWasm: { what: 'JSC_useJIT=0 (WebAssembly without SIMD)', options: { env: { JSC_useJIT: '0' } }, webAssembly: 'object', threads: NO_SHARED_MEMORY },
    extra: [{
      what: 'JSC_useSharedArrayBuffer=1 JSC_useWasmRelaxedSIMD=1',
      options: { env: { JSC_useSharedArrayBuffer: '1', JSC_useWasmRelaxedSIMD: '1' } }, picks: 'wasm-relaxed-simd', threads: 'ok',
    }],
  },
];

/** Polls `expression` in the session until it is truthy; resolves to its value. */
export async function waitFor(session, expression, timeoutMs, what = expression) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await session.evaluate(expression);
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Opens a session with `options`, runs `fn(session)`, always closes it. */
export async function withSession(engine, options, fn) {
  const session = await engine.driver.open(options);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

/** The engines named in `names` (all if empty); unknown names throw. */
export function selectEngines(names) {
  if (names.length === 0) return ENGINES;
  const unknown = names.filter((n) => !ENGINES.some((e) => e.driver.name === n));
  if (unknown.length > 0) throw new Error(`unknown browser ${unknown.join(', ')}: choose from ${ENGINES.map((e) => e.driver.name).join(', ')}`);
  return ENGINES.filter((e) => names.includes(e.driver.name));
}
