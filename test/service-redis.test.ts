/**
 * The distributed mode against a real Redis: this test starts `redis-server` on a free loopback
 * port (with an append-only file, as a deployment must have for jobs to survive a Redis restart),
 * an API with --redis, and two `cleanplate worker` processes sharing one --data folder. The
 * workers split videos of two seconds or more (--segment-seconds 2), so the test video of four
 * seconds becomes a flow of two segments.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { loadCv } from '../src/cv.js';
import { buildClip, buildScene } from '../src/demo/scene.js';
import { toBytes } from '../src/image.js';
import { encodePng } from '../src/io/encode.js';
import { BIN, tempDir } from './helpers.js';
import { finished, form, freePort, HAS_REDIS, job, serve, start, stop, waitFor, type Proc, type Server } from './service-helpers.js';

const HAS_FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0;
const skip = HAS_REDIS ? false : 'redis-server is not installed (apt install redis-server)';
const skipVideo = skip || (HAS_FFMPEG ? false : 'ffmpeg is not installed (apt install ffmpeg)');
/** The flow's video: 96 frames of 320x180 at 24 fps, a keyframe every 24 frames, with audio; split in two at frame 48. */
const FRAMES = 96, VW = 320, VH = 180, FPS = 24;
/** A dead worker's job goes to another after about this long (BullMQ's lock). */
const LOCK_MS = '3000';

let dir: string, data: string, image: string, plate: string, redisUrl: string, redisPort: number;
let redis: ChildProcess | undefined, api: Server;
const workers: Proc[] = [];

