/**
 * What the browser tests (test/web.test.ts) and the browser benchmark (bench/web-speed.ts) share:
 * a camera clip with known ground truth for Chromium's fake camera, and Chromium itself (Debian's,
 * driven by playwright-core; no browser is downloaded).
 *
 * The clip: the empty scene first, then a subject (the demo scene's head and shoulders with hair
 * strands) slides in from the right and stands still, and optionally the camera then pans a few
 * pixels over the empty scene (the plate no longer fits). Chromium loops the file, so each phase
 * comes back; `probes` let a page tell which phase the camera is showing.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { buildScene, gaussian, rng } from '../src/demo/scene.js';
import { createImage, createPlane, type ImageF32, type Plane } from '../src/image.js';

export const CHROMIUM = process.env.CLEANPLATE_CHROMIUM ?? '/usr/bin/chromium';
export const HAS_CHROMIUM = existsSync(CHROMIUM);

export type Phase = 'empty' | 'entering' | 'still' | 'moved';

export interface Probe {
  /** Top-left corner and side of a square patch. */
  x: number; y: number; size: number;
  /** Mean RGB (0..255) of the patch in each phase's clean frame. */
  means: Partial<Record<Phase, [number, number, number]>>;
}

export interface LiveClip {
  path: string;
  width: number;
  height: number;
  fps: number;
  frames: number;
  /** [first, last) frame of each phase. */
  phases: Record<Phase, [number, number]>;
  /** The still phase without noise, and its alpha. */
  still: ImageF32;
  alpha: Plane;
  /** `subject`: on the subject's head once it stands still; `pan`: on the background, where the pan shows. */
  probes: { subject: Probe; pan: Probe };
}

export interface ClipOptions {
  width?: number;
  height?: number;
  fps?: number;
  /** Seconds of each phase; `moved` 0 leaves the pan out. */
  seconds?: { empty: number; entering: number; still: number; moved: number };
  /** Pixels the camera pans in the moved phase. */
  pan?: number;
  strands?: number;
}

/** Shifts an image left by dx pixels, repeating the right edge (the camera panned right). */
function panned(image: ImageF32, dx: number): ImageF32 {
  const { width, height } = image;
  const out = createImage(width, height, 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const sx = Math.min(width - 1, x + dx);
    for (let c = 0; c < 3; c++) out.data[(y * width + x) * 3 + c] = image.data[(y * width + sx) * 3 + c]!;
  }
  return out;
}

function patchMean(image: ImageF32, x0: number, y0: number, size: number): [number, number, number] {
  const m = [0, 0, 0];
  for (let y = y0; y < y0 + size; y++) for (let x = x0; x < x0 + size; x++) for (let c = 0; c < 3; c++) m[c]! += image.data[(y * image.width + x) * 3 + c]!;
  return m.map((v) => +(255 * v / (size * size)).toFixed(1)) as [number, number, number];
}

