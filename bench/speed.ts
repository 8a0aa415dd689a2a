/**
 * Per-stage milliseconds of the whole `matte` path at 512x512, 1280x720 and 1920x1080 for each
 * method, median of several runs after a warm-up, each method and size in its own process so that
 * its peak resident memory is its own.
 *
 *   node dist/bench/speed.js [--runs 3] [--sizes 512x512,1280x720,1920x1080] [--methods rvm,classic,network]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { loadCv } from '../src/cv.js';
import { peakRssMB } from '../src/memory.js';
import { buildScene } from '../src/demo/scene.js';
import { resizeCover } from '../src/composite/index.js';
import type { ImageF32 } from '../src/image.js';
import { decodeImage } from '../src/io/decode.js';
import { encodePng, rgba } from '../src/io/encode.js';
import { createMatter, type MatterOptions } from '../src/pipeline.js';

export interface SpeedRow { method: string; size: string; stages: Record<string, number>; totalMs: number; peakRssMb: number; network?: { networkSize: string; gmac: number; inferenceMs: number; gflops: number } }

const METHODS: Record<string, { options: MatterOptions; plate: boolean }> = {
  rvm: { options: { prior: 'rvm', engine: 'classic' }, plate: false },
  classic: { options: { prior: 'rvm', engine: 'classic' }, plate: true },
  network: { options: { prior: 'rvm', engine: 'network' }, plate: true },
};

/** GMac of the ngf-16 generator at 512x512, measured by training/network.py's gmacs(16). */
export const GMAC_AT_512 = 27.5;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Input files of the requested size (the real hand-held capture, else the synthetic scene). */
async function inputs(width: number, height: number, data: string): Promise<{ image: string; plate: string }> {
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
    await encodePng(result.alpha); await encodePng(rgba(result.foreground, result.alpha)); await encodePng(result.composite!);
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

export function runSpeed(opts: { runs: number; sizes: string[]; methods: string[]; data: string }): SpeedRow[] {
  const rows: SpeedRow[] = [];
  const self = fileURLToPath(import.meta.url);
  for (const size of opts.sizes) for (const method of opts.methods) {
    const r = spawnSync(process.execPath, [self, '--child', method, '--size', size, '--runs', String(opts.runs), '--data', opts.data], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) { console.error(`${method} @ ${size}: ${r.stderr.trim().split('\n').pop()}`); continue; }
    const row = JSON.parse(r.stdout.trim().split('\n').pop()!) as SpeedRow;
    rows.push(row);
    console.error(`${method} @ ${size}: ${row.totalMs.toFixed(0)} ms, peak ${row.peakRssMb} MB`);
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
    child: { type: 'string' }, size: { type: 'string' }, runs: { type: 'string', default: '3' },
    sizes: { type: 'string', default: '512x512,1280x720,1920x1080' }, methods: { type: 'string', default: 'rvm,classic,network' },
    data: { type: 'string', default: '../shared/data' },
  } });
  if (values.child) {
    process.stdout.write(JSON.stringify(await child(values.child, values.size!, Number(values.runs), values.data!)) + '\n');
  } else {
    console.log(speedTable(runSpeed({ runs: Number(values.runs), sizes: values.sizes!.split(','), methods: values.methods!.split(','), data: values.data! })));
  }
}
