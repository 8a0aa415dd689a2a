/**
 * The image pipeline as one object: `createMatter()` loads models once, `matte()` runs
 * decode → prior → align → matte → composite on typed buffers and reports what it did.
 */
import { performance } from 'node:perf_hooks';
import { applyColour, colourRing, fitColour, type ColourReport } from './align/colour.js';
import { assessPlate, type PlateAssessment } from './align/plate-check.js';
import { estimateAlignment, IDENTITY, warpPlate, type AlignMode, type AlignmentReport } from './align/homography.js';
import { composite, parseColour, resizeCover, solidColour } from './composite/index.js';
import { loadCv } from './cv.js';
import { CleanplateError } from './errors.js';
import { createPlane, quantile, sameSize, type ImageF32, type Plane } from './image.js';
import { decodeImage, DEFAULT_MAX_PIXELS } from './io/decode.js';
import type { FrameIndex } from './io/video-probe.js';
import { binarize, resize } from './ops.js';
import { ClassicEngine, type ClassicOptions } from './matte/classic.js';
import { NetworkEngine } from './matte/network.js';
import type { BandRefiner } from './matte/refine.js';
import { OnnxRefiner } from './matte/refiner-onnx.js';
import type { EngineName, MatteEngine } from './matte/engine.js';
import { createPrior, type Prior, type PriorName } from './prior/index.js';
import { analyseVideo, matteVideo, type VideoReport, type VideoRequest, type VideoState } from './video/matte-video.js';

export interface MatterOptions {
  prior?: PriorName;
  engine?: EngineName;
  align?: AlignMode;
  maxPixels?: number;
  /** Folder holding prior/ and the network models; defaults to the package's models/. */
  modelsDir?: string;
  /** Which network model of models/network.json (default: the manifest's default). */
  networkModel?: string;
  /** Which refiner model of models/refiner.json the `refined` engine runs (default: the manifest's default). */
  refinerModel?: string;
  /** A band refiner of your own for the `refined` engine (training records its inputs this way). */
  refiner?: BandRefiner;
  /** Tuning of the classic engine (working resolution of its whole-frame decisions, refinement radius). */
  classic?: ClassicOptions;
}

export type ImageSource = string | Uint8Array | ImageF32;

export interface MatteRequest {
  image: ImageSource;
  plate?: ImageSource;
  /** A new background: an image (scaled to cover) or a hex colour. */
  background?: ImageSource;
  color?: string;
}

export interface MatteReport {
  options: { prior: PriorName; engine: EngineName; align: AlignMode };
  engine: EngineName;
  prior: PriorName;
  size: { width: number; height: number };
  /** Whether a plate was given, and when it was, how much of the visible background it explains and what to look at. */
  plate: { given: boolean; confidence?: number; warnings: string[]; check?: Omit<PlateAssessment, 'warnings' | 'refuse' | 'confidence'> };
  alignment?: AlignmentReport;
  colour?: ColourReport;
  engineDetails: Record<string, number | string | boolean>;
  /** Milliseconds per stage. */
  timings: Record<string, number>;
  /** Peak resident memory of the process (MB) once the outputs were encoded; set when they are written. */
  peakRssMb?: number;
}

export interface MatteResult {
  alpha: Plane;
  foreground: ImageF32;
  composite?: ImageF32;
  plateAligned?: ImageF32;
  prior: Plane;
  report: MatteReport;
}

export interface Matter {
  readonly options: Required<Omit<MatterOptions, 'modelsDir' | 'networkModel' | 'classic' | 'refinerModel' | 'refiner'>>;
  matte(request: MatteRequest): Promise<MatteResult>;
  /** Mattes a video file frame by frame through ffmpeg, streaming; see VideoRequest. */
  matteVideo(request: VideoRequest): Promise<VideoReport>;
  /**
   * A video's per-video decisions (colour pass: median colour, camera, plate check), for
   * `VideoRequest.state`; with its frame index (probeFrames) the sampled frames are read by seeking.
   */
  analyseVideo(request: Pick<VideoRequest, 'input' | 'plate' | 'temporal' | 'signal'> & { index?: FrameIndex }): Promise<VideoState>;
}