/** Writes the clip as Y4M (what Chromium's fake camera reads) through ffmpeg. */
export async function buildLiveClip(dir: string, options: ClipOptions = {}): Promise<LiveClip> {
  const width = options.width ?? 640, height = options.height ?? 360, fps = options.fps ?? 30;
  const seconds = options.seconds ?? { empty: 2, entering: 0.5, still: 2.5, moved: 3 };
  const pan = options.pan ?? Math.round(width * 0.03);
  const scene = buildScene(width, height, 5, options.strands ?? 150);
  const counts = { empty: Math.round(seconds.empty * fps), entering: Math.round(seconds.entering * fps), still: Math.round(seconds.still * fps), moved: Math.round(seconds.moved * fps) };
  const phases = {} as Record<Phase, [number, number]>;
  let at = 0;
  for (const p of ['empty', 'entering', 'still', 'moved'] as const) { phases[p] = [at, at + counts[p]]; at += counts[p]; }
  const frames = at;
  const background = scene.background, moved = panned(background, pan);

  // Sensor noise: a few fields used in turn (fresh noise per frame without a Gaussian per pixel per frame).
  const random = rng(17);
  const noise = Array.from({ length: 7 }, () => Float32Array.from({ length: width * height * 3 }, () => 0.006 * gaussian(random)));

  /** The clean frame: the subject shifted right by dx (undefined: no subject) over a background. */
  const render = (dx: number | undefined, bg: ImageF32): { image: ImageF32; alpha: Plane } => {
    const image = createImage(width, height, 3), alpha = createPlane(width, height);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
      const p = y * width + x, sx = dx === undefined ? -1 : x - dx;
      const q = y * width + sx;
      const a = sx >= 0 && sx < width ? scene.alpha.data[q]! : 0;
      alpha.data[p] = a;
      for (let c = 0; c < 3; c++) image.data[p * 3 + c] = a * (a > 0 ? scene.foreground.data[q * 3 + c]! : 0) + (1 - a) * bg.data[p * 3 + c]!;
    }
    return { image, alpha };
  };
  const still = render(0, background);

  const ffmpeg = spawn('ffmpeg', ['-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-framerate', String(fps), '-i', 'pipe:0',
    '-pix_fmt', 'yuv420p', '-f', 'yuv4mpegpipe', join(dir, `clip-${width}x${height}.y4m`)], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  ffmpeg.stderr.on('data', (d) => { stderr += d; });
  const done = new Promise<void>((ok, fail) => {
    ffmpeg.on('error', fail);
    ffmpeg.on('close', (code) => (code === 0 ? ok() : fail(new Error(`ffmpeg failed (${code}): ${stderr}`))));
  });
  const bytes = Buffer.alloc(width * height * 3);
  for (let t = 0; t < frames; t++) {
    let clean: ImageF32;
    if (t < phases.entering[0]) clean = background;
    else if (t < phases.still[0]) clean = render(Math.round(0.6 * width * (1 - (t - phases.entering[0] + 1) / (counts.entering + 1))), background).image;
    else if (t < phases.moved[0]) clean = still.image;
    else clean = moved;
    const n = noise[t % noise.length]!;
    for (let i = 0; i < bytes.length; i++) {
      const v = clean.data[i]! + n[i]!;
      bytes[i] = v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
    }
    if (!ffmpeg.stdin.write(bytes)) await new Promise((r) => ffmpeg.stdin.once('drain', r));
  }
  ffmpeg.stdin.end();
  await done;

  // Probes: the middle of the head once the subject stands; and the background patch, clear of the
  // subject at every moment, that the pan changes most.
  const size = Math.max(6, Math.round(width / 80));
  let hx = 0, hy = 0, n = 0;
  for (let y = 0; y < height / 2; y++) for (let x = 0; x < width; x++) if (still.alpha.data[y * width + x]! >= 0.999) { hx += x; hy += y; n++; }
  hx = Math.round(hx / n - size / 2); hy = Math.round(hy / n - size / 2);
  let best = { x: 0, y: 0, d: -1 };
  for (let y = size; y < height - 2 * size; y += size) for (let x = size; x < width / 3; x += size) {
    let clear = true;
    for (let yy = y - size; yy < y + 2 * size && clear; yy++) for (let xx = x - size; xx < x + 2 * size; xx++) if (scene.alpha.data[yy * width + xx]! > 0) { clear = false; break; }
    if (!clear) continue;
    const a = patchMean(background, x, y, size), b = patchMean(moved, x, y, size);
    const d = Math.abs(a[0] - b[0]) + Math.abs(a[1] - b[1]) + Math.abs(a[2] - b[2]);
    if (d > best.d) best = { x, y, d };
  }
  const probe = (x: number, y: number): Probe => ({
    x, y, size,
    means: { empty: patchMean(background, x, y, size), still: patchMean(still.image, x, y, size), ...(counts.moved ? { moved: patchMean(moved, x, y, size) } : {}) },
  });
  return {
    path: join(dir, `clip-${width}x${height}.y4m`), width, height, fps, frames, phases,
    still: still.image, alpha: still.alpha,
    probes: { subject: probe(hx, hy), pan: probe(best.x, best.y) },
  };
}

