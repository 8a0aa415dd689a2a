/**
 * The Node edge of the plate builder: reads a video (frames sampled over a time range, streamed
 * through ffmpeg) or a burst of photos, aligns every frame to a reference frame (the middle one),
 * masks the subject with the person prior, and hands the observations to the pure core
 * (`./build.ts`). Memory: at most `maxFrames` frames are kept, as 8-bit RGB plus an 8-bit mask.
 */
import { extname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { cornerShift, estimateAlignment, STILL_SHIFT_PX, warpPlate, type AlignMode, type AlignMethod } from '../align/homography.js';
import { CleanplateError, InterruptedError } from '../errors.js';
import { fromBytes, toBytes, type ImageF32 } from '../image.js';
import { decodeImage } from '../io/decode.js';
import { probeVideo } from '../io/video-probe.js';
import { FrameReader } from '../io/video-stream.js';
import { peakRssMB } from '../memory.js';
import type { Prior, PriorName } from '../prior/index.js';
import { backgroundMask, coverageMessage, estimatePlate, type HoleDescription, type PlateObservation } from './build.js';

/** Share of the pixels that must be seen as background in at least one frame. */
export const MIN_COVERAGE = 0.995;
/** Most frames kept, and the memory they may take (8-bit RGB + mask, 4 bytes a pixel). */
export const MAX_FRAMES = 60;
const FRAME_BUDGET_BYTES = 384 * 2 ** 20;
const MIN_FRAMES = 8;
/** Frames aligned first to tell a tripod from a hand-held camera. */
const CAMERA_PROBES = 4;

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff']);

export interface PlateOptions {
  /** One video, or several photos of the same scene (a burst). */
  sources: string[];
  prior: Prior;
  priorName: PriorName;
  align: AlignMode;
  maxPixels: number;
  /** Time range of a video to sample, in seconds. */
  from?: number;
  to?: number;
  /** Frames kept at most (default: 60, fewer for large frames so they fit in 384 MB). */
  maxFrames?: number;
  signal?: AbortSignal;
}

export interface PlateReport {
  sources: string[];
  width: number;
  height: number;
  frames: { sampled: number; used: number; dropped: number; from?: number; to?: number };
  /** Index (among the sampled frames) of the frame the plate is aligned to. */
  reference: number;
  /** `static`: every probed frame lines up as it is (no warp); `moving`: each frame aligned to the reference. */
  camera: 'static' | 'moving' | 'single';
  alignment?: Partial<Record<AlignMethod | 'failed', number>>;
  prior: PriorName;
  /** Share of the pixels seen as background in at least one frame, and the minimum asked for. */
  coverage: number;
  minCoverage: number;
  neverSeenPixels: number;
  hole?: HoleDescription;
  noise: number;
  tolerance: number;
  seconds: Record<string, number>;
  peakRssMB: number;
}

export interface PlateBuild {
  plate: ImageF32;
  /** Frames that agreed on each pixel's background; 0 = never seen. */
  seen: Uint16Array;
  report: PlateReport;
  /** Set when the coverage is below the minimum: the one-line reason. */
  insufficient?: string;
}

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new InterruptedError();
}

export function isImagePath(file: string): boolean {
  return IMAGE_EXTENSIONS.has(extname(file).toLowerCase());
}

/** The frames kept for a frame size: as many as fit in the budget, between 8 and 60. */
export function framesFor(width: number, height: number, asked?: number): number {
  const fit = Math.floor(FRAME_BUDGET_BYTES / (width * height * 4));
  return Math.max(2, Math.min(asked ?? MAX_FRAMES, Math.max(MIN_FRAMES, fit)));
}

async function sampleVideo(file: string, options: PlateOptions, seconds: Record<string, number>): Promise<{ frames: Uint8Array[]; width: number; height: number; from: number; to: number }> {
  const info = await probeVideo(file);
  if (info.width * info.height > options.maxPixels) throw new CleanplateError(`video is ${info.width}x${info.height}, over the limit of ${(options.maxPixels / 1e6).toFixed(1)} MP`, file);
  const duration = info.frames / info.fps;
  const from = options.from ?? 0, to = Math.min(options.to ?? duration, duration);
  if (!(from >= 0) || !(to > from)) throw new CleanplateError(`--from ${from} / --to ${options.to} leave no frames (the video lasts ${duration.toFixed(2)} s)`, file);
  const inRange = Math.max(1, Math.round((to - from) * info.fps));
  const keep = framesFor(info.width, info.height, options.maxFrames);
  const step = Math.max(1, Math.ceil(inRange / keep));
  const reader = new FrameReader(info.file, {
    width: info.width, height: info.height, pixelFormat: 'rgb24',
    filter: `select='between(t\\,${from}\\,${to + 0.5 / info.fps})*not(mod(n\\,${step}))'`,
  });
  const frames: Uint8Array[] = [];
  const t0 = performance.now();
  try {
    for (let f = await reader.next(); f; f = await reader.next()) {
      checkAborted(options.signal);
      frames.push(f);
      if (frames.length >= keep) break;
    }
  } finally {
    reader.close();
  }
  seconds.decode! += (performance.now() - t0) / 1000;
  if (!frames.length) throw new CleanplateError(`no frames between ${from} s and ${to} s`, file);
  return { frames, width: info.width, height: info.height, from, to };
}

