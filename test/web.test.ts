/**
 * The browser app in real Chromium (Debian's, driven by playwright-core): live mode on a fake camera
 * that plays a clip built here (empty scene, then a subject walks in, then the camera pans), photo
 * mode against the CLI, the camera's plain error messages, and `cleanplate web` itself. Skipped only
 * where Chromium is missing and CI is not set; under CI it must run (.ci/run installs chromium).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, ConsoleMessage, Page } from 'playwright-core';
import sharp from 'sharp';
import { buildLiveClip, captureAtLoopStart, HAS_CHROMIUM, launchChromium, phaseWatcherSource, type LiveClip } from '../bench/web-harness.js';
import { startWebServer, WEB_DIR, type WebServer } from '../src/cli/web.js';
import { loadCv } from '../src/cv.js';
import { buildScene } from '../src/demo/scene.js';
import { alphaMetrics, mad } from '../src/eval/metrics.js';
import { fromBytes, type Plane } from '../src/image.js';
import { encodePng } from '../src/io/encode.js';
import { cameraMessage } from '../src/web/live.js';
import { BIN, tempDir } from './helpers.js';

const HAS_FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0;
const skip = HAS_CHROMIUM && HAS_FFMPEG ? false
  : process.env.CI ? false // under CI a missing browser or ffmpeg fails below instead
    : `needs ${HAS_CHROMIUM ? '' : 'chromium (apt install chromium) '}${HAS_FFMPEG ? '' : 'ffmpeg (apt install ffmpeg)'}`.trim();

let dir: string, web: WebServer, clip: LiveClip, browser: Browser;

before(async () => {
  if (skip) return;
  assert.ok(HAS_CHROMIUM, 'chromium must be installed under CI (.ci/run installs it)');
  assert.ok(HAS_FFMPEG, 'ffmpeg must be installed under CI');
  assert.ok(existsSync(join(WEB_DIR, 'index.html')), 'the web app must be built first (npm test runs npm run build:web)');
  await loadCv();
  dir = await tempDir('cleanplate-web-');
  // 15 fps is enough for correctness (the benchmark's clips run at 30); long phases leave a slow machine time.
  clip = await buildLiveClip(dir, { fps: 15, seconds: { empty: 2, entering: 0.5, still: 4, moved: 5 } });
  web = await startWebServer({ port: 0 });
  browser = await launchChromium(clip.path);
});

after(async () => {
  await browser?.close();
  await web?.close();
  if (dir) await rm(dir, { recursive: true, force: true }); // the clip alone is ~60 MB
});

/** Every error a page or its workers print, and every request that is not a GET to the page's origin. */
function watch(page: Page): { errors: string[]; foreign: string[] } {
  const seen = { errors: [] as string[], foreign: [] as string[] };
  const onConsole = (m: ConsoleMessage) => { if (m.type() === 'error') seen.errors.push(m.text()); };
  page.on('console', onConsole);
  page.on('pageerror', (e) => seen.errors.push(e.message));
  page.on('worker', (w) => w.on('console', onConsole));
  page.on('request', (r) => {
    const url = r.url();
    if (r.method() !== 'GET' || !(url.startsWith(web.url) || url.startsWith('blob:') || url.startsWith('data:'))) seen.foreign.push(`${r.method()} ${url}`);
  });
  return seen;
}

async function waitForState(page: Page, states: string[], timeout = 120_000): Promise<string> {
  await page.waitForFunction((s) => s.includes(document.querySelector<HTMLElement>('[data-testid="status"]')!.dataset.state!), states, { timeout, polling: 200 });
  return page.locator('[data-testid="status"]').innerText();
}

/**
 * Waits until the output shows a camera frame taken in `phase` (the fourth composite drawn after the
 * camera entered it: at most two frames are in flight), and returns the output canvas's pixels as RGB
 * 0..1, read before anything else is drawn. Fails if the phase ends first (a machine far too slow).
 */
