/**
 * One photo through prior → align → matte → composite, on decoded buffers. Platform-free: the Node
 * pipeline (pipeline.ts: decode with sharp, then this) and the browser's photo mode (src/web: decode
 * with the page's image decoder, then this) run the same steps, so their mattes agree.
 */
import { applyColour, colourRing, fitColour, type ColourReport } from './align/colour.js';
import { assessOnGrid, checkGrid, type CheckGrid, type PlateAssessment } from './align/plate-check.js';
import { cornerShift, estimateAlignment, IDENTITY, invert3, project, trackBeforeSubject, trackBeforeSubjectHelped, warpPlate, type AlignMode, type AlignmentReport, type CornerTrack, type FlowHelper, STILL_SHIFT_PX } from './align/homography.js';
import { composite, compositeColour, resizeCover } from './composite/index.js';
import { CleanplateError } from './errors.js';
import { createPlane, quantile, sameSize, type ImageF32, type Plane } from './image.js';
import { binarize, resize, Shrinks } from './ops.js';
import type { BandHelper, EngineName, MatteEngine } from './matte/engine.js';
import type { Prior, PriorName } from './prior/index.js';

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

/**
 * How well candidate plates agree with the image is judged on textured pixels: every third pixel of
 * every third row (plenty of evidence, a ninth of the cost) that `covered` accepts, the top 30% by
 * grey gradient. Flat regions (sky, walls) say nothing about alignment; the subject costs all
 * candidates alike.
 */
function texturedSamples(image: ImageF32, covered: (p: number, x: number, y: number) => boolean): Int32Array {
  const { width: w, height: h } = image;
  const d = image.data;
  const grey = (p: number) => 0.299 * d[p * 3]! + 0.587 * d[p * 3 + 1]! + 0.114 * d[p * 3 + 2]!;
  const n = Math.ceil((w - 2) / 3) * Math.ceil((h - 2) / 3);
  const grad = new Float32Array(n), at = new Int32Array(n);
  let k = 0;
  for (let y = 1; y < h - 1; y += 3) for (let x = 1; x < w - 1; x += 3) {
    const p = y * w + x;
    if (!covered(p, x, y)) continue;
    grad[k] = Math.abs(grey(p + 1) - grey(p - 1)) + Math.abs(grey(p + w) - grey(p - w));
    at[k++] = p;
  }
  const cut = quantile(grad.subarray(0, k), 0.7);
  // A plain loop: TypedArray filter with a callback costs ~50 ns an element (~5 ms at 720p).
  let m = 0;
  for (let i = 0; i < k; i++) if (grad[i]! > cut) at[m++] = at[i]!;
  return at.slice(0, m);
}

/**
 * The median grey difference between the image and a plate (around its median, so exposure does
 * not count) over `pixels`; `plateMean(p)` is the plate's mean of the three channels seen at pixel p.
 */
function disagreement(image: ImageF32, plateMean: (p: number) => number, pixels: Int32Array): number {
  if (!pixels.length) return 0;
  const d = image.data;
  const diffs = new Float32Array(pixels.length);
  for (let k = 0; k < pixels.length; k++) {
    const p = pixels[k]!;
    diffs[k] = (d[p * 3]! + d[p * 3 + 1]! + d[p * 3 + 2]!) / 3 - plateMean(p);
  }
  const median = quantile(diffs, 0.5);
  for (let k = 0; k < diffs.length; k++) diffs[k] = Math.abs(diffs[k]! - median);
  return quantile(diffs, 0.5);
}

const meanAt = (image: ImageF32) => (p: number) => (image.data[p * 3]! + image.data[p * 3 + 1]! + image.data[p * 3 + 2]!) / 3;

/** A transform that fits the features but makes the plate agree less with the image than none is wrong. */
const AGREE_LESS = 1.05;

function refuseFit(alignment: AlignmentReport): AlignmentReport {
  return { ...alignment, method: 'identity', homography: [...IDENTITY], fallback: `${alignment.method} made the plate agree less with the image` };
}