/** An image given as a path, encoded bytes or an RGB buffer, decoded within the pixel limit. */
export async function loadImage(source: ImageSource, maxPixels: number, name: string): Promise<ImageF32> {
  if (typeof source === 'string' || source instanceof Uint8Array) return decodeImage(source, { maxPixels, name });
  if (source.channels !== 3) throw new CleanplateError(`expected an RGB image buffer, got ${source.channels} channels`, name);
  return source;
}

/**
 * How well two candidate plates agree with the image: the median grey difference (around its
 * median, so exposure does not count) over textured pixels that both plates cover. Flat regions
 * (sky, walls) say nothing about alignment and are left out; the subject costs both candidates alike.
 */
function textureMask(image: ImageF32, a: Plane, b: Plane): Int32Array {
  // Every third pixel of every third row: plenty of evidence, a ninth of the cost.
  const { width: w, height: h } = image;
  const d = image.data;
  const grey = (p: number) => 0.299 * d[p * 3]! + 0.587 * d[p * 3 + 1]! + 0.114 * d[p * 3 + 2]!;
  const idx: number[] = [], grad: number[] = [];
  for (let y = 1; y < h - 1; y += 3) for (let x = 1; x < w - 1; x += 3) {
    const p = y * w + x;
    if (a.data[p]! <= 0.5 || b.data[p]! <= 0.5) continue;
    idx.push(p);
    grad.push(Math.abs(grey(p + 1) - grey(p - 1)) + Math.abs(grey(p + w) - grey(p - w)));
  }
  const cut = quantile(Float32Array.from(grad), 0.7);
  return Int32Array.from(idx.filter((_, k) => grad[k]! > cut));
}

function disagreement(image: ImageF32, plate: ImageF32, pixels: Int32Array): number {
  if (!pixels.length) return 0;
  const diffs = new Float32Array(pixels.length);
  for (let k = 0; k < pixels.length; k++) {
    const p = pixels[k]!;
    diffs[k] = (image.data[p * 3]! + image.data[p * 3 + 1]! + image.data[p * 3 + 2]! - plate.data[p * 3]! - plate.data[p * 3 + 1]! - plate.data[p * 3 + 2]!) / 3;
  }
  const median = quantile(diffs, 0.5);
  for (let k = 0; k < diffs.length; k++) diffs[k] = Math.abs(diffs[k]! - median);
  return quantile(diffs, 0.5);
}

export interface PlacedPlate {
  warped: ImageF32;
  /** Where the warped plate covers the image. */
  valid: Plane;
}

/** The plate as it is when it needs no warp, else warped by the alignment's homography. */
export function placePlate(image: ImageF32, plateRaw: ImageF32, homography: number[]): PlacedPlate {
  const identity = homography.every((v, i) => Math.abs(v - (i % 4 === 0 ? 1 : 0)) < 1e-9);
  if (identity && sameSize(image, plateRaw)) return { warped: plateRaw, valid: createPlane(image.width, image.height, 1) };
  return warpPlate(plateRaw, homography, image.width, image.height);
}

/**
 * Plate → image geometry: the alignment ladder (or, in a video, tracking from the previous frame's
 * `start`), then a check that the chosen transform really makes the plate agree better with the
 * image than no transform at all.
 */