async function outputDuring(page: Page, phase: string, timeout = 60_000): Promise<{ width: number; height: number; rgb: Float32Array }> {
  const got = await page.evaluate(([phase, timeout]) => new Promise<{ width: number; height: number; b64: string } | string>((resolve) => {
    const w = window as unknown as { __clipPhase(): string; cleanplate: { stats(): { frames: number } } };
    const started = performance.now();
    let first: number | undefined;
    const poll = () => {
      const now = w.__clipPhase(), frames = w.cleanplate.stats().frames;
      if (performance.now() - started > timeout) return resolve(`timed out waiting for the ${phase} phase`);
      if (first === undefined) { if (now === phase) first = frames; }
      else if (now !== phase) return resolve(`the ${phase} phase ended before the output showed it (${frames - first} composites drawn)`);
      else if (frames >= first + 4) {
        const c = document.querySelector<HTMLCanvasElement>('[data-testid="output"]')!;
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let s = '';
        for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode(...d.subarray(i, i + 0x8000));
        return resolve({ width: c.width, height: c.height, b64: btoa(s) });
      }
      setTimeout(poll, 10);
    };
    poll();
  }), [phase, timeout] as const);
  assert.ok(typeof got !== 'string', got as string);
  const { width, height, b64 } = got;
  const rgba = Buffer.from(b64, 'base64');
  const rgb = new Float32Array(width * height * 3);
  for (let p = 0; p < width * height; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = rgba[p * 4 + c]! / 255;
  return { width, height, rgb };
}

/** Pixels whose distance to (alpha > 0) is above `margin` (background) or to (alpha < 0.999) is above it (subject). */
function regions(alpha: Plane, margin: number): { background: number[]; subject: number[] } {
  const { width, height } = alpha;
  const background: number[] = [], subject: number[] = [];
  const near = (x: number, y: number, test: (a: number) => boolean) => {
    for (let dy = -margin; dy <= margin; dy += 2) for (let dx = -margin; dx <= margin; dx += 2) {
      const xx = Math.min(width - 1, Math.max(0, x + dx)), yy = Math.min(height - 1, Math.max(0, y + dy));
      if (test(alpha.data[yy * width + xx]!)) return true;
    }
    return false;
  };
  for (let y = 0; y < height; y += 2) for (let x = 0; x < width; x += 2) {
    const p = y * width + x;
    if (alpha.data[p] === 0 && !near(x, y, (a) => a > 0)) background.push(p);
    else if (alpha.data[p]! >= 0.999 && !near(x, y, (a) => a < 0.999)) subject.push(p);
  }
  return { background, subject };
}

test('live: capture the plate on the empty scene, then the subject on the chosen colour; the hint when the camera pans; recording', { skip, timeout: 300_000 }, async () => {
  const page = await browser.newPage({ acceptDownloads: true });
  const seen = watch(page);
  await page.goto(`${web.url}?background=color:00FF00&countdown=0`);
  await waitForState(page, ['ready']);
  await page.evaluate(phaseWatcherSource(clip.probes));

  // The fake camera loops the clip: capture right after it restarts on the empty scene.
  await captureAtLoopStart(page);
  assert.match(await waitForState(page, ['live'], 30_000), /plate is the average of 8 frames/);

  // Once the subject stands still, the output shows it on green.
  const out = await outputDuring(page, 'still');
  assert.equal(out.width, clip.width);
  const { background, subject } = regions(clip.alpha, 12);
  const green = background.filter((p) => Math.abs(out.rgb[p * 3]!) < 0.05 && out.rgb[p * 3 + 1]! > 0.95 && out.rgb[p * 3 + 2]! < 0.05).length;
  const saved = join(tmpdir(), 'cleanplate-web-live-output.png');
  await writeFile(saved, await encodePng({ width: out.width, height: out.height, channels: 3, data: out.rgb }));
  const stats0 = await page.evaluate(() => window.cleanplate.stats()!);
  console.log(`live, still phase: ${(100 * green / background.length).toFixed(1)}% of the known background green; ${JSON.stringify({ fps: stats0.fps, priorLag: stats0.priorLag, ms: stats0.ms })}`);
  assert.ok(green / background.length >= 0.95, `${(100 * green / background.length).toFixed(1)}% of the known background shows the colour (>= 95% expected); output in ${saved}; ${JSON.stringify(stats0)}`);
  let diff = 0, greenInSubject = 0;
  for (const p of subject) {
    for (let c = 0; c < 3; c++) diff += Math.abs(out.rgb[p * 3 + c]! - clip.still.data[p * 3 + c]!);
    if (out.rgb[p * 3 + 1]! > 0.9 && out.rgb[p * 3]! < 0.1) greenInSubject++;
  }
  diff /= 3 * subject.length;
  assert.ok(diff < 0.06, `the subject region matches the subject (mean |difference| ${diff.toFixed(3)})`);
  assert.ok(greenInSubject / subject.length < 0.02, `${(100 * greenInSubject / subject.length).toFixed(1)}% of the subject shows the background colour`);

  const fps = Number(await page.getByTestId('fps').innerText());
  assert.ok(fps > 0, `fps shown: ${fps}`);
  const stats = await page.evaluate(() => window.cleanplate.stats()!);
  assert.ok(stats.ms.matte! > 0 && stats.ms['prior (worker)']! > 0, `per-stage ms shown: ${JSON.stringify(stats.ms)}`);
  assert.ok(await page.locator('#hint').isHidden(), 'no plate hint while the camera stands still');

  // The camera pans: the plate stops fitting and the page says so (before the pan ends).
  const hint = await page.evaluate(() => new Promise<string>((resolve) => {
    const w = window as unknown as { __clipPhase(): string };
    let seen = false;
    const poll = () => {
      const phase = w.__clipPhase();
      if (phase === 'moved') seen = true;
      if (seen && !document.getElementById('hint')!.hidden) return resolve('shown');
      if (seen && phase !== 'moved') return resolve('the pan ended without a hint');
      setTimeout(poll, 20);
    };
    poll();
  }));
  assert.equal(hint, 'shown');
  assert.match(await page.locator('#hint').innerText(), /camera moved or the light changed/);
  // Back on the scene it was captured on, the hint goes away.
  await page.locator('#hint').waitFor({ state: 'hidden', timeout: 30_000 });

  // Recording: R starts, the button stops, the WebM comes as a download.
  await page.locator('body').press('r');
  assert.equal(await page.locator('#record').getAttribute('aria-pressed'), 'true');
  await page.waitForTimeout(1500);
  const download = page.waitForEvent('download');
  await page.locator('#record').click();
  const file = join(dir, 'recording.webm');
  await (await download).saveAs(file);
  const webm = await readFile(file);
  assert.ok(webm.length > 1000, `recording of ${webm.length} bytes`);
  assert.deepEqual([...webm.subarray(0, 4)], [0x1a, 0x45, 0xdf, 0xa3], 'a WebM (EBML) file');

  assert.ok(await page.evaluate(() => window.cleanplate.stream instanceof MediaStream), 'the composite is a MediaStream');
  assert.deepEqual(seen.errors, [], 'no console errors');
  assert.deepEqual(seen.foreign, [], 'only GETs to the page\'s own origin');
  await page.close();
});

test('photo mode: the alpha equals the CLI\'s; the metrics equal Node\'s; nothing leaves the page; unreadable files get a plain message', { skip, timeout: 300_000 }, async () => {
  const scene = buildScene(480, 320, 21, 200);
  const files = { image: join(dir, 'photo.png'), plate: join(dir, 'plate.png'), truth: join(dir, 'truth.png'), bad: join(dir, 'notes.png') };
  await writeFile(files.image, await encodePng(scene.image));
  await writeFile(files.plate, await encodePng(scene.plate));
  await writeFile(files.truth, await encodePng(scene.alpha));
  await writeFile(files.bad, 'not an image\n');
  const cliOut = join(dir, 'cli');
  const cli = spawnSync(process.execPath, [BIN, 'matte', files.image, '--plate', files.plate, '--out', cliOut], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(cli.status, 0, cli.stderr);

  const page = await browser.newPage({ acceptDownloads: true });
  const seen = watch(page);
  await page.goto(`${web.url}?mode=photo`);
  await waitForState(page, ['photo']);
  assert.match(await page.locator('.privacy').innerText(), /Nothing leaves this machine/);

  await page.locator('#photo-image').setInputFiles(files.bad);
  await page.locator('#photo-plate').setInputFiles(files.plate);
  await page.locator('#photo-run').click();
  assert.match(await waitForState(page, ['error']), /notes\.png: not a readable image/);

  await page.locator('#photo-image').setInputFiles(files.image);
  await page.locator('#photo-reference').setInputFiles(files.truth);
  await page.locator('#photo-run').click();
  await waitForState(page, ['done'], 180_000);
  const alphaFile = join(dir, 'browser-alpha.png');
  const download = page.waitForEvent('download');
  await page.locator('#dl-alpha').click();
  await (await download).saveAs(alphaFile);

  const grey = async (file: string) => {
    const { data, info } = await sharp(file).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    return fromBytes(info.width, info.height, 1, data) as Plane;
  };
  const browserAlpha = await grey(alphaFile), cliAlpha = await grey(join(cliOut, 'alpha.png'));
  assert.equal(browserAlpha.width, 480);
  const diff = mad(browserAlpha, cliAlpha) / 1000;
  assert.ok(diff <= 1 / 255, `mean |browser alpha − CLI alpha| = ${(diff * 255).toFixed(3)}/255 (at most 1/255)`);

  const shown = Number(await page.locator('#photo-metrics td[data-metric="mad"]').innerText());
  const node = alphaMetrics(browserAlpha, await grey(files.truth)).mad;
  assert.ok(Math.abs(shown - node) < 0.01, `MAD shown in the page ${shown} vs Node's ${node.toFixed(3)} (the same module)`);
  assert.deepEqual(seen.errors, [], 'no console errors');
  assert.deepEqual(seen.foreign, [], 'only GETs to the page\'s own origin: the photos were not sent anywhere');
  await page.close();
});

test('another page of the origin takes the composite as a camera (embed.html)', { skip, timeout: 180_000 }, async () => {
  const page = await browser.newPage();
  const seen = watch(page);
  await page.goto(`${web.url}embed.html`);
  const frames = await page.evaluate(() => new Promise<number>((resolve, reject) => {
    const video = document.getElementById('virtual-camera') as HTMLVideoElement;
    let n = 0;
    const timer = setTimeout(() => reject(new Error(`${n} frames of the composite in 120 s`)), 120_000);
    const tick = () => { if (++n >= 10) { clearTimeout(timer); resolve(video.videoWidth); } else video.requestVideoFrameCallback(tick); };
    video.requestVideoFrameCallback(tick);
  }));
  assert.equal(frames, clip.width, 'the embedding page plays the composite at the camera\'s size');
  assert.deepEqual(seen.errors, [], 'no console errors');
  await page.close();
});

test('camera errors are plain sentences (and the person model on two threads)', { skip, timeout: 300_000 }, async () => {
  assert.match(cameraMessage({ name: 'NotFoundError' }), /^No camera found/);
  assert.match(cameraMessage({ name: 'NotAllowedError' }), /^Camera permission denied/);
  assert.match(cameraMessage({ name: 'NotReadableError' }), /^The camera is busy/);
  // A browser without any camera, and one whose user said no.
  const bare = await launchChromium(undefined, ['--use-fake-ui-for-media-stream']);
  try {
    const page = await bare.newPage();
    // Also: two WebAssembly threads for the person model, which cross-origin isolation allows.
    await page.goto(`${web.url}?threads=2`);
    assert.match(await waitForState(page, ['error']), /^No camera found/);
    await page.waitForFunction(() => window.cleanplate.backend, null, { timeout: 120_000 });
    assert.deepEqual(await page.evaluate(() => window.cleanplate.backend), { simd: true, threads: 2 });
  } finally {
    await bare.close();
  }
  const refusing = await launchChromium(undefined, ['--use-fake-device-for-media-stream', '--deny-permission-prompts']);
  try {
    const page = await refusing.newPage();
    await page.goto(web.url);
    assert.match(await waitForState(page, ['error']), /^Camera permission denied/);
  } finally {
    await refusing.close();
  }
});

test('cleanplate web: serves the app with the isolation headers and WebAssembly as application/wasm; refuses a missing build', { skip }, async () => {
  const child = spawn(process.execPath, [BIN, 'web', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => { out += d; const m = /http:\/\/\S+\//.exec(out); if (m) resolve(m[0]); });
      child.on('exit', (code) => reject(new Error(`cleanplate web exited (${code})`)));
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin');
    assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
    assert.match(page.headers.get('content-security-policy')!, /connect-src 'self'/);
    assert.match(await page.text(), /data-testid="capture-plate"/);
    const wasm = await fetch(`${url}tfjs/tfjs-backend-wasm-simd.wasm`);
    assert.equal(wasm.headers.get('content-type'), 'application/wasm');
    assert.equal((await fetch(`${url}..%2f..%2fpackage.json`)).status, 400);
    assert.equal((await fetch(`${url}nope.js`)).status, 404);
    assert.equal((await fetch(url, { method: 'POST' })).status, 405);
    const etag = wasm.headers.get('etag')!;
    assert.equal((await fetch(`${url}tfjs/tfjs-backend-wasm-simd.wasm`, { headers: { 'If-None-Match': etag } })).status, 304);
  } finally {
    child.kill('SIGTERM');
  }
  const empty = join(dir, 'empty-build');
  await mkdir(empty, { recursive: true });
  const r = spawnSync(process.execPath, [BIN, 'web', '--dir', empty, '--port', '0'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /the browser app is not built .*npm run build:web/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});
