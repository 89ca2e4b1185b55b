// `npm run test:hygiene`: the package as published. Runs on the `npm pack` tarball / its installed files:
//  - publint --strict (package.json fields, exports, files),
//  - @arethetypeswrong/cli with the esm-only profile (types resolve for every export under node16 and bundlers),
//  - size-limit (.size-limit.json budgets for the published files),
//  - a TypeScript consumer (typed-consumer.ts) compiled by tsc --noEmit with module nodenext and with bundler
//    resolution; its @ts-expect-error lines prove that misuse is a type error.
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, createConsumer, finish, removeConsumer } from './consumer.mjs';

const bin = (name) => join(ROOT, 'node_modules/.bin', name);
const results = [];
function run(name, cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  results.push({ ok: r.status === 0, name, detail: r.status === 0 ? output.split('\n').filter(Boolean).slice(-1)[0] : `exit ${r.status}\n${output}` });
}

const dir = createConsumer(['typed-consumer.ts']);
try {
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  const installed = join(dir, 'node_modules/wasm-attention');
  run('publint --strict (the installed package files)', bin('publint'), [installed, '--strict', '--pack', 'false'], ROOT);
  run('attw --profile esm-only (the npm pack tarball)', bin('attw'), [join(dir, tarball), '--profile', 'esm-only', '--format', 'table-flipped'], ROOT);
  run('size-limit budgets (.size-limit.json)', bin('size-limit'), [], ROOT);
  for (const [module, moduleResolution] of [['nodenext', 'nodenext'], ['esnext', 'bundler']]) {
    const config = `tsconfig.${moduleResolution}.json`;
    writeFileSync(join(dir, config), JSON.stringify({
      compilerOptions: {
        target: 'es2022', module, moduleResolution, strict: true, noEmit: true, lib: ['es2022', 'dom'], types: [],
        skipLibCheck: false, noUnusedLocals: false,
      },
      files: ['typed-consumer.ts'],
    }));
    run(`tsc --noEmit, a typed consumer (module ${module}, moduleResolution ${moduleResolution})`, bin('tsc'), ['-p', config], dir);
  }
} finally {
  removeConsumer(dir);
}
finish('hygiene', results);
