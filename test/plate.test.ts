import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import sharp from 'sharp';
import { warpPlate } from '../src/align/homography.js';
import { loadCv } from '../src/cv.js';
import { buildScene } from '../src/demo/scene.js';
import { fromBytes, toBytes, type ImageF32, type Plane } from '../src/image.js';
import { encodePng } from '../src/io/encode.js';
import { readPlane } from '../src/io/read-alpha.js';
import { createMatter } from '../src/pipeline.js';
import { whereInFrame } from '../src/plate/build.js';
import { buildPlate } from '../src/plate/source.js';
import type { Prior } from '../src/prior/index.js';
import { BIN, tempDir } from './helpers.js';
import { crossingClip, subjectOver, type PlateClip } from './plate-scenes.js';

const HAS_FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0;
const skip = HAS_FFMPEG ? false : 'ffmpeg is not installed (apt install ffmpeg)';
const W = 160, H = 120, N = 36;

let dir: string, clip: PlateClip;

function ffmpeg(args: string[], input?: Buffer): Buffer {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', ...args], { input, maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, String(r.stderr));
  return r.stdout;
}

function encode(frames: ImageF32[], out: string, extra: string[] = []): void {
  ffmpeg(['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${frames[0]!.width}x${frames[0]!.height}`, '-framerate', '25', '-i', 'pipe:0', ...extra, '-c:v', 'ffv1', out],
    Buffer.concat(frames.map((f) => toBytes(f))));
}

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

async function readRgb(file: string): Promise<ImageF32> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return fromBytes(info.width, info.height, 3, data);
}

/** Mean absolute difference in 8-bit levels over the pixels where `where` holds. */
function madLevels(a: ImageF32, b: ImageF32, where: (p: number) => boolean): { mad: number; pixels: number } {
  const x = toBytes(a), y = toBytes(b);
  let sum = 0, pixels = 0;
  for (let p = 0; p < a.width * a.height; p++) {
    if (!where(p)) continue;
    pixels++;
    for (let c = 0; c < 3; c++) sum += Math.abs(x[p * 3 + c]! - y[p * 3 + c]!);
  }
  return { mad: sum / (3 * Math.max(1, pixels)), pixels };
}

const sad = (alphas: Plane[], truth: Plane[]) => alphas.reduce((s, a, i) => s + a.data.reduce((t, v, p) => t + Math.abs(v - truth[i]!.data[p]!), 0), 0);

async function readSequence(folder: string): Promise<Plane[]> {
  return Promise.all((await readdir(folder)).sort().map((n) => readPlane(join(folder, n))));
}

before(async () => {
  if (!HAS_FFMPEG) return;
  await loadCv();
  dir = await tempDir('cleanplate-plate-');
  clip = crossingClip(N, W, H);
  encode(clip.frames, join(dir, 'cross.mkv'), ['-f', 'lavfi', '-i', `sine=frequency=440:duration=${N / 25}`, '-c:a', 'aac', '-shortest']);
  await writeFile(join(dir, 'true-plate.png'), await encodePng(clip.background));
});

test('plate: words for where a region lies', () => {
  assert.equal(whereInFrame(80, 100, 160, 120), 'lower middle');
  assert.equal(whereInFrame(10, 10, 160, 120), 'upper left');
  assert.equal(whereInFrame(80, 60, 160, 120), 'centre');
  assert.equal(whereInFrame(150, 60, 160, 120), 'right');
});

test('plate: a subject crossing the frame leaves the true background (CLI, plate.json, coverage map)', { skip }, async () => {
  const out = join(dir, 'cross', 'plate.png'), map = join(dir, 'cross', 'never-seen.png');
  const r = cli(['plate', join(dir, 'cross.mkv'), '--out', out, '--coverage-map', map, '--prior', 'none']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /background seen at 100\.00% of the pixels over 36 frames/);
  const report = JSON.parse(await readFile(join(dir, 'cross', 'plate.json'), 'utf8'));
  assert.equal(report.frames.used, N);
  assert.equal(report.camera, 'static');
  assert.ok(report.coverage >= 0.995, `coverage ${report.coverage}`);
  const never = await readPlane(map);
  const plate = await readRgb(out);
  const { mad, pixels } = madLevels(plate, clip.background, (p) => never.data[p]! < 0.5);
  console.log(`crossing clip: coverage ${(report.coverage * 100).toFixed(2)}%, plate MAD ${mad.toFixed(3)}/255 over ${pixels} covered pixels`);
  assert.ok(mad <= 3, `MAD ${mad.toFixed(2)}/255`);
  assert.ok(!(await readdir(join(dir, 'cross'))).some((f) => f.startsWith('.tmp-')), 'no temporary files left');
});

