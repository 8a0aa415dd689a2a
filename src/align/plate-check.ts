/**
 * Does the plate show this image's background? The check decides only what it can know.
 *
 * A plate is refused only when three things hold at once: no feature supported an alignment, the
 * image's visible background is large enough to judge, and on it the plate explains almost nothing
 * (neither pixel by pixel, even allowing a few pixels of shift, nor in its colour statistics). A
 * close-up whose subject fills the frame, a smooth defocused background without features, a plate
 * re-shot by hand: all go on with the best alignment there is, with warnings and a confidence.
 *
 * Everything here runs at a working resolution of at most 256 px on the long side: the question is
 * about regions, not pixels, and a 3x3 search there tolerates a few pixels of misalignment at full
 * resolution.
 */
import { createPlane, sameSize, type ImageF32, type Plane } from '../image.js';
import { binarize, components, dilateDisc, erodeDisc, resize, type Shrinks } from '../ops.js';

export interface PlateAssessment {
  /** Share (0..1) of the visible background that the plate explains. */
  confidence: number;
  /** Share of the frame judged to be visible background (outside the subject's zone). */
  visible: number;
  /** Share of the frame where the plate agrees with the image in coherent regions. */
  agreement: number;
  /** Histogram intersection (0..1) of the image's and the plate's colours over the visible background. */
  colourOverlap: number;
  /** Share of the subject's sure interior where the plate shows the same thing as the image. */
  subjectInPlate: number;
  warnings: string[];
  /** Set when the plate certainly shows another scene: the reason, for a one-line error. */
  refuse?: string;
}

const WORK_LONG_SIDE = 256;
/** Mean absolute difference (0..1) under which plate and image agree at a pixel. */
const AGREE = 0.05;
/** Below this share of the frame, agreeing regions are coincidence (two white walls), not support. */
const MIN_AGREEMENT = 0.02;
/** The visible background must cover this share of the frame before it can refute a plate. */
const MIN_VISIBLE = 0.3;
/** Colour histograms overlapping less than this are of different scenes. */
const MAX_FOREIGN_OVERLAP = 0.55;
/** Confidence under which a warning says the plate explains little. */
const LOW_CONFIDENCE = 0.5;

/** Per pixel of the working images: the smallest mean |I − B| over B's 3x3 neighbourhood. */
function tolerantDifference(image: ImageF32, plate: ImageF32): Plane {
  const { width: w, height: h } = image;
  const out = createPlane(w, h, Infinity);
  const a = image.data, b = plate.data;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const p = y * w + x;
    let best = Infinity;
    for (let dy = -1; dy <= 1; dy++) {
      const yy = y + dy;
      if (yy < 0 || yy >= h) continue;
      for (let dx = -1; dx <= 1; dx++) {
        const xx = x + dx;
        if (xx < 0 || xx >= w) continue;
        const q = yy * w + xx;
        const s = Math.abs(a[p * 3]! - b[q * 3]!) + Math.abs(a[p * 3 + 1]! - b[q * 3 + 1]!) + Math.abs(a[p * 3 + 2]! - b[q * 3 + 2]!);
        if (s < best) best = s;
      }
    }
    out.data[p] = best / 3;
  }
  return out;
}

/** Normalised 4x4x4 colour histograms of two images over a mask, and their intersection. */
function histogramOverlap(image: ImageF32, plate: ImageF32, mask: Plane): number {
  const hi = new Float64Array(64), hp = new Float64Array(64);
  const bin = (d: Float32Array, p: number) => {
    const q = (v: number) => Math.min(3, Math.max(0, Math.floor(v * 4)));
    return q(d[p * 3]!) * 16 + q(d[p * 3 + 1]!) * 4 + q(d[p * 3 + 2]!);
  };
  let n = 0;
  for (let p = 0; p < mask.data.length; p++) {
    if (mask.data[p]! <= 0.5) continue;
    hi[bin(image.data, p)]++; hp[bin(plate.data, p)]++; n++;
  }
  if (!n) return 1;
  let s = 0;
  for (let k = 0; k < 64; k++) s += Math.min(hi[k]!, hp[k]!);
  return s / n;
}

export interface AssessInput {
  image: ImageF32;
  /** The plate as the engine will see it: aligned, colour-matched, holes filled from the image. */
  plate: ImageF32;
  /** Where the aligned plate really covers the image. */
  plateValid: Plane;
  /** The soft subject prior, when there is one. */
  subject?: Plane;
  /** Whether features (ORB matches or tracked corners) supported the alignment. */
  featureSupport: boolean;
  /**
   * A grid between the image's and the check's (a photo's 512 px grid, where its colour fit and
   * engine see the image): the images are shrunk to it through `shrinks` first (shared with those
   * stages, so made once), then to the check's own size, a quarter of the work of shrinking them
   * from full resolution. The regions the check judges come out the same up to float rounding.
   */
  via?: { shrinks: Shrinks; width: number; height: number };
}

export function assessPlate(input: AssessInput): PlateAssessment {
  return assessOnGrid(checkGrid(input));
}

/** The check's inputs at its working size: the first half of `assessPlate` (a photo's prior thread does the second). */
export interface CheckGrid {
  image: ImageF32;
  plate: ImageF32;
  /** The coverage, 1 where complete. */
  valid: Plane;
  /** The prior, where it shows a subject at all (judged at full resolution). */
  subject?: Plane;
  featureSupport: boolean;
}

