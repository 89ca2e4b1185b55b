// WebKitGTK (Debian's webkit2gtk-driver): /usr/bin/WebKitWebDriver speaks W3C WebDriver over HTTP, driven here
// with plain fetch() calls, and starts MiniBrowser in automation mode. MiniBrowser needs an X display: an Xvfb
// server is started on the first session (its display number chosen by Xvfb itself) and stopped by close().
// `env` goes into the driver's environment, which the browser inherits: JavaScriptCore reads its options from
// JSC_* variables (JSC_useJIT=0, JSC_useSharedArrayBuffer=1, JSC_useWasmRelaxedSIMD=1).
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';

const DRIVER = process.env.WEBKIT_DRIVER_PATH ?? '/usr/bin/WebKitWebDriver';
const BROWSER = process.env.WEBKIT_BROWSER_PATH ?? '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
const XVFB = '/usr/bin/Xvfb';

export const webkit = {
  name: 'webkit',
  missing() {
    const absent = [DRIVER, BROWSER, XVFB].filter((p) => !existsSync(p));
    return absent.length === 0 ? null : `${absent.join(', ')} not found: apt-get install -y webkit2gtk-driver xvfb`;
  },
  open: (options) => openSession(options),
  close: stopXvfb,
};

let xvfb = null;

/** Starts Xvfb once; resolves to its DISPLAY (':N'). */
function display() {
  xvfb ??= new Promise((resolve, reject) => {
    const proc = spawn(XVFB, ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (d) => { err += d; });
    proc.stdio[3].on('data', (d) => resolve({ proc, display: `:${String(d).trim()}` }));
    proc.once('exit', (code) => reject(new Error(`Xvfb exited with ${code}: ${err}`)));
  });
  return xvfb.then((x) => x.display);
}

async function stopXvfb() {
  if (xvfb === null) return;
  const { proc } = await xvfb.catch(() => ({}));
  xvfb = null;
  proc?.kill();
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    }).once('error', reject);
  });
}

async function openSession({ env = {} } = {}) {
  const port = await freePort();
  const driver = spawn(DRIVER, [`--port=${port}`], {
    env: { ...process.env, DISPLAY: await display(), ...env }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  driver.stderr.on('data', (d) => { log = (log + d).slice(-4000); });
  const base = `http://127.0.0.1:${port}`;
  const call = async (method, path, body) => {
    const res = await fetch(base + path, { method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
    const json = await res.json();
    if (!res.ok) throw new Error(`WebDriver ${method} ${path}: ${json.value?.error} ${json.value?.message}`);
    return json.value;
  };
  try {
    // The driver takes a moment to listen.
    for (let i = 0; ; i++) {
      try {
        await call('GET', '/status');
        break;
      } catch (e) {
        if (i > 100 || driver.exitCode !== null) throw new Error(`WebKitWebDriver did not start: ${e.message} ${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const session = await call('POST', '/session', {
      capabilities: { alwaysMatch: { 'webkitgtk:browserOptions': { binary: BROWSER, args: ['--automation'] } } },
    });
    const id = session.sessionId;
    const s = (method, path, body) => call(method, `/session/${id}${path}`, body);
    await s('POST', '/timeouts', { script: 600_000, pageLoad: 120_000 });
    await s('POST', '/window/rect', { width: 1280, height: 800 }).catch(() => undefined);
    const caps = session.capabilities;
    return {
      version: `WebKitGTK ${caps.browserVersion}`,
      goto: (url) => s('POST', '/url', { url }),
      evaluate: (expression) => s('POST', '/execute/sync', { script: `return (${expression});`, args: [] }),
      errors: () => [],
      async screenshot(path) {
        writeFileSync(path, Buffer.from(await s('GET', '/screenshot'), 'base64'));
      },
      async close() {
        await s('DELETE', '').catch(() => undefined);
        driver.kill();
      },
    };
  } catch (e) {
    driver.kill();
    throw e;
  }
}
