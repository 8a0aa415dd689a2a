/**
 * Per-stage milliseconds of the whole `matte` path at 512x512, 1280x720 and 1920x1080 for each
 * method: the median of several rounds (each a fresh process, one warm-up, one timed run), rounds
 * interleaving the methods; peak resident memory is the highest of its method's processes.
 *
 *   node dist/bench/speed.js [--runs 3] [--sizes 512x512,1280x720,1920x1080] [--methods rvm,classic,network]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadCv } from '../src/cv.js';
import { peakRssMB } from '../src/memory.js';
import { buildScene } from '../src/demo/scene.js';
import { resizeCover } from '../src/composite/index.js';
import type { ImageF32 } from '../src/image.js';
import { decodeImage } from '../src/io/decode.js';
import { encodePng } from '../src/io/encode.js';
import { encodeMatteOutputs } from '../src/io/outputs.js';
import { createMatter, type MatterOptions } from '../src/pipeline.js';

export interface SpeedRow { method: string; size: string; stages: Record<string, number>; totalMs: number; peakRssMb: number; network?: { networkSize: string; gmac: number; inferenceMs: number; gflops: number } }

const METHODS: Record<string, { options: MatterOptions; plate: boolean }> = {
  rvm: { options: { prior: 'rvm', engine: 'classic' }, plate: false },
  classic: { options: { prior: 'rvm', engine: 'classic' }, plate: true },
  refined: { options: { prior: 'rvm', engine: 'refined' }, plate: true },
  network: { options: { prior: 'rvm', engine: 'network' }, plate: true },
};

/** GMac of the ngf-16 generator at 512x512, measured by training/network.py's gmacs(16). */
export const GMAC_AT_512 = 27.5;

/** The middle value (the upper of the two middle ones for an even count). */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Input files of the requested size (the real hand-held capture, else the synthetic scene). */
export async function inputs(width: number, height: number, data: string): Promise<{ image: string; plate: string }> {
  const img = join(data, 'bgm-samples', 'input', '0001_img.png');
  let image: ImageF32, plate: ImageF32;
  if (existsSync(img)) {
    image = resizeCover(await decodeImage(img), width, height);
    plate = resizeCover(await decodeImage(join(data, 'bgm-samples', 'input', '0001_back.png')), width, height);
  } else {
    ({ image, plate } = buildScene(width, height));
  }
  const dir = await mkdtemp(join(tmpdir(), 'cleanplate-speed-'));
  await writeFile(join(dir, 'image.png'), await encodePng(image));
  await writeFile(join(dir, 'plate.png'), await encodePng(plate));
  return { image: join(dir, 'image.png'), plate: join(dir, 'plate.png') };
}

async function child(method: string, size: string, runs: number, data: string): Promise<SpeedRow> {
  await loadCv();
  const [w, h] = size.split('x').map(Number) as [number, number];
  const spec = METHODS[method]!;
  const matter = await createMatter(spec.options);
  const { image, plate } = await inputs(w, h, data);
  const samples: Record<string, number>[] = [];
  let details: Record<string, unknown> = {};
  for (let r = 0; r <= runs; r++) {
    const t0 = performance.now();
    const result = await matter.matte({ image, plate: spec.plate ? plate : undefined, color: '#00b140' });
    const t1 = performance.now();
    await encodeMatteOutputs(result);
    const stages = { ...result.report.timings, encode: performance.now() - t1, total: performance.now() - t0 };
    if (r > 0) samples.push(stages); // run 0 is the warm-up
    details = result.report.engineDetails;
  }
  const stages: Record<string, number> = {};
  for (const k of Object.keys(samples[0]!)) stages[k] = +median(samples.map((s) => s[k] ?? 0)).toFixed(1);
  const { total, ...perStage } = stages;
  const row: SpeedRow = { method, size, stages: perStage, totalMs: total!, peakRssMb: peakRssMB() };
  if (method === 'network' && typeof details.networkSize === 'string') {
    const [nw, nh] = details.networkSize.split('x').map(Number) as [number, number];
    const gmac = (GMAC_AT_512 * nw * nh) / (512 * 512);
    const ms = Number(details.inferenceMs);
    row.network = { networkSize: details.networkSize, gmac: +gmac.toFixed(1), inferenceMs: ms, gflops: +((2 * gmac) / (ms / 1000)).toFixed(1) };
  }
  return row;
}

/**
 * Each method and size in its own process (so that peak memory is its own), and the runs taken in
 * rounds that visit every method in turn: a shared VM's speed drifts by tens of percent within
 * a minute, and interleaving lets that drift hit every method alike instead of whichever ran then.
 */
