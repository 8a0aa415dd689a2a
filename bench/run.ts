/**
 * Quality and time of each method over a benchmark folder (layout of DESIGN.md).
 *
 *   node dist/bench/run.js [--bench bench/dev] [--methods classic,classic-noprior,rvm,selfie,naive] [--quick] [--out bench/results]
 *
 * Builds the dev benchmark first when the folder does not exist. Prints a Markdown table and writes
 * bench/results/quality.json and quality.md.
 */
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { loadCv } from '../src/cv.js';
import { evaluateFolder } from '../src/eval/evaluate.js';
import { createPlane, type ImageF32, type Plane } from '../src/image.js';
import { decodeImage } from '../src/io/decode.js';
import { encodePng } from '../src/io/encode.js';
import { createMatter, type Matter } from '../src/pipeline.js';
import { buildDevBenchmark } from './build-dev.js';

type Method = { name: string; label: string; run: (image: ImageF32, plate: ImageF32) => Promise<Plane> };

/** The naive baseline: |image − plate| (unaligned, uncorrected) thresholded at 0.1. */
function naive(image: ImageF32, plate: ImageF32): Plane {
  const out = createPlane(image.width, image.height);
  for (let p = 0; p < out.data.length; p++) {
    let s = 0;
    for (let c = 0; c < 3; c++) s += Math.abs(image.data[p * 3 + c]! - plate.data[p * 3 + c]!);
    out.data[p] = s / 3 > 0.1 ? 1 : 0;
  }
  return out;
}

async function methods(names: string[]): Promise<Method[]> {
  const cache = new Map<string, Matter>();
  const matter = async (key: string, make: () => Promise<Matter>) => { if (!cache.has(key)) cache.set(key, await make()); return cache.get(key)!; };
  const all: Record<string, Method> = {
    classic: { name: 'classic', label: 'cleanplate classic (plate + RVM prior)', run: async (i, p) => (await (await matter('classic', () => createMatter({ prior: 'rvm', engine: 'classic' }))).matte({ image: i, plate: p })).alpha },
    'classic-noprior': { name: 'classic-noprior', label: 'cleanplate classic (plate, no prior)', run: async (i, p) => (await (await matter('classic-np', () => createMatter({ prior: 'none', engine: 'classic' }))).matte({ image: i, plate: p })).alpha },
    rvm: { name: 'rvm', label: 'prior alone: Robust Video Matting', run: async (i) => (await (await matter('rvm', () => createMatter({ prior: 'rvm' }))).matte({ image: i })).alpha },
    selfie: { name: 'selfie', label: 'prior alone: MediaPipe Selfie', run: async (i) => (await (await matter('selfie', () => createMatter({ prior: 'selfie' }))).matte({ image: i })).alpha },
    naive: { name: 'naive', label: 'naive |image − plate| > 0.1', run: async (i, p) => naive(i, p) },
  };
  return names.map((n) => { const m = all[n]; if (!m) throw new Error(`unknown method '${n}' (${Object.keys(all).join(', ')})`); return m; });
}

async function main() {
  const { values } = parseArgs({ options: {
    bench: { type: 'string', default: 'bench/dev' }, data: { type: 'string', default: '../shared/data' },
    methods: { type: 'string', default: 'classic,classic-noprior,rvm,selfie,naive' }, quick: { type: 'boolean' },
    out: { type: 'string', default: 'bench/results' }, pred: { type: 'string', default: 'bench/results/pred' },
  } });
  await loadCv();
  if (!(await stat(values.bench!).then(() => true, () => false))) {
    console.error(`building the dev benchmark in ${values.bench} from ${values.data}`);
    await buildDevBenchmark(values.data!, values.bench!);
  }
  let items = (await readdir(values.bench!)).filter((f) => f.endsWith('.image.png')).map((f) => f.slice(0, -'.image.png'.length)).sort();
  if (values.quick) items = items.slice(0, 4);
  const rows: Record<string, unknown>[] = [];
  for (const method of await methods(values.methods!.split(','))) {
    const predDir = join(values.pred!, method.name);
    await mkdir(predDir, { recursive: true });
    let ms = 0;
    for (const name of items) {
      const image = await decodeImage(join(values.bench!, `${name}.image.png`));
      const plate = await decodeImage(join(values.bench!, `${name}.plate.png`));
      const t0 = performance.now();
      const alpha = await method.run(image, plate);
      ms += performance.now() - t0;
      await mkdir(join(predDir, name), { recursive: true });
      await writeFile(join(predDir, name, 'alpha.png'), await encodePng(alpha));
    }
    const gtDir = values.quick ? await subset(values.bench!, items) : values.bench!;
    const result = await evaluateFolder(predDir, gtDir);
    rows.push({ method: method.name, label: method.label, ...result.mean, msPerImage: ms / items.length, items: result.items });
    console.error(`${method.name}: SAD ${result.mean.sad.toFixed(2)} MSE ${result.mean.mseUnknown.toFixed(2)} (${(ms / items.length).toFixed(0)} ms/image)`);
  }
  const table = ['| method | SAD | MSE(U)×1e3 | MAD×1e3 | MSE×1e3 | Grad | Conn | ms/image |', '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.label} | ${(['sad', 'mseUnknown', 'mad', 'mse', 'grad', 'conn'] as const).map((k) => (r[k] as number).toFixed(2)).join(' | ')} | ${(r.msPerImage as number).toFixed(0)} |`)].join('\n');
  const meta = { bench: values.bench, items: items.length, machine: `${cpus().length}x ${cpus()[0]?.model ?? 'cpu'}`, node: process.version, date: new Date().toISOString() };
  await mkdir(values.out!, { recursive: true });
  await writeFile(join(values.out!, 'quality.json'), JSON.stringify({ meta, rows }, null, 2) + '\n');
  await writeFile(join(values.out!, 'quality.md'), `${table}\n\n${items.length} items of ${values.bench}; ${meta.machine}; ${meta.date}\n`);
  console.log(table);
}

/** A ground-truth folder view holding only the chosen items (for --quick). */
async function subset(bench: string, items: string[]): Promise<string> {
  const { mkdtemp, symlink } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { resolve } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'cleanplate-gt-'));
  for (const n of items) for (const k of ['alpha', 'trimap']) await symlink(resolve(bench, `${n}.${k}.png`), join(dir, `${n}.${k}.png`));
  return dir;
}

await main();
