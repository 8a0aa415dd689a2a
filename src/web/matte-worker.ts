/**
 * The matte worker: the core's classic engine and compositing, off the page's thread.
 *
 * Live: the page hands over each camera frame (a VideoFrame, transferred) with a buffer for the
 * result; the frame becomes the core's ImageF32, the plate is made of the frames captured on
 * request (the frames that agree, averaged), the prior is the newest one the prior worker sent (resized to the frame). The webcam is
 * assumed still (a tripod): the plate is not re-aligned, its colour is re-fitted every two seconds (a
 * webcam's exposure drifts), and once a second the core's plate check measures how much of the
 * visible background the plate no longer explains (the camera moved, the light changed).
 *
 * Photo: the same steps as `cleanplate matte` (photo.ts's mattePhoto), with the prior computed by the
 * prior worker; the outputs come back as the CLI's PNG files.
 */
import { ScratchArena } from '../alloc.js';
import { assessPlate } from '../align/plate-check.js';
import { compositeRgba, parseColour, solidColour } from '../composite/index.js';
import { loadCv } from '../cv.js';
import { CleanplateError } from '../errors.js';
import { alphaMetrics } from '../eval/metrics.js';
import { createPlane, DEFAULT_MAX_PIXELS, fromRgba, MIN_SIDE, rgbaBytes, toBytes, type ImageF32, type Plane } from '../image.js';
import { ClassicEngine } from '../matte/classic.js';
import { gaussianBlur, resize } from '../ops.js';
import { matchPlate, mattePhoto, type PhotoSetup } from '../photo.js';
import { estimatePlate, type PlateObservation } from '../plate/build.js';
import type { Prior } from '../prior/index.js';
import { clearLeft, leftSince, staleGridImage } from '../prior/stale.js';
import { bitmapRgba, drawRgba, encodePng, frameRgba } from './pixels.js';
import type { BackgroundSpec, FrameStats, FromMatte, LiveSettings, PhotoRequest, PriorChannel, ToMatte } from './protocol.js';
import { messageOf, scope } from './worker-scope.js';

/** Six numbers (gain and bias per channel) need few pixels: the live colour fit runs on a 160 px grid. */
const COLOUR_LONG_SIDE = 160;