export function alignPlate(image: ImageF32, plateRaw: ImageF32, subject: Plane | undefined, mode: AlignMode, start?: readonly number[]): { alignment: AlignmentReport; placed: PlacedPlate } {
  if (mode === 'none' && !sameSize(image, plateRaw)) {
    throw new CleanplateError(`plate is ${plateRaw.width}x${plateRaw.height} but the image is ${image.width}x${image.height}; use --align auto to align plates of another size`, 'plate');
  }
  let alignment = estimateAlignment(image, plateRaw, subject, mode, start);
  if (alignment.method === 'identity' && !sameSize(image, plateRaw)) {
    throw new CleanplateError(`plate is ${plateRaw.width}x${plateRaw.height} but the image is ${image.width}x${image.height}, and no reliable alignment between them was found (${alignment.fallback})`, 'plate');
  }
  let placed = placePlate(image, plateRaw, alignment.homography);
  if (sameSize(image, plateRaw) && placed.warped !== plateRaw) {
    // A transform that fits the features but makes the plate agree less with the image is wrong
    // (features on a subject that fills the frame, repeated texture): keep the plate as it is.
    const unwarped = placePlate(image, plateRaw, [...IDENTITY]);
    const mask = textureMask(image, placed.valid, unwarped.valid);
    if (disagreement(image, placed.warped, mask) > 1.05 * disagreement(image, plateRaw, mask)) {
      alignment = { ...alignment, method: 'identity', homography: [...IDENTITY], fallback: `${alignment.method} made the plate agree less with the image` };
      placed = unwarped;
    }
  }
  return { alignment, placed };
}

/** Six numbers need no megapixels: the gain/bias fit runs on the images shrunk to ≤ 512 px. */
const COLOUR_LONG_SIDE = 512;

function fitColourCoarse(image: ImageF32, placed: PlacedPlate, subject: Plane | undefined): ColourReport {
  const scale = Math.min(1, COLOUR_LONG_SIDE / Math.max(image.width, image.height));
  if (scale === 1) return fitColour(image, placed.warped, colourRing(subject, placed.valid));
  const w = Math.max(1, Math.round(image.width * scale)), h = Math.max(1, Math.round(image.height * scale));
  // The coverage must be complete in a shrunk pixel for the pixel to count.
  const valid = binarize(resize(placed.valid, w, h), 0.999);
  return fitColour(resize(image, w, h), resize(placed.warped, w, h), colourRing(subject && resize(subject, w, h), valid));
}

/**
 * Colour-matches a placed plate to the image (fitted here, or a fixed correction such as a video's
 * median) and fills what the plate does not cover from the image, as the paper does.
 */
export function matchPlate(image: ImageF32, placed: PlacedPlate, subject: Plane | undefined, fixed?: ColourReport): { plate: ImageF32; plateValid: Plane; colour: ColourReport } {
  const colour = fixed ?? fitColourCoarse(image, placed, subject);
  const covered = placed.valid.data.every((v) => v >= 0.5);
  if (!colour.applied && covered) return { plate: placed.warped, plateValid: placed.valid, colour };
  // Copied before filling: the placed plate may be the caller's own buffer.
  const plate = colour.applied ? applyColour(placed.warped, colour) : { ...placed.warped, data: placed.warped.data.slice() };
  for (let p = 0; p < placed.valid.data.length; p++) {
    if (placed.valid.data[p]! < 0.5) for (let c = 0; c < 3; c++) plate.data[p * 3 + c] = image.data[p * 3 + c]!;
  }
  return { plate, plateValid: placed.valid, colour };
}

/**
 * The plate check of DESIGN's contract: assess the plate as the engine will see it, refuse it only
 * when it certainly shows another scene, and otherwise hand back warnings and a confidence.
 */
export function checkPlate(image: ImageF32, plate: ImageF32, plateValid: Plane, subject: Plane | undefined, alignment: AlignmentReport): PlateAssessment {
  const featureSupport = alignment.requested === 'none' || alignment.method !== 'identity';
  const assessment = assessPlate({ image, plate, plateValid, subject, featureSupport });
  if (assessment.refuse) throw new CleanplateError(assessment.refuse, 'plate');
  return assessment;
}

/** The report's plate entry from the check (or its absence). */
export function plateReport(a: PlateAssessment | undefined): MatteReport['plate'] {
  if (!a) return { given: false, warnings: [] };
  const { confidence, warnings, refuse: _refuse, ...check } = a;
  return { given: true, confidence, warnings, check };
}