/** The alignment, or the one-line error when a plate of another size could not be aligned at all. */
function estimateOrRefuse(image: ImageF32, plateRaw: ImageF32, subject: Plane | undefined, mode: AlignMode, start?: readonly number[], track?: CornerTrack): AlignmentReport {
  const alignment = estimateAlignment(image, plateRaw, subject, mode, start, track);
  if (alignment.method === 'identity' && !sameSize(image, plateRaw)) {
    throw new CleanplateError(`plate is ${plateRaw.width}x${plateRaw.height} but the image is ${image.width}x${image.height}, and no reliable alignment between them was found (${alignment.fallback})`, 'plate');
  }
  return alignment;
}

export interface PlacedPlate {
  warped: ImageF32;
  /** Where the warped plate covers the image. */
  valid: Plane;
  /**
   * `warped` was made for this placement (a warp), not the caller's plate: `matchPlate` corrects
   * and fills it in place instead of copying (a 1080p plate is 25 MB of fresh pages a copy).
   */
  owned?: boolean;
}

/** The plate as it is when it needs no warp, else warped by the alignment's homography (into `into`'s buffers when given: warpPlate). */
export function placePlate(image: { width: number; height: number }, plateRaw: ImageF32, homography: number[], into?: { warped: Float32Array; valid: Float32Array }): PlacedPlate {
  const identity = homography.every((v, i) => Math.abs(v - (i % 4 === 0 ? 1 : 0)) < 1e-9);
  if (identity && sameSize(image, plateRaw)) return { warped: plateRaw, valid: createPlane(image.width, image.height, 1) };
  return { ...warpPlate(plateRaw, homography, image.width, image.height, into), owned: true };
}

/**
 * Plate → image geometry: tracking from no transform for a plate of the image's size, else (or when
 * that finds no supported fit) the alignment ladder, then a check that the chosen transform really
 * makes the plate agree better with the image than no transform at all. `track`: the corners
 * already tracked from no transform before the subject was known (`trackBeforeSubject`).
 */
export function alignPlate(image: ImageF32, plateRaw: ImageF32, subject: Plane | undefined, mode: AlignMode, track?: CornerTrack): { alignment: AlignmentReport; placed: PlacedPlate } {
  if (mode === 'none' && !sameSize(image, plateRaw)) {
    throw new CleanplateError(`plate is ${plateRaw.width}x${plateRaw.height} but the image is ${image.width}x${image.height}; use --align auto to align plates of another size`, 'plate');
  }
  let alignment = estimateOrRefuse(image, plateRaw, subject, mode, undefined, track);
  let placed = placePlate(image, plateRaw, alignment.homography);
  if (sameSize(image, plateRaw) && placed.warped !== plateRaw) {
    // A transform that fits the features but makes the plate agree less with the image is wrong
    // (features on a subject that fills the frame, repeated texture): keep the plate as it is.
    // The plate as it is covers the whole image (same size): only the warp's coverage limits the samples.
    const mask = texturedSamples(image, (p) => placed.valid.data[p]! > 0.5);
    if (disagreement(image, meanAt(placed.warped), mask) > AGREE_LESS * disagreement(image, meanAt(plateRaw), mask)) {
      alignment = refuseFit(alignment);
      placed = placePlate(image, plateRaw, [...IDENTITY]);
    }
  }
  return { alignment, placed };
}

/**
 * One of a video's colour-pass samples, in two halves (a thread that does its own samples runs both;
 * the matting thread gives its event loop a turn between them). First: the plate's fit to the
 * frame, undefined where no reliable one exists and alignment was asked for (a sampled frame
 * without one says nothing about colour). A plate of the frame's size is tracked from no transform
 * as a video's frames are tracked from the previous fit (trackPlate: the plate's cached corners on
 * the tracking grid; ORB where tracking finds no supported fit), and where the fit moves the
 * frame's corners by at most STILL_SHIFT_PX the plate is placed as it is, as a tripod video's frames
 * then see it: no warp of the whole plate for a sub-pixel shift. A 720p sample's fit ~220 -> ~115 ms.
 */