/** Debian's Chromium, headless, with the clip as its only camera (permission granted). */
export async function launchChromium(clip?: string, extraArgs: string[] = []): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      ...(clip ? ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${clip}`] : []),
      ...extraArgs,
    ],
  });
}

/**
 * Runs in the page: follows the camera (its own reader on a clone of the page's camera track) and
 * keeps `window.__clipPhase()`, the phase of the clip the newest camera frame shows (the probes'
 * nearest means); `window.__onClipFrame` listeners hear each frame's phase; `window.__stopClipWatcher()`
 * ends it (it converts frames too: a benchmark stops it). Pass it to page.evaluate as a string.
 */
export function phaseWatcherSource(probes: LiveClip['probes']): string {
  return `(() => {
    const probes = ${JSON.stringify(probes)};
    const size = probes.subject.size;
    const canvas = new OffscreenCanvas(size, 2 * size);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    const mean = (row) => {
      const d = ctx.getImageData(0, row * size, size, size).data;
      const m = [0, 0, 0];
      for (let i = 0; i < d.length; i += 4) { m[0] += d[i]; m[1] += d[i + 1]; m[2] += d[i + 2]; }
      return m.map((v) => v / (d.length / 4));
    };
    const dist = (a, b) => Math.abs(a[0] - b[0]) + Math.abs(a[1] - b[1]) + Math.abs(a[2] - b[2]);
    let phase = 'unknown';
    window.__clipPhase = () => phase;
    window.__onClipFrame = [];
    const track = window.cleanplate.camera.getVideoTracks()[0].clone();
    const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
    // Ending the track closes the stream after its queued frames, which are read and closed below
    // (cancelling the stream would drop them unclosed: Chromium warns when they are collected).
    let stopped = false;
    window.__stopClipWatcher = () => { stopped = true; track.stop(); };
    (async () => {
      for (let n = 0; ; n++) {
        const { value: frame, done } = await reader.read();
        if (done) return;
        // Every other frame is enough to follow the phases, and leaves the page's thread to the app.
        if (stopped || n % 2) { frame.close(); continue; }
        ctx.drawImage(frame, probes.subject.x, probes.subject.y, size, size, 0, 0, size, size);
        ctx.drawImage(frame, probes.pan.x, probes.pan.y, size, size, 0, size, size, size);
        frame.close();
        const s = mean(0), p = mean(1);
        let best = 'empty', bestD = Infinity;
        for (const name of ['empty', 'still', 'moved']) {
          if (!probes.subject.means[name]) continue;
          const d = dist(s, probes.subject.means[name]) + dist(p, probes.pan.means[name]);
          if (d < bestD) { bestD = d; best = name; }
        }
        phase = best;
        for (const f of window.__onClipFrame.splice(0)) f(phase);
      }
    })();
  })()`;
}

/**
 * Clicks "Capture plate" (the page must have ?countdown=0) right after the fake camera's loop starts
 * again on the empty scene, so the plate's frames are all empty ones. Needs phaseWatcherSource first.
 */
export async function captureAtLoopStart(page: Page): Promise<void> {
  await page.evaluate(() => new Promise<void>((resolve) => {
    const w = window as unknown as { __onClipFrame: ((phase: string) => void)[] };
    let previous = 'unknown';
    const next = (phase: string) => {
      if (previous !== 'unknown' && previous !== 'empty' && phase === 'empty') {
        document.querySelector<HTMLButtonElement>('[data-testid="capture-plate"]')!.click();
        resolve();
        return;
      }
      previous = phase;
      w.__onClipFrame.push(next);
    };
    w.__onClipFrame.push(next);
  }));
}