test('video --plate auto: the report says so, and the matte is within +10% SAD of the true plate\'s', { skip }, async () => {
  const matter = await createMatter({ prior: 'none' });
  const auto = await matter.matteVideo({ input: join(dir, 'cross.mkv'), plate: 'auto', output: { alphaSequence: join(dir, 'auto-alpha') } });
  assert.ok(auto.autoPlate && auto.autoPlate.coverage >= 0.995, JSON.stringify(auto.autoPlate));
  assert.equal(auto.plate.given, true);
  await matter.matteVideo({ input: join(dir, 'cross.mkv'), plate: join(dir, 'true-plate.png'), output: { alphaSequence: join(dir, 'true-alpha') } });
  const sadAuto = sad(await readSequence(join(dir, 'auto-alpha')), clip.alphas);
  const sadTrue = sad(await readSequence(join(dir, 'true-alpha')), clip.alphas);
  console.log(`SAD auto plate ${sadAuto.toFixed(1)} vs true plate ${sadTrue.toFixed(1)} (ratio ${(sadAuto / sadTrue).toFixed(3)})`);
  assert.ok(sadAuto <= 1.1 * sadTrue, `SAD ${sadAuto.toFixed(1)} vs ${sadTrue.toFixed(1)}`);
});

test('plate: a subject that never leaves → coverage message naming the place, and the map marks it', { skip }, async () => {
  const background = buildScene(W, H, 11, 0).background;
  // Sways by a pixel or two, never leaves the lower middle.
  const still = subjectOver(background, 72, Array.from({ length: 12 }, (_, t) => 44 + Math.round(2 * Math.sin(t))));
  const file = join(dir, 'still.mkv');
  encode(still.frames, file);
  // A prior that knows the subject: the point here is the coverage, not the person model.
  const union = still.alphas[0]!.data.map((_, p) => Math.max(...still.alphas.map((a) => a.data[p]!)));
  const estimate = async (image: { width: number; height: number }) => ({ width: image.width, height: image.height, channels: 1, data: union }) as Plane;
  const inputSize = (width: number, height: number) => ({ width, height });
  const prior: Prior = { name: 'selfie', estimate, inputSize, stream: () => ({ estimate, close: () => {}, inputSize }) };
  const built = await buildPlate({ sources: [file], prior, priorName: 'selfie', align: 'auto', maxPixels: 1e8 });
  assert.ok(built.insufficient, 'refused');
  console.log(`still subject: ${built.insufficient}`);
  assert.match(built.insufficient!, /^only \d+\.\d% of the background was ever seen \(99\.5% needed\): the subject never left the lower middle of the frame .*; film a second or two with the subject out of frame, or pass a plate$/);
  assert.equal(built.insufficient!.split('\n').length, 1);
  // Every opaque subject pixel is marked never seen; what is marked lies near the subject.
  for (let p = 0; p < W * H; p++) {
    if (still.alphas[0]!.data[p]! > 0.5) assert.equal(built.seen[p], 0, `subject pixel ${p} marked seen`);
    if (!built.seen[p]) assert.ok(p / W >= H - 72 - 12, `never-seen pixel ${p} far above the subject`);
  }
  // The documented limit: without a prior, a subject that never moves cannot be told from the background.
  const r = cli(['plate', file, '--out', join(dir, 'still', 'plate.png'), '--prior', 'none']);
  assert.equal(r.code, 0, r.stderr);
});