export function sampleFit(image: ImageF32, plateRaw: ImageF32, subject: Plane | undefined, mode: AlignMode): { alignment: AlignmentReport; placed: PlacedPlate } | undefined {
  try {
    if (mode === 'none' || !sameSize(image, plateRaw)) return alignPlate(image, plateRaw, subject, mode);
    const alignment = trackPlate(image, plateRaw, subject, mode, IDENTITY);
    const still = cornerShift(alignment.homography, image.width, image.height) <= STILL_SHIFT_PX;
    return { alignment, placed: placePlate(image, plateRaw, still ? [...IDENTITY] : alignment.homography) };
  } catch (err) {
    if (err instanceof CleanplateError && mode !== 'none') return undefined;
    throw err;
  }
}

/** A colour-pass sample's outcome: its fit, colour fit and plate check (or the check's refusal). */
export interface SampleOutcome {
  /** Absent where the frame had no reliable fit (nothing else is then known). */
  alignment?: AlignmentReport;
  colour?: ColourReport;
  assessment?: PlateAssessment;
  /** The check's refusal: one frame can be all subject, so only every sample refusing refuses the plate. */
  refusal?: CleanplateError;
}

/** Second half: the colour fit to the placed plate, and the plate check. */
export function sampleCheck(image: ImageF32, fit: { alignment: AlignmentReport; placed: PlacedPlate }, subject: Plane | undefined): SampleOutcome {
  const matched = matchPlate(image, fit.placed, subject);
  try {
    return { alignment: fit.alignment, colour: matched.colour, assessment: checkPlate(image, matched.plate, matched.plateValid, subject, fit.alignment) };
  } catch (err) {
    if (!(err instanceof CleanplateError)) throw err;
    return { alignment: fit.alignment, colour: matched.colour, refusal: err };
  }
}

/**
 * The plate's value at image pixel p under a plate → image homography (its inverse `inv`), bilinear
 * with the plate's edge repeated (as warpPerspective with BORDER_REPLICATE), or undefined where the
 * point falls outside the plate.
 */
function sampleGrey(plate: ImageF32, inv: number[], x: number, y: number): number | undefined {
  const [u, v] = project(inv, x, y);
  if (!(u >= -0.5 && v >= -0.5 && u <= plate.width - 0.5 && v <= plate.height - 0.5)) return undefined;
  const x0 = Math.max(0, Math.min(plate.width - 1, Math.floor(u))), y0 = Math.max(0, Math.min(plate.height - 1, Math.floor(v)));
  const x1 = Math.min(plate.width - 1, x0 + 1), y1 = Math.min(plate.height - 1, y0 + 1);
  const fx = Math.max(0, Math.min(1, u - x0)), fy = Math.max(0, Math.min(1, v - y0));
  const d = plate.data, w = plate.width;
  const g = (q: number) => d[q * 3]! + d[q * 3 + 1]! + d[q * 3 + 2]!;
  return ((1 - fy) * ((1 - fx) * g(y0 * w + x0) + fx * g(y0 * w + x1)) + fy * ((1 - fx) * g(y1 * w + x0) + fx * g(y1 * w + x1))) / 3;
}

/** A chain of tracked fits: the previous frame's fit, where there is one to track from. */
export interface TrackChain { last?: number[] }

/**
 * A video frame's fit in a chain (`trackPlate` from the chain's previous fit), re-acquired without
 * one on the grid of `every` frames, so that a segment starting there tracks as a whole run does.
 * The chain moves on (to no fit where this one is the identity); a failed fit throws, as trackPlate's does.
 */
export function trackInChain(chain: TrackChain, index: number, every: number, image: ImageF32, plateRaw: ImageF32, subject: Plane | undefined, mode: AlignMode): AlignmentReport {
  if (index % every === 0) chain.last = undefined;
  const alignment = trackPlate(image, plateRaw, subject, mode, chain.last);
  chain.last = alignment.method !== 'identity' ? alignment.homography : undefined;
  return alignment;
}

