/**
 * Quality and time of each method over a benchmark folder (layout of DESIGN.md).
 *
 *   npm run bench [-- --quick] [--bench DIR] [--methods network,refined,classic,classic-noprior,rvm,selfie,naive] [--out bench/results]
 *
 * Builds the dev benchmark first when the folder does not exist. Writes bench/results/quality.{md,json},
 * speed.{md,json}; the full run also draws quality-vs-time.svg, the contact sheet of the real captures,
 * and rewrites the README's results and speed sections. --quick: 4 items, 512x512 speed only, no README. --quality-only: the quality table alone. --speed-only: speed and memory alone (README's speed section). --plate-check-only: the plate check's table alone. --readme-only: copy the last run's tables into the README.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { loadCv } from '../src/cv.js';
import { assertComplete, evaluateFolder } from '../src/eval/evaluate.js';
import { createPlane, type ImageF32, type Plane } from '../src/image.js';
import { decodeImage } from '../src/io/decode.js';
import { encodePng } from '../src/io/encode.js';
import { createMatter, type Matter } from '../src/pipeline.js';
import { buildDevBenchmark } from './build-dev.js';
import { contactSheet } from './contact.js';
import { qualityTimePlot } from './plot.js';
import { plateCheckBench, plateCheckTable } from './plate-check.js';
import { cliMemory, cliPaired, runPaired, runSpeed, speedTable } from './speed.js';
import { updateReadme } from './readme.js';
import { MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';

type Method = { name: string; label: string; run: (image: ImageF32, plate: ImageF32) => Promise<{ alpha: Plane; foreground?: ImageF32 }> };

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
    classic: { name: 'classic', label: 'cleanplate classic (plate + RVM prior)', run: async (i, p) => (await (await matter('classic', () => createMatter({ prior: 'rvm', engine: 'classic' }))).matte({ image: i, plate: p })) },
    refined: { name: 'refined', label: 'cleanplate refined, experimental (classic + learned band refiner, RVM prior)', run: async (i, p) => (await (await matter('refined', () => createMatter({ prior: 'rvm', engine: 'refined' }))).matte({ image: i, plate: p })) },
    'classic-noprior': { name: 'classic-noprior', label: 'cleanplate classic (plate, no prior)', run: async (i, p) => (await (await matter('classic-np', () => createMatter({ prior: 'none', engine: 'classic' }))).matte({ image: i, plate: p })) },
    rvm: { name: 'rvm', label: 'prior alone: Robust Video Matting', run: async (i) => (await (await matter('rvm', () => createMatter({ prior: 'rvm' }))).matte({ image: i })) },
    selfie: { name: 'selfie', label: 'prior alone: MediaPipe Selfie', run: async (i) => (await (await matter('selfie', () => createMatter({ prior: 'selfie' }))).matte({ image: i })) },
    naive: { name: 'naive', label: 'naive: abs(image − plate) > 0.1', run: async (i, p) => ({ alpha: naive(i, p) }) },
    network: { name: 'network', label: 'cleanplate network, experimental (the paper\'s generator, early CPU checkpoint; plate + RVM prior)', run: async (i, p) => (await (await matter('network', () => createMatter({ prior: 'rvm', engine: 'network' }))).matte({ image: i, plate: p })) },
  };
  return names.map((n) => { const m = all[n]; if (!m) throw new Error(`unknown method '${n}' (${Object.keys(all).join(', ')})`); return m; });
}

const FLOPS_NOTE = 'Effective GFLOP/s count the direct convolutions\' multiply-adds (`gmacs()` in training/network.py): a figure above '
  + 'the measured matmul peak means ONNX Runtime computes the convolutions with fewer operations than that count (its kernels, '
  + 'not ours, set the speed). The peak is the best of five 2048x2048 fp32 numpy (OpenBLAS) matrix products, both cores, in the same run.';

// The default engine first; the experimental learned engines (not better than classic yet) below it, the paper's under-trained generator last.
const DEFAULT_METHODS = ['classic', ...(existsSync(join(MODELS_DIR, 'refiner.json')) ? ['refined'] : []), 'classic-noprior', 'rvm', 'selfie', 'naive', ...(existsSync(join(MODELS_DIR, 'network.json')) ? ['network'] : [])];

function peakFlops(): { gflops: number; numpy: string } | undefined {
  const r = spawnSync('python3', [join(PACKAGE_ROOT, 'bench', 'peak_flops.py')], { encoding: 'utf8' });
  try { return r.status === 0 ? JSON.parse(r.stdout) : undefined; } catch { return undefined; }
}

async function main() {
  const { values } = parseArgs({ options: {
    bench: { type: 'string', default: 'bench/dev' }, data: { type: 'string', default: '../shared/data' },
    methods: { type: 'string', default: DEFAULT_METHODS.join(',') }, quick: { type: 'boolean' },
    out: { type: 'string', default: 'bench/results' }, 'quality-only': { type: 'boolean' }, 'speed-only': { type: 'boolean' }, 'plate-check-only': { type: 'boolean' }, 'readme-only': { type: 'boolean' }, pred: { type: 'string', default: 'bench/results/pred' },
  } });
  if (values['readme-only']) {
    // Re-publish the last full run's figures (bench/results/*.md) without measuring again.
    const [quality, speed] = await Promise.all(['quality.md', 'speed.md'].map((f) => readFile(join(values.out!, f), 'utf8')));
    await updateReadme('results', quality!.trim());
    await updateReadme('speed', speed!.trim());
    return;
  }
  await loadCv();
  if (values['plate-check-only']) {
    await plateCheckSection(values.bench!, values.data!, values.out!, `${cpus().length}x ${cpus()[0]?.model ?? 'cpu'}`, new Date().toISOString());
    return;
  }
  if (values['speed-only']) {
    // Re-measure speed and memory alone, keeping the last run's quality table.
    await speedSection(values.methods!.split(','), values.quick ?? false, values.data!, values.out!, { machine: `${cpus().length}x ${cpus()[0]?.model ?? 'cpu'}`, node: process.version, date: new Date().toISOString() });
    return;
  }
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
      const { alpha } = await method.run(image, plate);
      ms += performance.now() - t0;
      await mkdir(join(predDir, name), { recursive: true });
      await writeFile(join(predDir, name, 'alpha.png'), await encodePng(alpha));
    }
    const gtDir = values.quick ? await subset(values.bench!, items) : values.bench!;
    const result = await evaluateFolder(predDir, gtDir);
    assertComplete(result, predDir); // every method wrote every item above: a gap is a bug, not a score
    rows.push({ method: method.name, label: method.label, ...result.mean, msPerImage: ms / items.length, items: result.items });
    console.error(`${method.name}: SAD ${result.mean.sad.toFixed(2)} MSE ${result.mean.mseUnknown.toFixed(2)} (${(ms / items.length).toFixed(0)} ms/image)`);
  }
  const table = ['| method | SAD | MSE(U)×1e3 | MAD×1e3 | MSE×1e3 | Grad | Conn | ms/image |', '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.label} | ${(['sad', 'mseUnknown', 'mad', 'mse', 'grad', 'conn'] as const).map((k) => (r[k] as number).toFixed(2)).join(' | ')} | ${(r.msPerImage as number).toFixed(0)} |`)].join('\n');
  const meta = { bench: values.bench, items: items.length, machine: `${cpus().length}x ${cpus()[0]?.model ?? 'cpu'}`, node: process.version, date: new Date().toISOString() };
  await mkdir(values.out!, { recursive: true });
  await writeFile(join(values.out!, 'quality.json'), JSON.stringify({ meta, rows }, null, 2) + '\n');
  const where = `${items.length} items of \`${values.bench}\`; ${meta.machine}; Node ${meta.node}; ${meta.date.slice(0, 10)}`;
  await writeFile(join(values.out!, 'quality.md'), `${table}\n\n${where}\n`);
  console.log(table);
  if (values['quality-only']) return;

  const methodList = values.methods!.split(',');
  await speedSection(methodList, values.quick ?? false, values.data!, values.out!, meta, false);
  if (values.quick) return;

  await plateCheckSection(values.bench!, values.data!, values.out!, meta.machine, meta.date);

  const svg = qualityTimePlot(rows.map((r) => ({ label: String(r.method), ms: r.msPerImage as number, sad: r.sad as number })), `Dev benchmark (${items.length} composites): SAD vs time per image`);
  await writeFile(join(values.out!, 'quality-vs-time.svg'), svg);
  if (existsSync(join(values.data!, 'bgm-samples'))) {
    const sheetMethods = (await methods(methodList.filter((m) => m !== 'classic-noprior'))).map((m) => ({ label: m.name, run: m.run }));
    await contactSheet(values.data!, sheetMethods, join(values.out!, 'contact-sheet.jpg'));
  }
  await updateReadme('results', `${table}\n\n${where}`);
  await updateReadme('speed', (await readFile(join(values.out!, 'speed.md'), 'utf8')).trim());
}

/** The plate check: right plates never refused (dev set and close-ups), plates of another scene refused; writes plate-check.{json,md} and the README's section. */
async function plateCheckSection(bench: string, data: string, out: string, machine: string, date: string): Promise<void> {
  const checkRows = await plateCheckBench(bench, 'bench/dev-closeup', data);
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'plate-check.json'), JSON.stringify(checkRows, null, 2) + '\n');
  const checkText = `${plateCheckTable(checkRows)}\n\nClassic engine, prior rvm. Close-ups: \`node dist/bench/build-closeup.js\` (the 18 objects cropped to cover 63–96% of a 320x320 frame over defocused photographs; plates re-shot with a 3 px shift, 0.5° turn and another exposure). Other-scene plates: each item with the next item's plate scaled to cover; they are refused only where enough background is visible to judge (README: the plate check's rule), and otherwise matted with a warning. ${machine}; ${date.slice(0, 10)}.`;
  await writeFile(join(out, 'plate-check.md'), checkText + '\n');
  await updateReadme('platecheck', checkText);
}