const post = (m: FromMatte, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

let port: MessagePort;
let settings: LiveSettings;
/**
 * Live: the classic engine with a 320 px working grid and no guided refinement (decided in Node on the
 * benchmark clip's ground truth: at 640x360 40 ms and MAD 14.3e-3 against 121 ms and 14.5e-3 with the
 * CLI's 512 px grid and refinement; at 1280x720 106 ms and 4.2e-3 against 356 ms and 5.8e-3);
 * photos: the CLI's engine, default options.
 */
let engine: ClassicEngine;
const liveEngine = (s: LiveSettings) => new ClassicEngine({ workLongSide: s.work, refineRadius: s.refine });
const photoEngine = new ClassicEngine();

// Live state, all at settings.width x settings.height.
let rgbaIn: Uint8Array | undefined;
let image: ImageF32 | undefined;
let plate: ImageF32 | undefined;
/** The plate colour-matched to the camera's current exposure. */
let plateMatched: ImageF32 | undefined;
let plateValid: Plane | undefined;
let capture: { frames: PlateObservation[]; target: number; skip: number } | undefined;
let latestPrior: { id: number; small: Plane; full?: Plane } | undefined;
let backgroundSpec: BackgroundSpec = { kind: 'blur' };
let background: ImageF32 | undefined;
let lastColourFit = -Infinity;
let lastCheck = -Infinity;
/**
 * The last frames on stale.ts's small grid, by id: the newest prior was computed on one of them, and
 * where the subject has left since then the prior is cleared. `plateGrid`: the matched plate on it.
 */
const gridFrames = new Map<number, ImageF32>();
const GRID_FRAMES = 24;
let plateGrid: ImageF32 | undefined;

const scratch = new ScratchArena();
/** Frames skipped before the plate's: about a tenth of a second of frames that may predate the request. */
const PLATE_SKIP = 3;

/** Photo mode's priors, answered by the prior worker. */
const photoPriors = new Map<number, { resolve: (d: Float32Array) => void; reject: (e: Error) => void }>();
let nextPhotoPrior = 0;

function resetLive(): void {
  plate = plateMatched = plateValid = background = undefined;
  capture = undefined;
  latestPrior = undefined;
  lastColourFit = lastCheck = -Infinity;
  gridFrames.clear();
  plateGrid = undefined;
}

/** The background of the composite at the live size: a colour, a picture scaled to cover, or the plate blurred. */
function liveBackground(): ImageF32 {
  const { width, height } = settings;
  if (background && background.width === width && background.height === height) return background;
  const spec = backgroundSpec;
  if (spec.kind === 'colour') background = solidColour(width, height, parseColour(spec.hex));
  else if (spec.kind === 'picture') background = fromRgba(width, height, drawRgba(spec.bitmap, spec.bitmap.width, spec.bitmap.height, width, height));
  else background = plate ? gaussianBlur(plate, Math.round(Math.max(width, height) / 24) | 1) : solidColour(width, height, [0.5, 0.5, 0.5]);
  return background;
}

/**
 * `from`, made in the scratch arena, copied into `into` (kept from frame to frame, so that what lasts
 * beyond a frame costs no fresh memory either).
 */
function keep<T extends ImageF32>(into: T | undefined, from: T): T {
  if (into && into.width === from.width && into.height === from.height && into.channels === from.channels) {
    into.data.set(from.data);
    return into;
  }
  return { ...from, data: from.data.slice() };
}

let priorFull: Plane | undefined;
let noPrior: Plane | undefined;

/**
 * The newest prior at the frame's size (resized once per prior), with the places the subject has
 * left since the prior's frame cleared (stale.ts says why; resized again each frame that has them).
 * `cleared`: whether it was cleared anywhere on this frame.
 */
function currentPrior(id: number, now: ImageF32): { prior: Plane; cleared: boolean } {
  const { width, height } = settings;
  if (!latestPrior) {
    if (noPrior?.width !== width || noPrior.height !== height) noPrior = createPlane(width, height);
    return { prior: noPrior, cleared: false };
  }
  const then = latestPrior.id < id ? gridFrames.get(latestPrior.id) : undefined;
  const left = then && plateGrid && leftSince(then, now, plateGrid, latestPrior.small);
  if (left) {
    const small = latestPrior.small;
    return { prior: resize(clearLeft(small, left), width, height), cleared: true };
  }
  if (!latestPrior.full) {
    const small = latestPrior.small;
    priorFull = keep(priorFull, scratch.run(() => resize(small, width, height)));
    latestPrior.full = priorFull;
  }
  return { prior: latestPrior.full, cleared: false };
}

/** The frame on the small grid, kept by id for the priors computed on it (the oldest dropped). */
function rememberGrid(id: number, frame: ImageF32): ImageF32 {
  const grid = staleGridImage(frame);
  // One frame in, the oldest out (a Map iterates in insertion order), its buffer reused.
  let reuse: ImageF32 | undefined;
  if (gridFrames.size >= GRID_FRAMES) {
    const oldest = gridFrames.keys().next().value as number;
    reuse = gridFrames.get(oldest);
    gridFrames.delete(oldest);
  }
  const kept = keep(reuse, grid);
  gridFrames.set(id, kept);
  return kept;
}

async function liveFrame(msg: Extract<ToMatte, { type: 'frame' }>): Promise<void> {
  const { width, height } = settings;
  const ms: Record<string, number> = {};
  let t = performance.now();
  const lap = (k: string) => { const now = performance.now(); ms[k] = +(now - t).toFixed(2); t = now; };
  rgbaIn = await frameRgba(msg.frame, width, height, rgbaIn);
  image = fromRgba(width, height, rgbaIn, image);
  const out = new Uint8Array(msg.out && msg.out.byteLength === width * height * 4 ? msg.out : new ArrayBuffer(width * height * 4));
  lap('frame');
  if (capture) addToPlate(image);
  const stats: FrameStats = { matting: Boolean(plate), ms };
  if (!plate) {
    out.set(rgbaIn);
  } else {
    scratch.reset();
    const now = rememberGrid(msg.id, scratch.run(() => staleGridImage(image!)));
    const { prior, cleared } = scratch.run(() => currentPrior(msg.id, now));
    stats.priorCleared = cleared;
    lap('prior');
    if (!plateMatched || t - lastColourFit >= settings.colourMs) {
      const frame = image, raw = plate, valid = plateValid!;
      const matched = scratch.run(() => matchPlate(frame, { warped: raw, valid }, prior, undefined, { longSide: COLOUR_LONG_SIDE }).plate);
      // The plate itself when the fit changed nothing; else a colour-matched copy kept across frames.
      plateMatched = matched === raw ? raw : keep(plateMatched === raw ? undefined : plateMatched, matched);
      plateGrid = keep(plateGrid, scratch.run(() => staleGridImage(plateMatched!)));
      lastColourFit = t;
      lap('colour');
    }
    const bg = liveBackground();
    // The engine's temporary planes come from buffers kept across frames (alloc.ts says why); nothing
    // made in there outlives this frame: the composite goes into `out`, the check returns a number.
    const matted = scratch.run(() => engine.matte({ image: image!, plate: plateMatched, plateValid, prior, realign: false }));
    const result = await matted;
    lap('matte');
    for (const [k, v] of Object.entries(result.details)) if (k.startsWith('ms_')) ms[`matte.${k.slice(3)}`] = v as number;
    compositeRgba(result.foreground, result.alpha, bg, out);
    lap('composite');
    if (t - lastCheck >= settings.checkMs) {
      const check = scratch.run(() => assessPlate({ image: image!, plate: plateMatched!, plateValid: plateValid!, subject: latestPrior ? prior : undefined, featureSupport: true }));
      stats.plateMismatch = 1 - check.confidence;
      lastCheck = t;
      lap('check');
    }
    stats.priorLag = latestPrior ? msg.id - latestPrior.id : undefined;
    stats.band = result.details.bandShare as number;
    stats.scratchMb = Math.round(scratch.held / 1e6);
  }
  post({ type: 'frame', id: msg.id, width, height, rgba: out.buffer, stats }, [out.buffer]);
}

/**
 * Collects the next `target` frames for the plate, after skipping `skip` (frames already on their
 * way when the countdown ended), and makes the plate from them as `cleanplate plate` does
 * (estimatePlate): per pixel, the frames that agree within the sensor noise are averaged (noise falls
 * with the square root of their number), and a frame that disagrees with most (someone still
 * stepping out of view, or back in before the last frame) is left out rather than smeared in.
 */
function addToPlate(frame: ImageF32): void {
  const c = capture!;
  if (c.skip > 0) { c.skip--; return; }
  const { width, height } = frame;
  // The camera's bytes again (a byte over 255 and back rounds to itself).
  c.frames.push({ rgb: toBytes(frame), background: c.frames[0]?.background ?? new Uint8Array(width * height).fill(1) });
  if (c.frames.length < c.target) return;
  plate = estimatePlate(width, height, c.frames).plate;
  plateValid = createPlane(width, height, 1);
  plateMatched = undefined;
  latestPrior = undefined;
  lastColourFit = lastCheck = -Infinity;
  if (backgroundSpec.kind === 'blur') background = undefined;
  capture = undefined;
  post({ type: 'plate', width, height, frames: c.frames.length });
}

/** A decoded picture as the core's RGB image, within the CLI's limits and with its messages. */
function pictureImage(bitmap: ImageBitmap, name: string): ImageF32 {
  const { width, height } = bitmap;
  if (width * height > DEFAULT_MAX_PIXELS) throw new CleanplateError(`image is ${width}x${height} (${(width * height / 1e6).toFixed(1)} MP), over the limit of ${(DEFAULT_MAX_PIXELS / 1e6).toFixed(1)} MP`, name);
  if (width < MIN_SIDE || height < MIN_SIDE) throw new CleanplateError(`image is ${width}x${height}, too small to matte (at least ${MIN_SIDE}x${MIN_SIDE})`, name);
  const image = fromRgba(width, height, bitmapRgba(bitmap));
  bitmap.close();
  return image;
}

/** The prior worker's prior of a photo, as the core's Prior. */
function remotePrior(name: PhotoRequest['prior']): Prior {
  return {
    name,
    estimate: (img) => new Promise<Plane>((resolve, reject) => {
      const id = nextPhotoPrior++;
      photoPriors.set(id, { resolve: (data) => resolve({ width: img.width, height: img.height, channels: 1, data } as Plane), reject });
      const copy = img.data.slice();
      port.postMessage({ type: 'photo', id, prior: name, width: img.width, height: img.height, data: copy } satisfies PriorChannel, [copy.buffer]);
    }),
    // The prior worker sizes the picture for its model itself: it is sent whole.
    inputSize: (width, height) => ({ width, height }),
    stream: () => { throw new Error('photo mode has no stream'); },
  };
}

function greyRgba(bytes: Uint8Array): Uint8ClampedArray {
  const out = new Uint8ClampedArray(bytes.length * 4);
  for (let p = 0; p < bytes.length; p++) { out[p * 4] = out[p * 4 + 1] = out[p * 4 + 2] = bytes[p]!; out[p * 4 + 3] = 255; }
  return out;
}

function rgbToRgba(bytes: Uint8Array): Uint8ClampedArray {
  const n = bytes.length / 3, out = new Uint8ClampedArray(n * 4);
  for (let p = 0; p < n; p++) { out[p * 4] = bytes[p * 3]!; out[p * 4 + 1] = bytes[p * 3 + 1]!; out[p * 4 + 2] = bytes[p * 3 + 2]!; out[p * 4 + 3] = 255; }
  return out;
}

async function photo(msg: PhotoRequest): Promise<void> {
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const image = pictureImage(msg.image, msg.names.image);
  const plateImage = msg.plate && pictureImage(msg.plate, msg.names.plate ?? 'plate');
  const backgroundImage = msg.background && pictureImage(msg.background, msg.names.background ?? 'background');
  const reference = msg.reference && pictureImage(msg.reference, msg.names.reference ?? 'reference');
  if (reference && (reference.width !== image.width || reference.height !== image.height)) {
    throw new CleanplateError(`reference alpha is ${reference.width}x${reference.height} but the photo is ${image.width}x${image.height}`, msg.names.reference);
  }
  timings.decode = +(performance.now() - t0).toFixed(1);
  const setup: PhotoSetup = { engine: photoEngine, prior: remotePrior(msg.prior), options: { prior: msg.prior, engine: 'classic', align: msg.align } };
  const result = await mattePhoto(setup, { image, plate: plateImage, background: backgroundImage, colour: msg.colour === undefined ? undefined : parseColour(msg.colour) }, timings);
  const t1 = performance.now();
  const { width, height } = image;
  const alphaBytes = toBytes(result.alpha);
  const foregroundBytes = rgbaBytes(result.foreground, result.alpha);
  const compositeBytes = result.composite && toBytes(result.composite);
  const png = {
    alpha: encodePng(width, height, 1, alphaBytes),
    foreground: encodePng(width, height, 4, foregroundBytes),
    ...(compositeBytes ? { composite: encodePng(width, height, 3, compositeBytes) } : {}),
  };
  timings.encode = +(performance.now() - t1).toFixed(1);
  // Scored as `cleanplate eval` scores: the reference's first channel is the alpha.
  const metrics = reference ? alphaMetrics(result.alpha, { width, height, channels: 1, data: reference.data.filter((_, i) => i % 3 === 0) } as Plane) : undefined;
  const preview = {
    alpha: greyRgba(alphaBytes),
    foreground: new Uint8ClampedArray(foregroundBytes.buffer),
    ...(compositeBytes ? { composite: rgbToRgba(compositeBytes) } : {}),
  };
  const transfer = [png.alpha.buffer, png.foreground.buffer, preview.alpha.buffer, preview.foreground.buffer, ...(png.composite ? [png.composite.buffer] : []), ...(preview.composite ? [preview.composite.buffer] : [])];
  post({ type: 'photo', id: msg.id, width, height, png, preview, report: result.report, ...(metrics ? { metrics } : {}) }, transfer as ArrayBuffer[]);
}

async function init(msg: Extract<ToMatte, { type: 'init' }>): Promise<void> {
  const t0 = performance.now();
  settings = msg.settings;
  port = msg.port;
  port.onmessage = (e: MessageEvent<PriorChannel>) => {
    const m = e.data;
    if (m.type === 'prior') {
      // Only newer priors, and only of this size (a change of resolution in flight is dropped).
      if ((!latestPrior || m.id > latestPrior.id) && plate) latestPrior = { id: m.id, small: { width: m.width, height: m.height, channels: 1, data: m.data } as Plane };
    } else if (m.type === 'photo-prior') {
      const job = photoPriors.get(m.id);
      photoPriors.delete(m.id);
      if (m.data) job?.resolve(m.data); else job?.reject(new Error(`prior failed: ${m.error}`));
    }
  };
  engine = liveEngine(settings);
  await loadCv();
  post({ type: 'ready', ms: performance.now() - t0 });
}

let queue: Promise<void> = Promise.resolve();
scope.onmessage = (e: MessageEvent<ToMatte>) => {
  const msg = e.data;
  const run = async () => {
    switch (msg.type) {
      case 'init': return init(msg);
      case 'settings': {
        const resized = msg.settings.width !== settings.width || msg.settings.height !== settings.height;
        if (msg.settings.work !== settings.work || msg.settings.refine !== settings.refine) engine = liveEngine(msg.settings);
        settings = msg.settings;
        if (resized) resetLive();
        return;
      }
      case 'frame': return liveFrame(msg);
      case 'reset': resetLive(); return;
      case 'capture': capture = { frames: [], target: Math.max(1, msg.frames), skip: PLATE_SKIP }; return;
      case 'background':
        if (backgroundSpec.kind === 'picture' && msg.background.kind !== 'picture') backgroundSpec.bitmap.close();
        backgroundSpec = msg.background;
        background = undefined;
        return;
      case 'photo': return photo(msg);
    }
  };
  queue = queue.then(run).catch((err) => {
    if (msg.type === 'frame') msg.frame.close();
    post({ type: 'error', message: messageOf(err), context: msg.type, ...(msg.type === 'photo' || msg.type === 'frame' ? { id: msg.id } : {}) });
  });
};