async function startRedis(): Promise<void> {
  const child = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', join(dir, 'redis'), '--save', '',
    '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { log += d; });
  await waitFor('redis-server to start', () => {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${log}`);
    return /Ready to accept connections/.test(log) || undefined;
  }, 20_000);
  redis = child;
}

async function stopRedis(signal: NodeJS.Signals): Promise<void> {
  const r = redis;
  redis = undefined;
  if (!r || r.exitCode !== null) return;
  const exited = new Promise((res) => r.on('exit', res));
  r.kill(signal);
  await exited;
}

function worker(): Proc {
  const w = start(['worker', '--redis', redisUrl, '--data', data, '--concurrency', '1', '--segment-seconds', '2'], { CLEANPLATE_LOCK_MS: LOCK_MS });
  workers.push(w);
  return w;
}

async function post(files: Record<string, string | Buffer>, fields: Record<string, string>) {
  const r = await fetch(`${api.url}/v1/jobs`, { method: 'POST', body: await form(files, fields) });
  return { status: r.status, body: (await r.json()) as { id?: string; error?: string } };
}

async function output(id: string, name: string): Promise<Buffer> {
  const r = await fetch(`${api.url}/v1/jobs/${id}/outputs/${name}`);
  assert.equal(r.status, 200, `${name} of ${id}`);
  return Buffer.from(await r.arrayBuffer());
}

let cliAlpha: Buffer, cliForeground: Buffer;
/** The video, its plate, and the single-process `cleanplate video` run's alpha PNGs as raw grey bytes. */
let video: string, videoPlate: string, videoAlphas: Buffer[] = [];

async function grey(png: Buffer | string): Promise<Buffer> {
  return sharp(png).toColourspace('b-w').raw().toBuffer();
}

/** Builds the flow's test video with ffmpeg and runs the single-process CLI on it once. */
async function buildVideo(): Promise<void> {
  const clip = buildClip(FRAMES, VW, VH, 2, 11);
  video = join(dir, 'clip.mp4'); videoPlate = join(dir, 'clip-plate.png');
  const enc = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${VW}x${VH}`, '-framerate', String(FPS), '-i', 'pipe:0',
    '-f', 'lavfi', '-i', `sine=frequency=440:duration=${FRAMES / FPS}`, '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-crf', '18',
    '-g', '24', '-keyint_min', '24', '-sc_threshold', '0', '-c:a', 'aac', '-shortest', video], { input: Buffer.concat(clip.frames.map((f) => Buffer.from(toBytes(f)))), maxBuffer: 1 << 26 });
  assert.equal(enc.status, 0, String(enc.stderr));
  await writeFile(videoPlate, await encodePng(clip.plate));
  const out = join(dir, 'cli-video');
  const cli = spawnSync(process.execPath, [BIN, 'video', video, '--plate', videoPlate, '--out', out, '--prior', 'none', '--color', '#20c040', '--alpha-sequence'], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  const names = (await readdir(join(out, 'alpha'))).sort();
  assert.equal(names.length, FRAMES);
  videoAlphas = await Promise.all(names.map((n) => grey(join(out, 'alpha', n))));
}

/** Every alpha PNG of a job against the single-process run's: differing pixels and the mean absolute difference (0..1). */
async function compareAlphas(id: string): Promise<{ differing: number; worst: number; mad: number; count: number }> {
  let differing = 0, worst = 0, sum = 0, count = 0;
  for (let i = 0; i < FRAMES; i++) {
    const got = await grey(await output(id, `alpha/${String(i + 1).padStart(6, '0')}.png`));
    const want = videoAlphas[i]!;
    assert.equal(got.length, want.length, `frame ${i + 1} size`);
    for (let p = 0; p < got.length; p++) { const d = Math.abs(got[p]! - want[p]!); if (d) differing++; worst = Math.max(worst, d); sum += d; }
    count += got.length;
  }
  return { differing, worst, mad: sum / 255 / count, count };
}

/**
 * A split run equals the single run but for the stabiliser's start: a segment's 16-frame warm-up
 * fades it to under 0.6^16 ≈ 3e-4 of α, which can still tip a value over an 8-bit rounding boundary
 * (a handful of pixels of millions, one level each; none in most runs).
 */
function assertSameAlphas(same: { differing: number; worst: number; mad: number; count: number }, what: string): void {
  const detail = `${same.differing} of ${same.count} pixels differ, at most ${same.worst} level(s), MAD ${same.mad.toExponential(2)}`;
  assert.ok(same.worst <= 1, `${what}: ${detail}`);
  assert.ok(same.differing <= 1e-5 * same.count, `${what}: ${detail}`);
}

function ffprobeStreams(file: string): { codec_type: string; nb_read_frames?: string; duration?: string }[] {
  const r = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,nb_read_frames,duration', '-of', 'json', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { streams: { codec_type: string; nb_read_frames?: string; duration?: string }[] }).streams;
}

const VIDEO_FIELDS = { prior: 'none', color: '#20c040', 'alpha-sequence': 'true' };

before(async () => {
  if (!HAS_REDIS) return;
  await loadCv();
  dir = await tempDir('cleanplate-redis-');
  data = join(dir, 'data');
  await mkdir(join(dir, 'redis'));
  // Large enough that a job takes a while (the kill has to land mid-job), small enough to stay quick.
  const scene = buildScene(480, 360, 5);
  image = join(dir, 'image.png'); plate = join(dir, 'plate.png');
  await writeFile(image, await encodePng(scene.image));
  await writeFile(plate, await encodePng(scene.plate));
  const out = join(dir, 'cli');
  const cli = spawnSync(process.execPath, [BIN, 'matte', image, '--plate', plate, '--out', out, '--prior', 'none'], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  cliAlpha = await readFile(join(out, 'alpha.png'));
  cliForeground = await readFile(join(out, 'foreground.png'));
  if (HAS_FFMPEG) await buildVideo();
  redisPort = await freePort();
  redisUrl = `redis://127.0.0.1:${redisPort}`;
  await startRedis();
  api = await serve(['--data', data, '--redis', redisUrl]);
  worker(); worker();
  await waitFor('workers to be ready', () => workers.every((w) => /waiting for jobs/.test(w.log())) || undefined, 30_000);
});

after(async () => {
  if (!HAS_REDIS) return;
  for (const w of workers) await stop(w, 'SIGKILL');
  if (api) await stop(api);
  await stopRedis('SIGTERM');
});

test('CI has redis-server', { skip: !process.env.CI && 'only required under CI' }, () => {
  assert.ok(HAS_REDIS, 'redis-server must be installed under CI (.ci/run installs it)');
});

test('redis: the API only enqueues; a worker runs the job and its outputs equal the CLI\'s', { skip }, async () => {
  const health = (await (await fetch(`${api.url}/healthz`)).json()) as { mode: string };
  assert.equal(health.mode, 'redis');
  const r = await post({ input: image, plate }, { prior: 'none' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const j = await finished(api.url, r.body.id!);
  assert.equal(j.state, 'completed', j.error ?? '');
  assert.ok((await output(r.body.id!, 'alpha.png')).equals(cliAlpha));
  assert.ok((await output(r.body.id!, 'foreground.png')).equals(cliForeground));
  // Bad uploads are refused by the API before anything is enqueued.
  const bad = await post({ input: Buffer.from('not an image'), plate }, { prior: 'none' });
  assert.equal(bad.status, 422);
  assert.match(bad.body.error!, /^input: not a readable image/);
  assert.match(await (await fetch(`${api.url}/metrics`)).text(), /^cleanplate_jobs\{state="completed"\} [1-9]/m);
});

test('redis: a worker killed (-9) mid-job: another worker completes it, with the same output', { skip }, async () => {
  const before = workers.map((w) => w.log().length);
  const r = await post({ input: image, plate }, { prior: 'none' });
  assert.equal(r.status, 202);
  const victim = await waitFor('a worker to take the job', () => workers.find((w, i) => w.log().slice(before[i] ?? 0).includes(`job ${r.body.id}: attempt 1`)), 30_000, 20);
  victim.child.kill('SIGKILL');
  await victim.exited;
  assert.doesNotMatch(victim.log(), new RegExp(`job ${r.body.id}: completed`), 'killed before it finished');
  workers.splice(workers.indexOf(victim), 1);
  const j = await finished(api.url, r.body.id!);
  assert.equal(j.state, 'completed', j.error ?? '');
  assert.ok(j.attempts >= 1);
  assert.match(workers.map((w) => w.log()).join('\n'), new RegExp(`job ${r.body.id}: completed`), 'the other worker finished it');
  assert.ok((await output(r.body.id!, 'alpha.png')).equals(cliAlpha), 'equal to an uninterrupted run');
  worker(); // back to two
});

test('redis: Redis restarted mid-job: the job completes', { skip }, async () => {
  const before = workers.map((w) => w.log().length);
  const r = await post({ input: image, plate }, { prior: 'none' });
  assert.equal(r.status, 202);
  await waitFor('a worker to take the job', () => workers.find((w, i) => w.log().slice(before[i] ?? 0).includes(`job ${r.body.id}: attempt`)), 30_000, 20);
  await stopRedis('SIGKILL');
  await new Promise((res) => setTimeout(res, 1000));
  await startRedis();
  const j = await finished(api.url, r.body.id!);
  assert.equal(j.state, 'completed', j.error ?? '');
  assert.ok((await output(r.body.id!, 'alpha.png')).equals(cliAlpha));
});

test('redis: 20 concurrent submissions over two workers all complete, none lost or duplicated', { skip }, async () => {
  const small = await sharp(image).resize(64, 48).png().toBuffer();
  const smallPlate = await sharp(plate).resize(64, 48).png().toBuffer();
  const posts = await Promise.all(Array.from({ length: 20 }, () => post({ input: small, plate: smallPlate }, { prior: 'none' })));
  assert.deepEqual(posts.map((p) => p.status), Array(20).fill(202));
  const ids = posts.map((p) => p.body.id!);
  assert.equal(new Set(ids).size, 20);
  const done = await Promise.all(ids.map((id) => finished(api.url, id)));
  assert.deepEqual(done.map((j) => j.state), Array(20).fill('completed'));
  const logs = workers.map((w) => w.log()).join('\n');
  for (const id of ids) assert.equal(logs.split(`job ${id}: completed`).length - 1, 1, `${id} ran exactly once`);
});

test('redis: a video split over two workers as a flow equals the single-process run (alpha PNGs, to the stabiliser\'s rounding); composite has every frame and the audio', { skip: skipVideo }, async () => {
  const before = workers.map((w) => w.log().length);
  const r = await post({ input: video, plate: videoPlate }, VIDEO_FIELDS);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.id!;
  const j = await finished(api.url, id, {}, 85_000);
  assert.equal(j.state, 'completed', j.error ?? '');
  assert.deepEqual(j.outputs, ['alpha.mp4', 'alpha/', 'composite.mp4', 'foreground.webm', 'report.json']);
  assert.deepEqual([j.progress.framesDone, j.progress.framesTotal], [FRAMES, FRAMES]);
  // Two segments, one on each worker.
  const ran = (k: number) => workers.findIndex((w, i) => w.log().slice(before[i] ?? 0).includes(`job ${id} segment ${k}: completed`));
  assert.ok(ran(1) >= 0 && ran(2) >= 0, `both segments ran:\n${workers.map((w) => w.log()).join('\n')}`);
  assert.notEqual(ran(1), ran(2), 'the segments ran on two workers');
  const report = JSON.parse((await output(id, 'report.json')).toString('utf8'));
  assert.deepEqual(report.split.segments.map((s: { start: number; end: number }) => [s.start, s.end]), [[0, 48], [48, FRAMES]], 'cut at the keyframe in the middle');
  assert.deepEqual(report.split.joined, { 'composite.mp4': 'copy', 'alpha.mp4': 'copy', 'foreground.webm': 'copy' }, 'parts joined by stream copy');
  assert.equal(report.frames, FRAMES);

  assertSameAlphas(await compareAlphas(id), 'alpha PNGs against the single-process run');

  const composite = join(dir, `${id}-composite.mp4`);
  await writeFile(composite, await output(id, 'composite.mp4'));
  const streams = ffprobeStreams(composite);
  assert.equal(Number(streams.find((s) => s.codec_type === 'video')?.nb_read_frames), FRAMES, 'every frame in the composite');
  const audio = streams.find((s) => s.codec_type === 'audio');
  assert.ok(audio, 'the composite has the audio');
  assert.ok(Math.abs(Number(audio.duration) - FRAMES / FPS) < 0.1, `audio lasts the video (${audio.duration} s)`);
  // The segments' parts and the plan are gone once the outputs are published.
  assert.deepEqual((await readdir(join(data, 'jobs', id))).sort(), ['inputs', 'job.json', 'outputs']);
});

test('redis: a worker killed (-9) mid-segment: the flow completes, with the same output', { skip: skipVideo }, async () => {
  const before = workers.map((w) => w.log().length);
  const r = await post({ input: video, plate: videoPlate }, VIDEO_FIELDS);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.id!;
  let segment = 0;
  const victim = await waitFor('a worker to start a segment', () => workers.find((w, i) => {
    const m = new RegExp(`job ${id} segment (\\d+): attempt 1`).exec(w.log().slice(before[i] ?? 0));
    if (m) segment = Number(m[1]);
    return m;
  }), 60_000, 20);
  // Mid-segment: some of its frames are done, not all.
  await waitFor('frames of the segment to be matted', async () => ((await job(api.url, id)).progress.framesDone >= 8 ? true : undefined), 60_000, 100);
  victim.child.kill('SIGKILL');
  await victim.exited;
  assert.doesNotMatch(victim.log(), new RegExp(`job ${id} segment ${segment}: completed`), 'killed before it finished its segment');
  workers.splice(workers.indexOf(victim), 1);
  const j = await finished(api.url, id, {}, 85_000);
  assert.equal(j.state, 'completed', j.error ?? '');
  assert.match(workers.map((w) => w.log()).join('\n'), new RegExp(`job ${id} segment ${segment}: completed`), 'another worker redid the segment');
  assertSameAlphas(await compareAlphas(id), 'alpha PNGs against an uninterrupted run');
  assert.ok(!existsSync(join(data, 'jobs', id, 'segments')), 'no segment parts left behind');
  worker(); // back to two
});

