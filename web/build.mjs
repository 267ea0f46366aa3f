// build.mjs: bundles the dashboard with esbuild into dist/ (hashed asset names) and writes
// dist/index.html pointing at them. Run by `make web` (npm ci first when the lockfile changed).
import * as esbuild from 'esbuild';
import { mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await esbuild.build({
  entryPoints: [join(here, 'src/main.jsx')],
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'esm',
  target: ['chrome110', 'firefox115'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  splitting: true,   // pages import big libraries (dagre) on demand: a smaller first load
  metafile: true,
  logLevel: 'warning',
});

let js = '', css = '';
for (const [f, o] of Object.entries(result.metafile.outputs)) {
  // Dynamic imports are entry points too: the page's own is src/main.jsx.
  if (f.endsWith('.js') && o.entryPoint && o.entryPoint.endsWith('src/main.jsx')) js = basename(f);
  else if (f.endsWith('.css')) css = basename(f);
}
if (!js) throw new Error('esbuild produced no JavaScript');

const html = readFileSync(join(here, 'src/index.html'), 'utf8')
  .replace('%CSS%', css ? `<link rel="stylesheet" href="/assets/${css}">` : '')
  .replace('%JS%', `<script type="module" src="/assets/${js}"></script>`);
writeFileSync(join(out, 'index.html'), html);
console.log(`web: dist/index.html, assets/${js}${css ? ', assets/' + css : ''}`);
