/**
 * Damaged and odd inputs through the real command line: each must give either a correct result
 * (exit 0, every output present and of the input's size) or one line on stderr naming the file,
 * exit code 1, nothing in --out, no stack trace, and no hang. Offsets come from a fixed seed.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { before, test } from 'node:test';
import sharp, { type Sharp } from 'sharp';
import { rng } from '../src/demo/scene.js';
import { decodeImage } from '../src/io/decode.js';
import { BIN, tempDir, hugePngHeader } from './helpers.js';

const SEED = 14;
const W = 64, H = 64;
/** The video clip: 10 frames of ffmpeg's test pattern. */
const VW = 64, VH = 48, VFRAMES = 10;
const TIMEOUT_MS = 30_000;
const HAS_FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0 && spawnSync('ffprobe', ['-version']).status === 0;

interface Case {
  label: string;
  command: 'matte' | 'video';
  file: string;
  /** ok: must succeed; error: must fail with this reason; either: a correct result or a clean failure. */
  expect: 'ok' | 'error' | 'either';
  reason?: RegExp;
}

interface Run { code: number | null; stderr: string; timedOut: boolean; ms: number }

let dir: string;
const random = rng(SEED);

function run(args: string[]): Promise<Run> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '', timedOut = false;
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, TIMEOUT_MS);
  return new Promise((resolve) => child.on('close', (code) => { clearTimeout(timer); resolve({ code, stderr, timedOut, ms: Date.now() - t0 }); }));
}

/** Runs every case, two processes at a time (the CI machine has two cores). */
async function runAll(cases: Case[], args: (c: Case, out: string) => string[]): Promise<{ c: Case; out: string; r: Run }[]> {
  const results: { c: Case; out: string; r: Run }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const k = next++;
      const c = cases[k]!;
      const out = join(dir, `out-${c.command}-${k}`);
      results[k] = { c, out, r: await run(args(c, out)) };
    }
  };
  await Promise.all([worker(), worker()]);
  return results;
}

function ffmpeg(args: string[]): void {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

function videoStream(file: string): { width: number; height: number; frames: number } {
  const r = spawnSync('ffprobe', ['-v', 'error', '-count_packets', '-select_streams', 'v:0', '-show_entries', 'stream=width,height,nb_read_packets', '-of', 'json', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const s = (JSON.parse(r.stdout) as { streams: { width: number; height: number; nb_read_packets: string }[] }).streams[0]!;
  return { width: s.width, height: s.height, frames: Number(s.nb_read_packets) };
}

/** Offsets strictly inside the file, drawn from the seeded generator. */
function offsets(length: number, count: number, from = 0.05, to = 0.95): number[] {
  return Array.from({ length: count }, () => Math.floor(length * (from + (to - from) * random())));
}


/** A textured 64x64 picture (variant k), enough for the plate check to see it is the same scene. */
function picture(k = 0): Sharp {
  const raw = Buffer.alloc(W * H * 3);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    raw.set([(x * 4 + k * 40) & 255, (y * 4) & 255, (((x >> 3) ^ (y >> 3)) * 32 + k * 90) & 255], (y * W + x) * 3);
  }
  return sharp(raw, { raw: { width: W, height: H, channels: 3 } });
}

async function write(name: string, bytes: Buffer | Uint8Array): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, bytes);
  return file;
}

