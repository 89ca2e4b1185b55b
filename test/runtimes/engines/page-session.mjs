// The session object both page-driving libraries give the suite (playwright-core's and puppeteer-core's pages
// have the same methods for what it needs): errors collected from the page, then navigation, evaluation,
// screenshots and closing the browser. webkit.mjs speaks W3C WebDriver itself and builds its own.
export function pageSession(browser, page, version) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e?.message ?? e)));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  return {
    version,
    goto: (url) => page.goto(url),
    evaluate: (expression) => page.evaluate(expression),
    errors: () => errors,
    screenshot: (path) => page.screenshot({ path }),
    close: () => browser.close(),
  };
}