export async function createMatter(options: MatterOptions = {}): Promise<Matter> {
  const resolved = {
    prior: options.prior ?? 'rvm',
    engine: options.engine ?? 'classic',
    align: options.align ?? 'auto',
    maxPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS,
  } as const;
  if (!['rvm', 'selfie', 'none'].includes(resolved.prior)) throw new CleanplateError(`unknown prior '${resolved.prior}' (rvm, selfie or none)`);
  if (!['auto', 'homography', 'none'].includes(resolved.align)) throw new CleanplateError(`unknown alignment '${resolved.align}' (auto, homography or none)`);
  let engine: MatteEngine;
  if (resolved.engine === 'classic') engine = new ClassicEngine(options.classic);
  else if (resolved.engine === 'refined') engine = new ClassicEngine(options.classic, options.refiner ?? await OnnxRefiner.create(options.refinerModel, options.modelsDir));
  else if (resolved.engine === 'network') engine = await NetworkEngine.create(options.networkModel, options.modelsDir);
  else throw new CleanplateError(`unknown engine '${resolved.engine}' (classic, refined or network)`);
  await loadCv();
  const prior: Prior = await createPrior(resolved.prior, options.modelsDir && `${options.modelsDir}/prior`);
  const videoParts = { engine, prior, priorName: resolved.prior, ...(options.modelsDir ? { priorDir: `${options.modelsDir}/prior` } : {}), align: resolved.align, maxPixels: resolved.maxPixels };

  return {
    options: resolved,
    matteVideo: (request) => matteVideo(videoParts, request),
    analyseVideo: (request) => analyseVideo(videoParts, request),
    async matte(request: MatteRequest): Promise<MatteResult> {
      const timings: Record<string, number> = {};
      let t = performance.now();
      const lap = (stage: string) => { const now = performance.now(); timings[stage] = +((timings[stage] ?? 0) + now - t).toFixed(1); t = now; };
      const image = await loadImage(request.image, resolved.maxPixels, 'image');
      const plateRaw = request.plate === undefined ? undefined : await loadImage(request.plate, resolved.maxPixels, 'plate');
      const background = request.background === undefined ? undefined : await loadImage(request.background, resolved.maxPixels, 'background');
      const colour = request.color === undefined ? undefined : parseColour(request.color);
      if (request.plate === undefined && resolved.prior === 'none') throw new CleanplateError('nothing to matte from: give a plate, or a prior (rvm or selfie) to matte without one');
      lap('decode');

      const priorAlpha = await prior.estimate(image);
      lap('prior');

      let plate: ImageF32 | undefined, plateValid: Plane | undefined, alignment: AlignmentReport | undefined, colourReport: ColourReport | undefined;
      let assessment: PlateAssessment | undefined;
      if (plateRaw) {
        const subject = resolved.prior !== 'none' ? priorAlpha : undefined;
        const aligned = alignPlate(image, plateRaw, subject, resolved.align);
        alignment = aligned.alignment;
        ({ plate, plateValid, colour: colourReport } = matchPlate(image, aligned.placed, subject));
        assessment = checkPlate(image, plate, plateValid, subject, alignment);
        lap('align');
      }

      const out = await engine.matte({ image, plate, plateValid, prior: priorAlpha });
      lap('matte');

      let comp: ImageF32 | undefined;
      if (background) comp = composite(out.foreground, out.alpha, resizeCover(background, image.width, image.height));
      else if (colour) comp = composite(out.foreground, out.alpha, solidColour(image.width, image.height, colour));
      if (comp) lap('composite');

      return {
        alpha: out.alpha,
        foreground: out.foreground,
        composite: comp,
        plateAligned: plate,
        prior: priorAlpha,
        report: {
          options: { prior: resolved.prior, engine: resolved.engine, align: resolved.align },
          engine: engine.name,
          prior: resolved.prior,
          size: { width: image.width, height: image.height },
          plate: plateReport(assessment),
          ...(alignment ? { alignment } : {}),
          ...(colourReport ? { colour: colourReport } : {}),
          engineDetails: out.details,
          timings,
        },
      };
    },
  };
}