test('plate: a burst of 3 hand-held photos is aligned to the middle one', { skip }, async () => {
  const w = 320, h = 240;
  const world = buildScene(400, 320, 11, 0).background;
  // Three camera poses: world → view homographies (small rotation, shift, zoom).
  const poses = [[-0.02, 1.0, -30, -30], [0, 1, -40, -40], [0.015, 1.02, -52, -36]].map(([t, z, tx, ty]) => [
    z! * Math.cos(t!), -z! * Math.sin(t!), tx!, z! * Math.sin(t!), z! * Math.cos(t!), ty!, 0, 0, 1]);
  const views = poses.map((m) => warpPlate(world, m, w, h).warped);
  const files: string[] = [];
  for (const [k, x] of [20, 130, 240].entries()) {
    const shot = subjectOver(views[k]!, 90, [x], 20 + k);
    files.push(join(dir, `burst-${k}.png`));
    await writeFile(files[k]!, await encodePng(shot.frames[0]!));
  }
  const out = join(dir, 'burst', 'plate.png');
  const r = cli(['plate', ...files, '--out', out, '--prior', 'none', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.camera, 'moving');
  assert.equal(report.frames.used, 3, JSON.stringify(report.alignment));
  const plate = await readRgb(out);
  const margin = 8;
  const { mad } = madLevels(plate, views[1]!, (p) => {
    const x = p % w, y = Math.floor(p / w);
    return x >= margin && y >= margin && x < w - margin && y < h - margin;
  });
  console.log(`burst: coverage ${(report.coverage * 100).toFixed(2)}%, plate MAD ${mad.toFixed(2)}/255 (inside ${margin} px), methods ${JSON.stringify(report.alignment)}`);
  assert.ok(report.coverage >= 0.995, `coverage ${report.coverage}`);
  assert.ok(mad <= 4, `MAD ${mad.toFixed(2)}/255`);
});

test('video --format prores: ProRes 4444 with alpha and audio, alpha equal to the PNG sequence; --format png: RGBA sequence', { skip }, async () => {
  const short = join(dir, 'short.mkv');
  encode(clip.frames.slice(10, 18), short, ['-f', 'lavfi', '-i', 'sine=frequency=440:duration=0.32', '-c:a', 'aac', '-shortest']);
  const out = join(dir, 'prores');
  const r = cli(['video', short, '--plate', join(dir, 'true-plate.png'), '--out', out, '--format', 'prores', '--alpha-sequence', '--prior', 'none']);
  assert.equal(r.code, 0, r.stderr);
  const probe = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name,profile,pix_fmt', '-of', 'json', join(out, 'foreground.mov')], { encoding: 'utf8' });
  const streams = (JSON.parse(probe.stdout) as { streams: Record<string, string>[] }).streams;
  const video = streams.find((s) => s.codec_type === 'video')!;
  assert.equal(video.codec_name, 'prores');
  assert.match(video.profile!, /4444/);
  // Written as yuva444p10le; ffmpeg >= 5 decodes every 4444 stream as 12-bit, older ones as 10-bit.
  assert.match(video.pix_fmt!, /^yuva444p1[02]le$/);
  assert.ok(streams.some((s) => s.codec_type === 'audio'), 'audio copied');
  const alphas = await readSequence(join(out, 'alpha'));
  const raw = ffmpeg(['-i', join(out, 'foreground.mov'), '-f', 'rawvideo', '-pix_fmt', 'rgba', 'pipe:1']);
  assert.equal(raw.length, alphas.length * W * H * 4);
  let worst = 0;
  alphas.forEach((a, k) => toBytes(a).forEach((v, p) => { worst = Math.max(worst, Math.abs(v - raw[(k * W * H + p) * 4 + 3]!)); }));
  console.log(`ProRes alpha vs PNG sequence: max difference ${worst}/255 (${video.pix_fmt} on decode)`);
  assert.ok(worst <= 1, `alpha differs by ${worst}/255`);

  const png = join(dir, 'png');
  const q = cli(['video', short, '--plate', join(dir, 'true-plate.png'), '--out', png, '--format', 'png', '--alpha-sequence', '--prior', 'none']);
  assert.equal(q.code, 0, q.stderr);
  const names = (await readdir(join(png, 'foreground'))).sort();
  assert.deepEqual(names, Array.from({ length: 8 }, (_, i) => `${String(i + 1).padStart(6, '0')}.png`));
  assert.ok(!(await readdir(png)).includes('foreground.webm'));
  const pngAlphas = await readSequence(join(png, 'alpha'));
  const { data, info } = await sharp(join(png, 'foreground', names[3]!)).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 4);
  const a = toBytes(pngAlphas[3]!);
  for (let p = 0; p < W * H; p++) assert.equal(data[p * 4 + 3], a[p]);
});
