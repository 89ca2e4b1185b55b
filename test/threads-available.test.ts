// The reason createAttention({ threads }) gives when it cannot share memory, as a browser page sees it: it must
// blame COOP/COEP only on a page that is not cross-origin isolated, and name the engine when an isolated page
// still has no SharedArrayBuffer (WebKitGTK 2.50). The real engines are checked by `npm run test:browser`.
import { afterEach, expect, test, vi } from 'vitest';
import { threadsAvailable } from '../src/wasm/pool.js';

afterEach(() => vi.unstubAllGlobals());

test('Node: threads available', () => {
  expect(threadsAvailable()).toBeNull();
});

test('a page without cross-origin isolation: COOP and COEP are named', () => {
  vi.stubGlobal('crossOriginIsolated', false);
  vi.stubGlobal('SharedArrayBuffer', undefined);
  expect(threadsAvailable()).toMatch(/not cross-origin isolated \(serve it with COOP and COEP headers\)/);
});

test('an isolated page in an engine without SharedArrayBuffer: the engine is named, not the headers', () => {
  vi.stubGlobal('crossOriginIsolated', true);
  vi.stubGlobal('SharedArrayBuffer', undefined);
  const why = threadsAvailable();
  expect(why).toMatch(/this browser engine has no SharedArrayBuffer even though the page is cross-origin isolated/);
  expect(why).not.toMatch(/COOP|COEP/);
});

test('an isolated page without Atomics: Atomics is named', () => {
  vi.stubGlobal('crossOriginIsolated', true);
  vi.stubGlobal('Atomics', undefined);
  expect(threadsAvailable()).toMatch(/has no Atomics even though/);
});

test('a runtime with no notion of isolation and no SharedArrayBuffer', () => {
  vi.stubGlobal('SharedArrayBuffer', undefined);
  expect(threadsAvailable()).toBe('this runtime has no SharedArrayBuffer, so memory cannot be shared');
});
