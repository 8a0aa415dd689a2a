/**
 * Training shards for the learned band refiner (issue 11): runs the real TypeScript pipeline
 * (decode → prior → align → colour → classic engine) on every sample that training/refiner_samples.py
 * wrote, and records what the engine hands its band refiner, so that the refiner learns from the
 * engine exactly as it runs at inference.
 *
 *   node dist/training/shards.js --samples training/work/samples --out training/work/shards [--limit N] [--part K/N]
 *
 * One file per sample, `NNNNN.bin`: height × width × 13 bytes (uint8, value/255), channels
 * image RGB, plate RGB (aligned, colour-matched, band re-aligned), classic alpha, F̂ RGB, fallback,
 * band, true alpha — the first 12 are refine.ts's REFINER_CHANNELS. `index.jsonl` lists them with
 * their size and classic's error in the band. Resumable: existing shards are kept.
 */
import { mkdir, readdir, rename, stat, writeFile, appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createMatter } from '../src/pipeline.js';
import type { Plane } from '../src/image.js';
import { readPlane } from '../src/io/read-alpha.js';
import type { BandFeatures, BandRefiner } from '../src/matte/refine.js';

export const SHARD_CHANNELS = 13;

/** A refiner that changes nothing and keeps what it was given. */
class Recorder implements BandRefiner {
  readonly name = 'recorder';
  last: BandFeatures | undefined;
  async refine(f: BandFeatures): Promise<Plane> {
    this.last = f;
    return f.alpha;
  }
}

function toByte(v: number): number {
  return Math.max(0, Math.min(255, Math.round(v * 255)));
}

export function packShard(f: BandFeatures, truth: Plane): Uint8Array {
  const { width, height } = f.image, n = width * height;
  const out = new Uint8Array(n * SHARD_CHANNELS);
  for (let p = 0; p < n; p++) {
    const o = p * SHARD_CHANNELS;
    for (let c = 0; c < 3; c++) {
      out[o + c] = toByte(f.image.data[p * 3 + c]!);
      out[o + 3 + c] = toByte(f.plate.data[p * 3 + c]!);
      out[o + 7 + c] = toByte(f.fHat.data[p * 3 + c]!);
    }
    out[o + 6] = toByte(f.alpha.data[p]!);
    out[o + 10] = toByte(f.fallback.data[p]!);
    out[o + 11] = toByte(f.band.data[p]!);
    out[o + 12] = toByte(truth.data[p]!);
  }
  return out;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { samples: { type: 'string' }, out: { type: 'string' }, limit: { type: 'string' }, prior: { type: 'string' }, part: { type: 'string' } } });
  if (!values.samples || !values.out) throw new Error('usage: node dist/training/shards.js --samples DIR --out DIR [--limit N] [--part K/N] [--prior rvm|selfie|none]');
  const recorder = new Recorder();
  const matter = await createMatter({ engine: 'refined', refiner: recorder, ...(values.prior ? { prior: values.prior as 'rvm' } : {}) });
  await mkdir(values.out, { recursive: true });
  const names = (await readdir(values.samples)).filter((n) => /^\d+$/.test(n)).sort();
  const limit = values.limit ? Number(values.limit) : names.length;
  // --part K/N: this process takes every N-th sample starting at K (two processes on two cores).
  const [part, parts] = (values.part ?? '0/1').split('/').map(Number) as [number, number];
  const index = join(values.out, 'index.jsonl');
  const done = new Set((await readFile(index, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { name: string }).name));
  const t0 = Date.now();
  let written = 0;
  for (const [k, name] of names.slice(0, limit).entries()) {
    if (k % parts !== part) continue;
    const file = join(values.out, `${name}.bin`);
    if (done.has(name) && (await exists(file))) continue;
    const dir = join(values.samples, name);
    recorder.last = undefined;
    let result;
    try {
      result = await matter.matte({ image: join(dir, 'image.png'), plate: join(dir, 'plate.png') });
    } catch (err) {
      process.stderr.write(`${name}: skipped (${(err as Error).message})\n`);
      continue;
    }
    const f = recorder.last as BandFeatures | undefined;
    if (!f) { process.stderr.write(`${name}: skipped (no band: the engine decided without a plate)\n`); continue; }
    const truth = await readPlane(join(dir, 'alpha.png'));
    let bandPixels = 0, sad = 0;
    for (let p = 0; p < truth.data.length; p++) if (f.band.data[p]! > 0.5) { bandPixels++; sad += Math.abs(f.alpha.data[p]! - truth.data[p]!); }
    let outside = 0;
    for (let p = 0; p < truth.data.length; p++) if (f.band.data[p]! <= 0.5) outside += Math.abs(result.alpha.data[p]! - truth.data[p]!);
    await writeFile(`${file}.tmp`, packShard(f, truth));
    await rename(`${file}.tmp`, file);
    await appendFile(index, JSON.stringify({ name, file: `${name}.bin`, width: f.image.width, height: f.image.height, bandPixels, bandSad: +sad.toFixed(2), outsideSad: +outside.toFixed(2) }) + '\n');
    written++;
    if (written % 25 === 0) process.stdout.write(`${written} shards (${((Date.now() - t0) / written).toFixed(0)} ms each)\n`);
  }
  process.stdout.write(`${written} shards written to ${values.out}\n`);
}

main().catch((err) => { process.stderr.write(`shards: ${(err as Error).message}\n`); process.exit(1); });
