#!/usr/bin/env node
// A tiny static file server on 127.0.0.1 (no dependencies). `npm run demo` serves the repository root
// cross-origin isolated (COOP + COEP, so the demo can run threads where the browser has SharedArrayBuffer; set
// ISOLATION=0 to serve without) and prints the demo's URL; the browser tests and the browser benchmark import
// startServer() to serve pages the same way.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.map': 'application/json', '.ts': 'text/plain; charset=utf-8', '.md': 'text/plain; charset=utf-8',
};

/**
 * Serves `root` read-only on 127.0.0.1 (`port` 0 = any free port), adding `headers` to every response (e.g.
 * COOP + COEP for a cross-origin isolated page). Resolves to { url, close }.
 */
export function startServer(root, port = 0, headers = {}) {
  const base = resolve(root);
  const server = createServer((req, res) => {
    let path;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    let file = normalize(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) {
      res.writeHead(403).end();
      return;
    }
    try {
      if (statSync(file).isDirectory()) file = join(file, 'index.html');
      statSync(file);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolveStart, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: actual } = server.address();
      resolveStart({ url: `http://127.0.0.1:${actual}`, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(fileURLToPath(import.meta.url), '../..');
  const port = Number(process.env.PORT ?? 8080);
  const isolated = process.env.ISOLATION !== '0';
  const headers = isolated ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {};
  const { url } = await startServer(root, port, headers);
  console.log(`wasm-attention demo: ${url}/demo/   (serving ${root}${isolated ? ', cross-origin isolated' : ''}; Ctrl+C to stop)`);
}
