// Chromium (Debian's /usr/bin/chromium), driven by playwright-core, headless. playwright-core never downloads a
// browser. `args` are extra command-line flags (--js-flags=--jitless removes WebAssembly).
import { existsSync } from 'node:fs';
import { chromium as playwright } from 'playwright-core';
import { pageSession } from './page-session.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// Without the background-networking flags Chromium keeps dialling Google's hosts, which this machine refuses.
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

export const chromium = {
  name: 'chromium',
  missing: () => (existsSync(CHROMIUM) ? null : `${CHROMIUM} not found: apt-get install -y chromium (or set CHROMIUM_PATH)`),
  open: (options) => openSession(options),
  close: async () => undefined,
};

async function openSession({ args = [] } = {}) {
  const browser = await playwright.launch({ executablePath: CHROMIUM, args: [...ARGS, ...args], headless: true });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(600_000);
    return pageSession(browser, page, `Chromium ${browser.version()}`);
  } catch (e) {
    await browser.close();
    throw e;
  }
}