/** The failure contract, or the success contract with the outputs checked. */
async function check({ c, out, r }: { c: Case; out: string; r: Run }, outputsOk: (out: string) => Promise<void>, log: (line: string) => void): Promise<void> {
  log(`${c.label}: exit ${r.code} in ${r.ms} ms${r.code ? ` — ${r.stderr.trim().replace(`cleanplate: ${c.file}: `, '')}` : ''}`);
  const what = `${c.label} (${basename(c.file)}): exit ${r.code}, stderr: ${r.stderr}`;
  assert.equal(r.timedOut, false, `${c.label} hung (killed after ${TIMEOUT_MS} ms)`);
  assert.doesNotMatch(r.stderr, /\n\s+at |unexpected failure/, `no stack trace, no unexpected failure: ${what}`);
  if (c.expect === 'ok') assert.equal(r.code, 0, what);
  if (c.expect === 'error') assert.equal(r.code, 1, what);
  if (r.code === 0) return outputsOk(out);
  assert.equal(r.code, 1, what);
  const line = r.stderr.trim();
  assert.equal(line.split('\n').length, 1, `one line: ${what}`);
  assert.ok(line.startsWith(`cleanplate: ${c.file}: `), `names the file first: ${what}`);
  if (c.reason) assert.match(line, c.reason, what);
  assert.deepEqual(existsSync(out) ? await readdir(out) : [], [], `no outputs, not even temporary ones: ${what}`);
}

before(async () => {
  dir = await tempDir('cleanplate-fuzz-');
});

test('matte: damaged and odd images give a correct result or a clean one-line failure', async (t) => {
  const png = await picture().png().toBuffer();
  const jpeg = await picture().jpeg({ quality: 90 }).toBuffer();
  const webp = await picture().webp({ quality: 90 }).toBuffer();
  const plate = await write('plate.png', png);
  const frames = [await picture(0).png().toBuffer(), await picture(1).png().toBuffer(), await picture(2).png().toBuffer()];
  const apng = join(dir, 'animated.png');
  const cases: Case[] = [];
  const truncatedReason = /corrupt or truncated image|not a readable image/;
  for (const [ext, bytes] of [['png', png], ['jpg', jpeg], ['webp', webp]] as const) {
    for (const at of offsets(bytes.length, 3)) {
      cases.push({ label: `${ext} cut at byte ${at} of ${bytes.length}`, command: 'matte', file: await write(`cut-${at}.${ext}`, bytes.subarray(0, at)), expect: 'either', reason: truncatedReason });
    }
  }
  cases.push(
    { label: 'PNG header declaring 60000x60000', command: 'matte', file: await write('huge.png', hugePngHeader(60000, 60000)), expect: 'error', reason: /image is 60000x60000 .* over the limit/ },
    { label: '1x1 image', command: 'matte', file: await write('tiny.png', await sharp({ create: { width: 1, height: 1, channels: 3, background: '#fff' } }).png().toBuffer()), expect: 'error', reason: /image is 1x1, too small/ },
    { label: '0-byte file', command: 'matte', file: await write('empty.png', Buffer.alloc(0)), expect: 'error', reason: /not a readable image/ },
    { label: 'JPEG named .png (the format is sniffed)', command: 'matte', file: await write('jpeg.png', jpeg), expect: 'ok' },
    { label: 'PNG named .webp', command: 'matte', file: await write('png.webp', png), expect: 'ok' },
    { label: '16-bit PNG', command: 'matte', file: await write('deep.png', await picture().toColourspace('rgb16').png().toBuffer()), expect: 'ok' },
    { label: 'CMYK JPEG (converted to sRGB)', command: 'matte', file: await write('cmyk.jpg', await picture().toColourspace('cmyk').jpeg({ quality: 90 }).toBuffer()), expect: 'ok' },
    { label: 'animated WebP (refused: a still is expected)', command: 'matte', file: await write('animated.webp', await sharp(frames, { join: { animated: true } }).webp().toBuffer()), expect: 'error', reason: /animated WebP with 3 frames/ },
    { label: 'animated GIF (GIF is not supported)', command: 'matte', file: await write('animated.gif', await sharp(frames, { join: { animated: true } }).gif().toBuffer()), expect: 'error', reason: /unsupported image format 'gif'/ },
  );
  if (HAS_FFMPEG) {
    ffmpeg(['-f', 'lavfi', '-i', `testsrc=size=${W}x${H}:rate=5`, '-t', '1', '-plays', '0', '-f', 'apng', apng]);
    cases.push({ label: 'animated PNG (refused like WebP)', command: 'matte', file: apng, expect: 'error', reason: /animated PNG with 5 frames/ });
  }

  const results = await runAll(cases, (c, out) => ['matte', c.file, '--plate', plate, '--out', out, '--prior', 'none', '--color', '#00ff00']);
  for (const result of results) {
    await check(result, async (out) => {
      assert.deepEqual((await readdir(out)).sort(), ['alpha.png', 'composite.png', 'foreground.png', 'report.json'], result.c.label);
      for (const [name, channels] of [['alpha.png', 1], ['foreground.png', 4], ['composite.png', 3]] as const) {
        const meta = await sharp(join(out, name)).metadata();
        assert.deepEqual([meta.width, meta.height, meta.channels], [W, H, channels], `${result.c.label}: ${name}`);
      }
      assert.equal(JSON.parse(await readFile(join(out, 'report.json'), 'utf8')).prior, 'none');
    }, (line) => t.diagnostic(line));
  }
  const huge = results.find((x) => x.c.label.startsWith('PNG header'))!;
  assert.ok(huge.r.ms < 15_000, `the pixel limit is checked on the header (${huge.r.ms} ms)`);

  // CMYK is converted, not read as RGB: it looks like the RGB JPEG (up to the CMYK round trip).
  const cmyk = await decodeImage(join(dir, 'cmyk.jpg')), rgb = await decodeImage(jpeg);
  let diff = 0;
  for (let i = 0; i < rgb.data.length; i++) diff += Math.abs(cmyk.data[i]! - rgb.data[i]!);
  assert.ok(diff / rgb.data.length < 0.15, `CMYK decodes close to the RGB original (mean |diff| ${(diff / rgb.data.length).toFixed(3)})`);
});