/** Builds the plate; `insufficient` says why it should not be used when too little background was seen. */
export async function buildPlate(options: PlateOptions): Promise<PlateBuild> {
  const started = performance.now();
  const seconds: Record<string, number> = { decode: 0, prior: 0, align: 0, estimate: 0 };
  const timed = async <T>(stage: string, fn: () => T | Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try { return await fn(); } finally { seconds[stage]! += (performance.now() - t0) / 1000; }
  };
  const { sources } = options;
  if (!sources.length) throw new CleanplateError('no source to build a plate from (a video, or several photos)');
  const images = sources.filter(isImagePath);
  let frames: ImageF32[] | Uint8Array[];
  let width: number, height: number, range: { from?: number; to?: number } = {};
  if (images.length === sources.length) {
    if (sources.length < 2) throw new CleanplateError('one photo cannot show the background behind the subject: give a video, or several photos with the subject in other places', sources[0]);
    if (options.from !== undefined || options.to !== undefined) throw new CleanplateError('--from/--to apply to a video, not to photos');
    const keep = options.maxFrames ?? MAX_FRAMES;
    const decoded = await timed('decode', () => Promise.all(sources.slice(0, keep).map((s) => decodeImage(s, { maxPixels: options.maxPixels }))));
    const ref = decoded[decoded.length >> 1]!;
    ({ width, height } = ref);
    frames = decoded;
  } else {
    if (sources.length !== 1) throw new CleanplateError('give one video, or several photos (PNG, JPEG, WebP, TIFF), not a mix');
    const sampled = await sampleVideo(sources[0]!, options, seconds);
    ({ width, height } = sampled);
    frames = sampled.frames;
    range = { from: sampled.from, to: sampled.to };
  }
  const count = frames.length;
  const refIndex = count >> 1;
  const asImage = (i: number): ImageF32 => {
    const f = frames[i]!;
    return f instanceof Uint8Array ? fromBytes(width, height, 3, f) : f;
  };
  const refImage = asImage(refIndex);
  const withPrior = options.priorName !== 'none';
  const refPrior = withPrior ? await timed('prior', () => options.prior.estimate(refImage)) : undefined;
  const radius = Math.max(3, Math.round(0.015 * Math.hypot(width, height)));

  // Camera: a few frames aligned first; a tripod keeps every frame as it is (no resampling blur).
  const sizesDiffer = frames.some((f) => !(f instanceof Uint8Array) && (f.width !== width || f.height !== height));
  if (sizesDiffer && options.align === 'none') throw new CleanplateError('the photos differ in size; use --align auto to align them');
  const fits = new Map<number, ReturnType<typeof estimateAlignment>>();
  const fit = (i: number) => {
    let a = fits.get(i);
    if (!a) { a = estimateAlignment(refImage, asImage(i), refPrior, options.align); fits.set(i, a); }
    return a;
  };
  let camera: PlateReport['camera'] = count === 1 ? 'single' : 'static';
  if (count > 1 && options.align !== 'none') {
    const others = [...Array(count).keys()].filter((i) => i !== refIndex);
    const probes = sizesDiffer ? others : [...new Set(Array.from({ length: Math.min(CAMERA_PROBES, others.length) }, (_, k) => others[Math.round((k * (others.length - 1)) / Math.max(1, CAMERA_PROBES - 1))]!))];
    await timed('align', () => {
      for (const i of probes) {
        checkAborted(options.signal);
        if (cornerShift(fit(i).homography, width, height) > STILL_SHIFT_PX) camera = 'moving';
      }
    });
    if (sizesDiffer) camera = 'moving';
  }

  const observations: PlateObservation[] = [];
  const methods: Partial<Record<AlignMethod | 'failed', number>> = {};
  let dropped = 0;
  for (let i = 0; i < count; i++) {
    checkAborted(options.signal);
    let image = asImage(i);
    let valid;
    if (camera === 'moving' && i !== refIndex) {
      const a = await timed('align', () => fit(i));
      // Without a reliable fit a moving camera's frame would put the background in the wrong place.
      if (a.method === 'identity') { methods.failed = (methods.failed ?? 0) + 1; dropped++; continue; }
      methods[a.method] = (methods[a.method] ?? 0) + 1;
      ({ warped: image, valid } = await timed('align', () => warpPlate(image, a.homography, width, height)));
    }
    const prior = !withPrior ? undefined : i === refIndex ? refPrior : await timed('prior', () => options.prior.estimate(image));
    const own = frames[i];
    const rgb = !valid && own instanceof Uint8Array ? own : toBytes(image);
    observations.push({ rgb, background: backgroundMask(width, height, prior, valid, withPrior ? radius : 0) });
    // The sampled frame is no longer needed once its observation is made.
    if (i !== refIndex) (frames as unknown[])[i] = undefined;
  }
  const estimate = await timed('estimate', () => estimatePlate(width, height, observations));
  let neverSeen = 0;
  for (const s of estimate.seen) if (!s) neverSeen++;
  const report: PlateReport = {
    sources, width, height,
    frames: { sampled: count, used: observations.length, dropped, ...range },
    reference: refIndex, camera,
    ...(camera === 'moving' ? { alignment: methods } : {}),
    prior: options.priorName,
    coverage: +estimate.coverage.toFixed(5), minCoverage: MIN_COVERAGE, neverSeenPixels: neverSeen,
    ...(estimate.hole ? { hole: estimate.hole } : {}),
    noise: estimate.noise, tolerance: estimate.tolerance,
    seconds: Object.fromEntries(Object.entries({ ...seconds, total: (performance.now() - started) / 1000 }).map(([k, v]) => [k, +v.toFixed(3)])),
    peakRssMB: peakRssMB(),
  };
  const insufficient = estimate.coverage < MIN_COVERAGE ? coverageMessage(estimate, MIN_COVERAGE) : undefined;
  return { plate: estimate.plate, seen: estimate.seen, report, ...(insufficient ? { insufficient } : {}) };
}