export function runSpeed(opts: { runs: number; sizes: string[]; methods: string[]; data: string }): SpeedRow[] {
  const rows: SpeedRow[] = [];
  const self = fileURLToPath(import.meta.url);
  for (const size of opts.sizes) {
    const rounds = new Map<string, SpeedRow[]>();
    for (let round = 0; round < opts.runs; round++) for (const method of opts.methods) {
      const r = spawnSync(process.execPath, [self, '--child', method, '--size', size, '--runs', '1', '--data', opts.data], { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (r.status !== 0) { console.error(`${method} @ ${size}: ${r.stderr.trim().split('\n').pop()}`); continue; }
      const row = JSON.parse(r.stdout.trim().split('\n').pop()!) as SpeedRow;
      rounds.set(method, [...(rounds.get(method) ?? []), row]);
    }
    for (const method of opts.methods) {
      const runs = rounds.get(method);
      if (!runs?.length) continue;
      const stages: Record<string, number> = {};
      for (const k of Object.keys(runs[0]!.stages)) stages[k] = +median(runs.map((x) => x.stages[k] ?? 0)).toFixed(1);
      const typical = runs.find((x) => x.totalMs === median(runs.map((y) => y.totalMs)))!;
      const row: SpeedRow = { ...typical, stages, peakRssMb: Math.max(...runs.map((x) => x.peakRssMb)) };
      rows.push(row);
      console.error(`${method} @ ${size}: ${row.totalMs.toFixed(0)} ms (runs ${runs.map((x) => x.totalMs.toFixed(0)).join(', ')}), peak ${row.peakRssMb} MB`);
    }
  }
  return rows;
}

export interface PairedRow { engine: string; size: string; pairs: number; priorOnlyMs: number; withPlateMs: number; ratio: number }

/**
 * The with-plate / prior-only cost ratio measured in one process: prior-only and with-plate runs
 * alternate, and each with-plate run is divided by the prior-only run just before it, so a drift
 * of the machine's speed cancels within each pair. Median of the pair ratios.
 */
async function pairedChild(engine: string, size: string, pairs: number, data: string): Promise<PairedRow> {
  await loadCv();
  const [w, h] = size.split('x').map(Number) as [number, number];
  const matter = await createMatter({ prior: 'rvm', engine: engine as MatterOptions['engine'] });
  const { image, plate } = await inputs(w, h, data);
  const once = async (withPlate: boolean) => {
    const t0 = performance.now();
    const result = await matter.matte({ image, plate: withPlate ? plate : undefined, color: '#00b140' });
    await encodeMatteOutputs(result);
    return performance.now() - t0;
  };
  await once(false); await once(true); // warm-up
  const priorOnly: number[] = [], withPlate: number[] = [];
  for (let k = 0; k < pairs; k++) { priorOnly.push(await once(false)); withPlate.push(await once(true)); }
  return pairedRow(engine, size, priorOnly, withPlate);
}

/** Medians of alternating prior-only / with-plate timings, and the median of each pair's ratio. */
function pairedRow(engine: string, size: string, priorOnly: number[], withPlate: number[]): PairedRow {
  const ratios = withPlate.map((b, k) => b / priorOnly[k]!);
  return { engine, size, pairs: ratios.length, priorOnlyMs: +median(priorOnly).toFixed(0), withPlateMs: +median(withPlate).toFixed(0), ratio: +median(ratios).toFixed(2) };
}

export function runPaired(engines: string[], size: string, pairs: number, data: string): PairedRow[] {
  const self = fileURLToPath(import.meta.url);
  const rows: PairedRow[] = [];
  for (const engine of engines) {
    const r = spawnSync(process.execPath, [self, '--paired', engine, '--size', size, '--runs', String(pairs), '--data', data], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) { console.error(`paired ${engine}: ${r.stderr.trim().split('\n').pop()}`); continue; }
    const row = JSON.parse(r.stdout.trim().split('\n').pop()!) as PairedRow;
    rows.push(row);
    console.error(`paired ${engine} @ ${size}: prior-only ${row.priorOnlyMs} ms, with plate ${row.withPlateMs} ms, ratio ${row.ratio}`);
  }
  return rows;
}

/** Input files of a size ("WxH") and the path of the CLI that the command-level measures run. */
async function cliInputs(size: string, data: string): Promise<{ image: string; plate: string; cli: string }> {
  const [w, h] = size.split('x').map(Number) as [number, number];
  await loadCv();
  return { ...(await inputs(w, h, data)), cli: fileURLToPath(new URL('../../bin/cleanplate.js', import.meta.url)) };
}

/**
 * The issue's own measure: the whole `cleanplate matte` command (a fresh process: start-up, model
 * loading, decode, matte, encode) with a plate against the same command without one, alternating,
 * median of the pair ratios.
 */
export async function cliPaired(engines: string[], size: string, pairs: number, data: string): Promise<PairedRow[]> {
  const { image, plate, cli } = await cliInputs(size, data);
  const rows: PairedRow[] = [];
  for (const engine of engines) {
    const out = await mkdtemp(join(tmpdir(), 'cleanplate-pair-'));
    const once = (withPlate: boolean, k: number) => {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [cli, 'matte', image, ...(withPlate ? ['--plate', plate] : []), '--engine', engine, '--color', '#00b140', '--out', join(out, `${withPlate ? 'p' : 'n'}${k}`)], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`cleanplate matte (${engine}): ${r.stderr.trim()}`);
      return performance.now() - t0;
    };
    once(false, -1); once(true, -1); // warm the file cache
    const priorOnly: number[] = [], withPlate: number[] = [];
    for (let k = 0; k < pairs; k++) { priorOnly.push(once(false, k)); withPlate.push(once(true, k)); }
    const row = pairedRow(engine, size, priorOnly, withPlate);
    rows.push(row);
    console.error(`cleanplate matte ${engine} @ ${size}: prior-only ${row.priorOnlyMs} ms, with plate ${row.withPlateMs} ms, ratio ${row.ratio}`);
  }
  return rows;
}

export interface CliMemoryRow { engine: string; size: string; peakRssMb: number; totalMs: number }

/**
 * What a user's single `cleanplate matte` costs at 4K: one CLI process per engine (plate, colour
 * composite, all outputs written), its peak resident memory from its own report.json.
 */
export async function cliMemory(engines: string[], data: string, size = '3840x2160'): Promise<CliMemoryRow[]> {
  const { image, plate, cli } = await cliInputs(size, data);
  const rows: CliMemoryRow[] = [];
  for (const engine of engines) {
    const out = await mkdtemp(join(tmpdir(), 'cleanplate-4k-'));
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [cli, 'matte', image, '--plate', plate, '--engine', engine, '--color', '#00b140', '--out', join(out, 'o'), '--json'], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const totalMs = performance.now() - t0;
    if (r.status !== 0) { console.error(`4K ${engine}: ${r.stderr.trim().split('\n').pop()}`); continue; }
    const report = JSON.parse(r.stdout) as { peakRssMb: number };
    rows.push({ engine, size, peakRssMb: report.peakRssMb, totalMs });
    console.error(`4K ${engine}: peak ${report.peakRssMb} MB, ${(totalMs / 1000).toFixed(1)} s`);
  }
  return rows;
}

export function speedTable(rows: SpeedRow[]): string {
  const stages = ['decode', 'prior', 'align', 'matte', 'composite', 'encode'];
  const lines = [`| size | method | ${stages.join(' | ')} | total ms | × prior alone | peak RSS MB |`, `|---|---|${stages.map(() => '---|').join('')}---|---|---|`];
  for (const r of rows) {
    const base = rows.find((b) => b.size === r.size && b.method === 'rvm');
    lines.push(`| ${r.size} | ${r.method} | ${stages.map((s) => (r.stages[s] ?? 0).toFixed(0)).join(' | ')} | ${r.totalMs.toFixed(0)} | ${base ? (r.totalMs / base.totalMs).toFixed(2) : '–'} | ${r.peakRssMb} |`);
  }
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: {
    child: { type: 'string' }, paired: { type: 'string' }, size: { type: 'string' }, runs: { type: 'string', default: '3' },
    sizes: { type: 'string', default: '512x512,1280x720,1920x1080' }, methods: { type: 'string', default: 'rvm,classic,network' },
    data: { type: 'string', default: '../shared/data' },
  } });
  if (values.paired) {
    process.stdout.write(JSON.stringify(await pairedChild(values.paired, values.size!, Number(values.runs), values.data!)) + '\n');
  } else if (values.child) {
    process.stdout.write(JSON.stringify(await child(values.child, values.size!, Number(values.runs), values.data!)) + '\n');
  } else {
    console.log(speedTable(runSpeed({ runs: Number(values.runs), sizes: values.sizes!.split(','), methods: values.methods!.split(','), data: values.data! })));
  }
}
