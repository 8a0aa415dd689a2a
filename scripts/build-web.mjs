#!/usr/bin/env node
/**
 * Builds the browser app into dist/web/: a static folder any web server can serve, and the one
 * `cleanplate web` serves. esbuild bundles src/web/ (the page and its two workers) with the same core
 * modules Node runs (align, prior, matte, composite, metrics); only src/platform/index.ts, the Node
 * platform, is swapped for src/platform/browser.ts. Models, TensorFlow.js's WebAssembly binaries and
 * OpenCV.js (inside the bundle) are copied beside the page: the app fetches nothing from elsewhere.
 *
 *   node scripts/build-web.mjs [--out DIR] [--no-minify]
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { out: { type: 'string' }, 'no-minify': { type: 'boolean' } } });
const OUT = resolve(values.out ?? join(ROOT, 'dist', 'web'));
const SRC = join(ROOT, 'src', 'web');
const require = createRequire(import.meta.url);

/** The core imports ../platform/index.js and ../platform/tfjs.js; in the bundle those modules are the browser's. */
const BROWSER_MODULES = { 'index.js': 'browser.ts', 'tfjs.js': 'tfjs-browser.ts' };
const browserPlatform = {
  name: 'browser-platform',
  setup(build) {
    build.onResolve({ filter: /platform\/(index|tfjs)\.js$/ }, (args) => {
      const target = resolve(args.resolveDir, args.path.replace(/(index|tfjs)\.js$/, (name) => BROWSER_MODULES[name]));
      if (!target.startsWith(join(ROOT, 'src', 'platform'))) return undefined;
      return { path: target };
    });
  },
};


async function copyInto(from, to) {
  await mkdir(dirname(to), { recursive: true });
  await copyFile(from, to);
}

async function walk(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...await walk(path));
    else out.push(path);
  }
  return out;
}

const started = Date.now();
await rm(OUT, { recursive: true, force: true });
await mkdir(OUT, { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: join(SRC, 'app.ts'), embed: join(SRC, 'embed.ts'), 'matte-worker': join(SRC, 'matte-worker.ts'), 'prior-worker': join(SRC, 'prior-worker.ts'), style: join(SRC, 'app.css') },
  outdir: OUT,
  bundle: true,
  // Classic scripts: the workers load OpenCV.js with importScripts (src/platform/browser.ts).
  format: 'iife',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16.4'],
  minify: !values['no-minify'],
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
  legalComments: 'linked',
  define: { 'process.env.NODE_ENV': '"production"' },
  plugins: [browserPlatform],
});

// Nothing of Node may reach the bundle: the platform swap must have caught every import. (Of
// src/plate, build.ts is the pure core that the live capture shares; source.ts reads files.)
const inputs = Object.keys(result.metafile.inputs);
const leaked = inputs.filter((p) => /^src\/(io|video|service|cli)\/|^src\/plate\/(?!build\.ts$)|^src\/(pipeline|paths|memory)\.ts$|^src\/platform\/index\.ts$|onnxruntime|sharp/.test(p));
if (leaked.length) throw new Error(`Node-only modules in the web bundle: ${leaked.join(', ')}`);
// The page's own thread loads neither OpenCV.js nor TensorFlow.js: they belong to the workers.
const pageInputs = Object.keys(result.metafile.outputs[relative(process.cwd(), join(OUT, 'app.js')).split('\\').join('/')]?.inputs ?? {});
if (!pageInputs.length) throw new Error('app.js is not among the outputs');
const heavy = pageInputs.filter((p) => /opencv-js|@tensorflow|src\/cv\.ts/.test(p));
if (heavy.length) throw new Error(`the page's bundle pulls in worker-only modules: ${heavy.slice(0, 5).join(', ')}`);

// The page, its models (hash-checked by the app against manifest.json) and the WebAssembly binaries.
await copyInto(join(SRC, 'index.html'), join(OUT, 'index.html'));
await copyInto(join(SRC, 'embed.html'), join(OUT, 'embed.html'));
await copyInto(join(SRC, 'icon.svg'), join(OUT, 'icon.svg'));
await copyInto(require.resolve('@techstark/opencv-js'), join(OUT, 'vendor', 'opencv.js'));
for (const file of ['manifest.json', 'rvm.json', 'rvm.bin', 'selfie.json', 'selfie.bin', 'README.md']) {
  await copyInto(join(ROOT, 'models', 'prior', file), join(OUT, 'models', 'prior', file));
}
const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
for (const file of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) {
  await copyInto(join(wasmDir, file), join(OUT, 'tfjs', file));
}
// Headers for static hosts that read a _headers file (Netlify, Cloudflare Pages): WebAssembly threads
// need cross-origin isolation; without it the app runs the prior on one thread.
await writeFile(join(OUT, '_headers'), `/*\n  Cross-Origin-Opener-Policy: same-origin\n  Cross-Origin-Embedder-Policy: require-corp\n  Cross-Origin-Resource-Policy: same-origin\n`);

// Every file the page may fetch, with its size: the page preloads what its mode needs behind the
// loading bar (the workers then find it in the HTTP cache).
const files = (await walk(OUT)).map((p) => relative(OUT, p).split('\\').join('/')).sort();
const assets = [];
for (const f of files) {
  if (/\.map$|^(index|embed)\.html$|^embed\.js$|^_headers$|\.LEGAL\.txt$|README\.md$|^icon\.svg$/.test(f)) continue;
  assets.push({ url: f, bytes: (await stat(join(OUT, f))).size });
}
const version = createHash('sha256').update(JSON.stringify(assets)).digest('hex').slice(0, 12);
await writeFile(join(OUT, 'assets.json'), JSON.stringify({ version, files: assets }, null, 2) + '\n');

const total = assets.reduce((s, f) => s + f.bytes, 0);
process.stdout.write(`built ${relative(process.cwd(), OUT) || '.'}/ in ${((Date.now() - started) / 1000).toFixed(1)} s (${files.length} files, ${(total / 1e6).toFixed(1)} MB without source maps)\n`);
