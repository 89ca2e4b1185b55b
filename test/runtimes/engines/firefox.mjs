// Firefox ESR (Debian's firefox-esr), driven by puppeteer-core over WebDriver BiDi, headless. puppeteer-core
// never downloads a browser; Puppeteer 25 needs Node 22, so the devDependency is a 24.x release. `prefs` are
// Firefox preferences for the profile Puppeteer creates (javascript.options.wasm: false removes WebAssembly).
import { existsSync } from 'node:fs';
import puppeteer from 'puppeteer-core';
import { pageSession } from './page-session.mjs';

const FIREFOX = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';

export const firefox = {
  name: 'firefox',
  missing: () => (existsSync(FIREFOX) ? null : `${FIREFOX} not found: apt-get install -y firefox-esr (or set FIREFOX_PATH)`),
  open: (options) => openSession(options),
  close: async () => undefined,
};

async function openSession({ prefs = {} } = {}) {
  const browser = await puppeteer.launch({
    browser: 'firefox', executablePath: FIREFOX, headless: true, extraPrefsFirefox: prefs,
    defaultViewport: { width: 1280, height: 800 }, protocolTimeout: 600_000,
  });
  try {
    const page = await browser.newPage();
    return pageSession(browser, page, (await browser.version()).replace(/^firefox\//i, 'Firefox '));
  } catch (e) {
    await browser.close();
    throw e;
  }
}