/**
 * `alignPlate` for a video's frames, tracked from `start` (the previous frame's fit) or acquired
 * without one, where only the transform is wanted (the frame is placed later with the smoothed one): the same "does it agree better than no transform" check,
 * on the textured sample pixels only, sampling the plate where the transform puts them instead of
 * warping the whole plate twice.
 */
export function trackPlate(image: ImageF32, plateRaw: ImageF32, subject: Plane | undefined, mode: AlignMode, start?: readonly number[]): AlignmentReport {
  const alignment = estimateOrRefuse(image, plateRaw, subject, mode, start);
  const inv = invert3(alignment.homography);
  if (!sameSize(image, plateRaw) || alignment.method === 'identity' || !inv) return alignment;
  // Per sampled pixel: the projection written out (no pair allocated for each of ~100k pixels).
  const inside = (x: number, y: number) => {
    const z = inv[6]! * x + inv[7]! * y + inv[8]!, u = (inv[0]! * x + inv[1]! * y + inv[2]!) / z, v = (inv[3]! * x + inv[4]! * y + inv[5]!) / z;
    return u >= -0.5 && v >= -0.5 && u <= plateRaw.width - 0.5 && v <= plateRaw.height - 0.5;
  };
  const pixels = texturedSamples(image, (_p, x, y) => inside(x, y));
  const w = image.width;
  const warped = disagreement(image, (p) => sampleGrey(plateRaw, inv, p % w, Math.floor(p / w))!, pixels);
  return warped > AGREE_LESS * disagreement(image, meanAt(plateRaw), pixels) ? refuseFit(alignment) : alignment;
}

/** Six numbers need no megapixels: the gain/bias fit runs on the images shrunk to ≤ 512 px. */
const COLOUR_LONG_SIDE = 512;

/** How `matchPlate` fits the colour: on the images shrunk to `longSide`, the image, subject and coverage through `shrinks` where given. */
export interface ColourFitOptions { longSide?: number; shrinks?: Shrinks }

/** The colour fit's grid for an image: long side ≤ `longSide`. */
function colourGrid(image: { width: number; height: number }, longSide = COLOUR_LONG_SIDE): { scale: number; w: number; h: number } {
  const scale = Math.min(1, longSide / Math.max(image.width, image.height));
  return { scale, w: Math.max(1, Math.round(image.width * scale)), h: Math.max(1, Math.round(image.height * scale)) };
}

function fitColourCoarse(image: ImageF32, placed: PlacedPlate, subject: Plane | undefined, { longSide = COLOUR_LONG_SIDE, shrinks }: ColourFitOptions): ColourReport {
  const { scale, w, h } = colourGrid(image, longSide);
  if (scale === 1) return fitColour(image, placed.warped, colourRing(subject, placed.valid));
  const small = <T extends ImageF32>(x: T): T => (shrinks ? shrinks.resize(x, w, h) : resize(x, w, h));
  // The coverage must be complete in a shrunk pixel for the pixel to count.
  const valid = binarize(small(placed.valid), 0.999);
  // The warped plate is corrected in place next (correctPlate): never through `shrinks`.
  return fitColour(small(image), resize(placed.warped, w, h), colourRing(subject && small(subject), valid));
}

/**
 * Colour-matches a placed plate to the image (fitted here on the images shrunk to `longSide`, or a
 * fixed correction such as a video's median) and fills what the plate does not cover from the
 * image, as the paper does.
 */
export function matchPlate(image: ImageF32, placed: PlacedPlate, subject: Plane | undefined, fixed?: ColourReport, fit: ColourFitOptions = {}): { plate: ImageF32; plateValid: Plane; colour: ColourReport } {
  const colour = fixed ?? fitColourCoarse(image, placed, subject, fit);
  return { ...fillUncovered(image, correctPlate(placed, colour)), colour };
}

/**
 * The first half of `matchPlate` with a known correction: the placed plate colour-corrected (in
 * place when the placement made it, else a copy), what it does not cover not yet filled. Needs no
 * image: a video's prior thread places a moving camera's plate ahead of the matting thread.
 */