export function checkGrid(input: AssessInput): CheckGrid {
  const { image, plate, plateValid, subject, featureSupport, via } = input;
  const scale = Math.min(1, WORK_LONG_SIDE / Math.max(image.width, image.height));
  const w = Math.max(1, Math.round(image.width * scale)), h = Math.max(1, Math.round(image.height * scale));
  // Through `via` only where it is at least twice the check's size and smaller than the image.
  const between = via && via.width >= 2 * w && via.height >= 2 * h && via.width < image.width && via.height < image.height ? via : undefined;
  const small = <T extends ImageF32>(x: T): T => {
    if (sameSize(x, { width: w, height: h })) return x;
    return resize(between && sameSize(x, image) ? between.shrinks.resize(x, between.width, between.height) : x, w, h);
  };
  const hasSubject = subject !== undefined && subject.data.some((v) => v > 0.5);
  return { image: small(image), plate: small(plate), valid: binarize(small(plateValid), 0.99), ...(hasSubject ? { subject: small(subject!) } : {}), featureSupport };
}

/** The second half of `assessPlate`: the judgement, on the images at the check's size. */
export function assessOnGrid(grid: CheckGrid): PlateAssessment {
  const { image: im, plate: pl, valid, subject: subj, featureSupport } = grid;
  const { width: w, height: h } = im;
  const diag = Math.hypot(w, h);
  // The subject's zone: its prior grown a little (soft edges, hair); the rest is visible background.
  const zone = subj ? dilateDisc(binarize(subj, 0.3), 0.03 * diag) : createPlane(w, h);
  const visibleMask = createPlane(w, h);
  let visible = 0;
  for (let i = 0; i < visibleMask.data.length; i++) {
    if (valid.data[i]! > 0.5 && zone.data[i]! <= 0.5) { visibleMask.data[i] = 1; visible++; }
  }
  const frame = w * h;
  const d = tolerantDifference(im, pl);
  // Coherent agreement: agreeing pixels that survive an opening and form regions of some size.
  // A wrong plate agrees by coincidence in specks; a right one over whole stretches of background.
  const agree = createPlane(w, h);
  for (let i = 0; i < agree.data.length; i++) agree.data[i] = valid.data[i]! > 0.5 && d.data[i]! < AGREE ? 1 : 0;
  const opened = dilateDisc(erodeDisc(agree, 1), 1);
  const { labels, stats } = components(opened);
  const big = new Uint8Array(stats.length + 1);
  for (const s of stats) big[s.label] = s.area >= 0.002 * frame ? 1 : 0;
  let coherent = 0, coherentVisible = 0;
  for (let i = 0; i < labels.length; i++) {
    if (!big[labels[i]!] || agree.data[i]! <= 0.5) continue;
    coherent++;
    if (visibleMask.data[i]! > 0.5) coherentVisible++;
  }
  const agreement = coherent / frame;
  const confidence = visible ? Math.min(1, coherentVisible / visible) : Math.min(1, agreement / 0.05);
  const colourOverlap = histogramOverlap(im, pl, visible ? visibleMask : valid);

  // The plate shows the subject: where the image is surely subject, the plate shows the same.
  let subjectInPlate = 0;
  if (subj) {
    const sure = erodeDisc(binarize(subj, 0.9), 0.02 * diag);
    let n = 0, same = 0;
    for (let i = 0; i < sure.data.length; i++) {
      if (sure.data[i]! <= 0.5 || valid.data[i]! <= 0.5) continue;
      n++;
      if (d.data[i]! < AGREE) same++;
    }
    subjectInPlate = n >= 0.005 * frame ? same / n : 0;
  }

  const warnings: string[] = [];
  const pct = (v: number) => `${(100 * v).toFixed(0)}%`;
  const visibleShare = visible / frame;
  if (!featureSupport) warnings.push('no features matched between plate and image (smooth or out-of-focus background?): the plate is used as it is');
  if (subjectInPlate > 0.6) warnings.push(`the plate seems to show the subject: where the image shows the subject, the plate shows the same thing (${pct(subjectInPlate)} of it); retake the plate with the subject out of frame`);
  if (confidence < LOW_CONFIDENCE) {
    warnings.push(visibleShare < MIN_VISIBLE
      ? `the subject fills most of the frame (${pct(1 - visibleShare)}): the plate is judged on the little background that is visible, where it explains ${pct(confidence)}`
      : `the plate explains only ${pct(confidence)} of the visible background: it may be misaligned, lit differently or show another scene`);
  }
  const foreign = !featureSupport && visibleShare >= MIN_VISIBLE && agreement < MIN_AGREEMENT && colourOverlap < MAX_FOREIGN_OVERLAP;
  const refuse = foreign
    ? `plate does not show this image's background: no features match, it agrees with ${pct(agreement)} of the frame, and its colours overlap ${pct(colourOverlap)} with the ${pct(visibleShare)} of the frame that is visible background`
    : undefined;
  const round = (v: number) => +v.toFixed(3);
  return {
    confidence: round(confidence), visible: round(visibleShare), agreement: round(agreement),
    colourOverlap: round(colourOverlap), subjectInPlate: round(subjectInPlate), warnings, ...(refuse ? { refuse } : {}),
  };
}