test('video: truncated and stream-less files fail cleanly or give every frame', { skip: !HAS_FFMPEG && 'ffmpeg is not installed' }, async (t) => {
  const clip = join(dir, 'clip.mp4'), fast = join(dir, 'faststart.mp4'), audio = join(dir, 'audio.mp4'), plate = join(dir, 'video-plate.png');
  const source = ['-f', 'lavfi', '-i', `testsrc=size=${VW}x${VH}:rate=10`, '-t', String(VFRAMES / 10), '-pix_fmt', 'yuv420p', '-c:v', 'libx264'];
  ffmpeg([...source, clip]); // index (moov) at the end: a cut loses it
  ffmpeg([...source, '-movflags', '+faststart', fast]); // index first: a cut loses frames the index lists
  ffmpeg(['-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', '-c:a', 'aac', audio]);
  ffmpeg(['-i', clip, '-frames:v', '1', plate]);
  const cases: Case[] = [];
  for (const [name, file] of [['mp4', clip], ['faststart mp4', fast]] as const) {
    const bytes = await readFile(file);
    for (const at of offsets(bytes.length, 2)) {
      cases.push({ label: `${name} cut at byte ${at} of ${bytes.length}`, command: 'video', file: await write(`cut-${basename(file, '.mp4')}-${at}.mp4`, bytes.subarray(0, at)), expect: 'either', reason: /damaged|truncated|cannot decode video/ });
    }
  }
  cases.push(
    { label: 'audio-only mp4', command: 'video', file: audio, expect: 'error', reason: /no video stream found: the file holds only audio/ },
    { label: '0-byte mp4', command: 'video', file: await write('empty.mp4', Buffer.alloc(0)), expect: 'error', reason: /video file is empty/ },
  );
  const results = await runAll(cases, (c, out) => ['video', c.file, '--plate', plate, '--out', out, '--prior', 'none']);
  for (const result of results) {
    await check(result, async (out) => {
      assert.deepEqual((await readdir(out)).sort(), ['alpha.mp4', 'foreground.webm', 'report.json'], result.c.label);
      // Exit 0 on a cut file is only right when no frame was lost.
      for (const name of ['alpha.mp4', 'foreground.webm']) assert.deepEqual(videoStream(join(out, name)), { width: VW, height: VH, frames: VFRAMES }, `${result.c.label}: ${name}`);
    }, (line) => t.diagnostic(line));
  }
});