export function correctPlate(placed: PlacedPlate, colour: Pick<ColourReport, 'applied' | 'gain' | 'bias'>): PlacedPlate {
  return colour.applied ? { warped: applyColour(placed.warped, colour, placed.owned), valid: placed.valid, owned: true } : placed;
}

/** The second half of `matchPlate`: what the plate does not cover filled from the image, as the paper does. */
export function fillUncovered(image: ImageF32, placed: PlacedPlate): { plate: ImageF32; plateValid: Plane } {
  const valid = placed.valid.data;
  let uncovered = valid.length;
  while (uncovered > 0 && valid[uncovered - 1]! >= 0.5) uncovered--;
  if (!uncovered) return { plate: placed.warped, plateValid: placed.valid };
  // Copied before filling unless this placement made it: the placed plate may be the caller's own buffer.
  const plate = placed.owned ? placed.warped : { ...placed.warped, data: placed.warped.data.slice() };
  const d = plate.data, src = image.data;
  for (let p = 0; p < uncovered; p++) {
    if (valid[p]! < 0.5) { d[p * 3] = src[p * 3]!; d[p * 3 + 1] = src[p * 3 + 1]!; d[p * 3 + 2] = src[p * 3 + 2]!; }
  }
  return { plate, plateValid: placed.valid };
}

/**
 * The plate check of DESIGN's contract: assess the plate as the engine will see it, refuse it only
 * when it certainly shows another scene, and otherwise hand back warnings and a confidence.
 */
export function checkPlate(image: ImageF32, plate: ImageF32, plateValid: Plane, subject: Plane | undefined, alignment: AlignmentReport, shrinks?: Shrinks): PlateAssessment {
  return judgePlate(assessOnGrid(plateCheckGrid(image, plate, plateValid, subject, alignment, shrinks)));
}

/** The plate check's first half: its inputs at its own size (plate-check.ts checkGrid), through the colour fit's grid where `shrinks` hold it. */
function plateCheckGrid(image: ImageF32, plate: ImageF32, plateValid: Plane, subject: Plane | undefined, alignment: AlignmentReport, shrinks?: Shrinks): CheckGrid {
  const featureSupport = alignment.requested === 'none' || alignment.method !== 'identity';
  // Through the colour fit's grid (the engine's too): image, subject and coverage are shrunk there already.
  const { w, h } = colourGrid(image);
  return checkGrid({ image, plate, plateValid, subject, featureSupport, ...(shrinks ? { via: { shrinks, width: w, height: h } } : {}) });
}

/** The check's verdict: the assessment, or the one-line error of a plate that shows another scene. */
function judgePlate(assessment: PlateAssessment): PlateAssessment {
  if (assessment.refuse) throw new CleanplateError(assessment.refuse, 'plate');
  return assessment;
}

/** The report's plate entry from the check (or its absence). */
export function plateReport(a: PlateAssessment | undefined): MatteReport['plate'] {
  if (!a) return { given: false, warnings: [] };
  const { confidence, warnings, refuse: _refuse, ...check } = a;
  return { given: true, confidence, warnings, check };
}


/** What `mattePhoto` works with: models loaded once, options resolved. */
export interface PhotoSetup {
  engine: MatteEngine;
  prior: Prior;
  options: { prior: PriorName; engine: EngineName; align: AlignMode };
  /** Another thread's help with this photo (the prior thread, idle once the prior is done), where it helps now: `PhotoHelpers`. */
  helpers?: () => PhotoHelpers | undefined;
}

/** Work another thread does for a photo while this one does the rest; each gives undefined where it cannot (this thread then does it). */
export interface PhotoHelpers {
  /** Part of the engine's band re-aligned there: MatteInput.helper. */
  band: BandHelper;
  /** Part of the plate's corners tracked there (homography.ts trackBeforeSubjectHelped), where the thread has OpenCV. */
  flow?: FlowHelper;
  /** The plate check judged there (plate-check.ts assessOnGrid) while the engine runs here, where the thread has OpenCV. */
  assess?: (grid: CheckGrid) => Promise<PlateAssessment | undefined> | undefined;
}