/** Speed of the whole `matte` per stage and size, interleaved rounds of one process per method; writes speed.{md,json} (and the README's section when asked). */
async function speedSection(methodList: string[], quick: boolean, data: string, out: string, meta: { machine: string; node: string; date: string }, readme = true): Promise<void> {
  const speedMethods = ['rvm', ...(methodList.includes('classic') ? ['classic'] : []), ...(methodList.includes('refined') ? ['refined'] : []), ...(methodList.includes('network') ? ['network'] : [])];
  const rounds = quick ? 1 : 5;
  const speed = runSpeed({ runs: rounds, sizes: quick ? ['512x512'] : ['512x512', '1280x720', '1920x1080'], methods: speedMethods, data });
  const peak = peakFlops();
  const net = speed.filter((r) => r.network).map((r) => `${r.size}: network input ${r.network!.networkSize}, ${r.network!.gmac} GMac in ${r.network!.inferenceMs.toFixed(0)} ms = ${r.network!.gflops} effective GFLOP/s (direct-convolution count)${peak ? ` (${((100 * r.network!.gflops) / peak.gflops).toFixed(0)}% of the ${peak.gflops} GFLOP/s fp32 matmul peak measured by bench/peak_flops.py, numpy ${peak.numpy})` : ''}`);
  const engines = speedMethods.filter((m) => m !== 'rvm');
  const command = quick ? [] : await cliPaired(engines, '1920x1080', 5, data);
  const paired = quick ? [] : runPaired(engines, '1920x1080', 7, data);
  const ratios = (rows: typeof paired) => rows.map((p) => `${p.engine} **${p.ratio.toFixed(2)}x** (${p.withPlateMs} ms vs ${p.priorOnlyMs} ms)`).join(', ');
  const pairedLine = command.length ? `\n\nWith plate / without, at 1920x1080 (target ≤ 2.5x). The whole \`cleanplate matte\` command, a fresh process each (start-up and model loading included), the two commands alternating, median of ${command[0]!.pairs} pair ratios: ${ratios(command)}. In one warm process (the library matting image after image; start-up paid once), alternating, median of ${paired[0]?.pairs ?? 0} pairs: ${ratios(paired)}.` : '';
  const memory = quick ? [] : await cliMemory(speedMethods.filter((m) => m !== 'rvm'), data);
  const memoryLine = memory.length ? `\n\nOne \`cleanplate matte\` at 3840x2160 with plate and colour composite (one CLI process per engine, all outputs written; peak RSS from its report.json; target < 2 GB): ${memory.map((m) => `${m.engine} ${m.peakRssMb} MB in ${(m.totalMs / 1000).toFixed(1)} s`).join(', ')}.` : '';
  const speedText = `${speedTable(speed)}${pairedLine}${memoryLine}\n\nMedian of ${rounds} rounds; a round runs every method once, each in a fresh process (one warm-up, one timed run), so that the VM's drifting speed hits all methods alike; peak RSS is the highest of a method's processes (/proc's VmHWM); input: the real hand-held capture resized to cover each size; composite onto a colour. ${meta.machine}; Node ${meta.node}; ${meta.date.slice(0, 10)}.${net.length ? '\n\n' + net.map((l) => `- ${l}`).join('\n') + '\n\n' + FLOPS_NOTE : ''}`;
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'speed.json'), JSON.stringify({ meta, peak, rows: speed, ratio1080p: { command, warm: paired }, cli4k: memory }, null, 2) + '\n');
  await writeFile(join(out, 'speed.md'), speedText + '\n');
  console.log(speedText);
  if (readme && !quick) await updateReadme('speed', speedText);
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