/** A decoded photo, its plate as captured (not aligned), and what to composite onto. */
export interface PhotoInput {
  image: ImageF32;
  plate?: ImageF32;
  background?: ImageF32;
  colour?: [number, number, number];
}

/**
 * Mattes one decoded photo. `timings` gets each stage's milliseconds added (prior, align, matte,
 * composite), counted from `since` (performance.now() when the caller's own stages ended).
 */
export async function mattePhoto(setup: PhotoSetup, input: PhotoInput, timings: Record<string, number> = {}, since = performance.now()): Promise<MatteResult> {
  const { engine, prior, options } = setup;
  const { image, plate: plateRaw, background, colour } = input;
  let t = since;
  const lap = (stage: string) => { const now = performance.now(); timings[stage] = +((timings[stage] ?? 0) + now - t).toFixed(1); t = now; };
  if (!plateRaw && options.prior === 'none') throw new CleanplateError('nothing to matte from: give a plate, or a prior (rvm or selfie) to matte without one');

  // The prior is asked for first: on a prior thread it is computed while this thread tracks the
  // plate's corners, which needs no subject (those on the subject are left out once it is known).
  // The image, its prior, the plate and its coverage at 512 px: each shrunk once for the prior, the
  // colour fit, the plate check and the engine (at 1080p ~18 ms each time for a colour image).
  const shrinks = new Shrinks();
  const pending = prior.estimate(image, { shrinks });
  pending.catch(() => {}); // awaited below; a failure of the tracking first must not leave it unhandled
  const helpers = plateRaw ? setup.helpers?.() : undefined;
  const tracks = plateRaw && options.align !== 'none' && options.prior !== 'none';
  const subjectFree = !tracks ? undefined : helpers?.flow ? await trackBeforeSubjectHelped(image, plateRaw, helpers.flow) : trackBeforeSubject(image, plateRaw);
  lap('align');
  const priorAlpha = await pending;
  lap('prior');

  let plate: ImageF32 | undefined, plateValid: Plane | undefined, alignment: AlignmentReport | undefined, colourReport: ColourReport | undefined;
  let assessment: PlateAssessment | undefined;
  let judging: { grid: CheckGrid; remote: Promise<PlateAssessment | undefined> } | undefined;
  if (plateRaw) {
    const subject = options.prior !== 'none' ? priorAlpha : undefined;
    const aligned = alignPlate(image, plateRaw, subject, options.align, subjectFree);
    alignment = aligned.alignment;
    ({ plate, plateValid, colour: colourReport } = matchPlate(image, aligned.placed, subject, undefined, { shrinks }));
    // The check's judgement on the prior thread while the engine runs here, where it can; else
    // here and now (a plate of another scene is then refused before the engine runs).
    const grid = plateCheckGrid(image, plate, plateValid, subject, alignment, shrinks);
    const remote = helpers?.assess?.(grid);
    if (remote) judging = { grid, remote: remote.catch(() => undefined) };
    else assessment = judgePlate(assessOnGrid(grid));
    lap('align');
  }

  const out = await engine.matte({ image, plate, plateValid, prior: priorAlpha, shrinks, ...(helpers ? { helper: helpers.band } : {}) });
  lap('matte');
  if (judging) {
    assessment = judgePlate((await judging.remote) ?? assessOnGrid(judging.grid));
    lap('align');
  }

  let comp: ImageF32 | undefined;
  if (background) comp = composite(out.foreground, out.alpha, resizeCover(background, image.width, image.height));
  else if (colour) comp = compositeColour(out.foreground, out.alpha, colour);
  if (comp) lap('composite');

  return {
    alpha: out.alpha,
    foreground: out.foreground,
    composite: comp,
    plateAligned: plate,
    prior: priorAlpha,
    report: {
      options: { ...options },
      engine: engine.name,
      prior: options.prior,
      size: { width: image.width, height: image.height },
      plate: plateReport(assessment),
      ...(alignment ? { alignment } : {}),
      ...(colourReport ? { colour: colourReport } : {}),
      engineDetails: out.details,
      timings,
    },
  };
}
