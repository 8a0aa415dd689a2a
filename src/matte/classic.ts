/**
 * The training-free, plate-guided engine.
 *
 * 1. Difference evidence: d = |I − B'| per pixel, with the noise level measured where the prior
 *    says background. Strong differences that form solid regions are the subject; scattered ones
 *    (parallax along trees and roofs, noise) are dropped unless they belong to a region the prior
 *    supports, and prior blobs that the plate does not support at all are dropped too.
 * 2. Subject core C = fill-holes(kept evidence ∪ supported prior): the prior fills the places where
 *    skin meets a background of the same colour.
 * 3. In a band around C's edge, alpha comes from the compositing equation with the known background:
 *    α = (I−B)·(F̂−B)/|F̂−B|², F̂ the subject's colours propagated from nearby opaque pixels; where F̂
 *    and B coincide the equation is ill-posed and the prior's alpha is used instead.
 * 4. A light colour-guided filter removes per-pixel noise; F by the regularised compositing solve.
 *
 * Coarse to fine (as BackgroundMattingV2): steps 1–2 and the subject colours F̂ — every decision about
 * the whole frame — run at a working resolution (long side ≤ WORK_LONG_SIDE). Full resolution is
 * spent only in the uncertain band (region minus sure interior): the compositing-equation alpha,
 * the guided refinement and the foreground solve. Outside the band alpha is 0 or 1 by construction.
 * The difference d itself is measured at full resolution (it is cheap): its noise level sets the
 * thresholds, and it reaches the working resolution by max-pooling for the weak evidence, so a
 * one-pixel strand that an average would dilute still extends the region it belongs to.
 */
import { createImage, createPlane, quantile, smoothstep, type ImageF32, type Plane, type Rect } from '../image.js';
import { createMask, dilateMask, erodeMask, fillMaskHoles, gaussianBlur, maskComponents, maskDistance, maskOf, planeOf, resize, type Mask } from '../ops.js';
import type { BandHelper, CoarseDecision, GridPlate, MatteEngine, MatteInput, MatteOutput } from './engine.js';
import { applyMoves, bandPart, realignEdges, realignPart, type ResidueReport, type ShiftField } from '../align/residue.js';
import { bandColours, estimateForeground, propagateCoarse, solveForegroundBand } from './foreground.js';
import { guidedFilter, guidedFilterFast } from './guided.js';
import { f32, f32Copy } from '../alloc.js';
import { distance2, distanceAt, poolMaxima, sampleStep, type PlateDifference } from './difference.js';
import type { BandRefiner } from './refine.js';

function colourDistance(a: ImageF32, b: ImageF32): Plane {
  const out = createPlane(a.width, a.height);
  for (let p = 0; p < out.data.length; p++) out.data[p] = Math.sqrt(distance2(a.data, b.data, p * 3) / 3);
  return out;
}

function count(plane: Plane, threshold = 0.5): number {
  let n = 0;
  for (let i = 0; i < plane.data.length; i++) if (plane.data[i]! > threshold) n++;
  return n;
}

/**
 * Noise level of d: its median where the prior is confident there is background, but never more
 * than the 30th percentile over the whole plate (the prior can miss a subject that fills the frame).
 * `all` holds d at every `sampleStep`-th pixel (where the plate is valid), `background` those of
 * them where the prior says background.
 */
function noiseLevel(all: Float32Array, background: Float32Array): number {
  const cap = 1.5 * quantile(all, 0.3);
  return background.length ? Math.min(quantile(background, 0.5), cap) : cap;
}

/**
 * The full-resolution difference d = |I − B| in one pass without storing it (at 720p a 3.7 MB plane
 * written and read twice): its samples for the noise level and, with `pool`, its block maxima on the
 * working grid (the working-resolution view of d in which thin strong differences survive). `given`:
 * the same computed beforehand for a plate that covers the image (a video's prior thread does it
 * for a still plate's frames): only the noise level is left, from its samples.
 */
function fullDifference(image: ImageF32, plate: ImageF32, prior: Plane, valid: Plane | undefined, pool?: { width: number; height: number }, given?: PlateDifference): { noise: number; weak?: Plane } {
  if (given) return { noise: givenNoise(given, prior), ...(pool ? { weak: given.weak } : {}) };
  const { width, height } = image;
  const a = image.data, b = plate.data;
  const n = width * height, step = sampleStep(n);
  const all = f32(Math.ceil(n / step)), background = f32(all.length);
  let na = 0, nb = 0;
  for (let p = 0; p < n; p += step) {
    if (valid && valid.data[p]! <= 0.5) continue;
    // d rounded to a float, as colourDistance stores it: the maxima and samples a stored plane would give.
    const v = distanceAt(a, b, p);
    all[na++] = v;
    if (prior.data[p]! < 0.05) background[nb++] = v;
  }
  const noise = noiseLevel(all.subarray(0, na), background.subarray(0, nb));
  if (!pool) return { noise };
  const weak = createPlane(pool.width, pool.height);
  poolMaxima(a, b, width, height, weak);
  return { noise, weak };
}

/** The noise level from a difference computed beforehand (`prior` at the image's size: where it says background). */
function givenNoise(given: PlateDifference, prior: Plane): number {
  const n = prior.width * prior.height, step = given.step;
  const all = f32(Math.ceil(n / step)), background = f32(all.length);
  let na = 0, nb = 0;
  for (let p = 0, k = 0; p < n; p += step, k++) {
    const v = given.samples[k]!;
    if (Number.isNaN(v)) continue; // not covered by the plate (PlateDifference)
    all[na++] = v;
    if (prior.data[p]! < 0.05) background[nb++] = v;
  }
  return noiseLevel(all.subarray(0, na), background.subarray(0, nb));
}

/**
 * Which strong-difference regions are the subject. With a prior: regions touching the zone the
 * prior allows, plus large solid regions anywhere (an object held up, a pet). Without one: the
 * largest region and others of comparable size (the paper keeps the largest component).
 */
function subjectEvidence(strong: Mask, prior: Plane): Mask {
  const { width, height } = strong;
  const diag = Math.hypot(width, height);
  const { labels, stats } = maskComponents(strong);
  const hasPrior = count(prior, 0.5) > 0.002 * width * height;
  const zone = hasPrior ? dilateMask(maskOf(prior, 0.3), 0.03 * diag) : undefined;
  const inZone = new Int32Array(stats.length + 1);
  if (zone) for (let i = 0; i < labels.length; i++) if (zone.data[i]) inZone[labels[i]!]!++;
  const largest = stats.reduce((m, s) => Math.max(m, s.area), 0);
  const keep = new Uint8Array(stats.length + 1);
  for (const s of stats) {
    const fill = s.area / (s.width * s.height);
    const solid = fill > 0.25 && s.area > 0.004 * width * height;
    if (zone) keep[s.label] = inZone[s.label]! > 0.2 * s.area || (solid && s.area > 0.02 * width * height) ? 1 : 0;
    else keep[s.label] = s.area === largest || (solid && s.area > 0.2 * largest) ? 1 : 0;
  }
  const kept = createMask(width, height);
  for (let i = 0; i < labels.length; i++) kept.data[i] = keep[labels[i]!]!;
  return kept;
}

/** Prior regions that the plate supports (enough difference inside them): false blobs are dropped. */
function supportedPrior(prior: Plane, strong: Mask): Mask {
  const { labels, stats } = maskComponents(maskOf(prior, 0.5));
  const hits = new Int32Array(stats.length + 1);
  for (let i = 0; i < labels.length; i++) if (strong.data[i]) hits[labels[i]!]!++;
  const keep = new Uint8Array(stats.length + 1);
  for (const s of stats) keep[s.label] = hits[s.label]! > 0.1 * s.area ? 1 : 0;
  const out = createMask(prior.width, prior.height);
  for (let i = 0; i < labels.length; i++) out.data[i] = keep[labels[i]!]!;
  return out;
}

export interface ClassicOptions {
  /** Radius of the colour-guided refinement (0 disables it). */
  refineRadius?: number;
  /** Long side of the working resolution for whole-frame decisions; 0 decides at full resolution. */
  workLongSide?: number;
  /**
   * A coarse grid's band gets a second pass with F̂ from its own opaque pixels (refitBand; default
   * true). False keeps the working grid's F̂: a few percent faster, less accurate in hair.
   */
  refit?: boolean;
}

/** Chosen by measurement on the dev benchmark and the real captures (README, speed section). */
export const WORK_LONG_SIDE = 512;

/** Below this many band pixels the band is re-aligned here whole: a part's copies and messages would cost more than the half saved. */
const HELPED_BAND_PIXELS = 50_000;
/** The helper's share of the band's pixels (0.4 and 0.6 measured no better on a 1080p photo). */
const HELPED_SHARE = 0.5;
/**
 * Above this size the band is re-aligned here whole: the part's copies (its rows of image, plate
 * and coverage, and the thread's re-aligned rows) cost ~165 MB at 4K, where a photo's peak memory
 * has its budget, for a few percent of its time.
 */
const HELPED_MAX_PIXELS = 2560 * 1440;

/**
 * The band's full-resolution re-alignment in two parts of whole rows: the helper thread re-aligns
 * the lower one (`bandPart`, copied) while this thread does the upper. A pixel's result depends only
 * on the image and plate around it (`realignReach`), so the parts give what the whole band would,
 * bit for bit. Where the helper cannot, its part is done here.
 */
async function realignHelped(image: ImageF32, plate: ImageF32, valid: Plane | undefined, list: Int32Array, box: Rect, hint: ShiftField | undefined, helper: BandHelper): Promise<{ plate: ImageF32; report: ResidueReport }> {
  const w = image.width;
  // Cut at the first pixel of the row after the cut pixel's: the parts share no row.
  let cut = Math.floor(list.length * (1 - HELPED_SHARE));
  const cutRow = Math.floor(list[cut]! / w);
  while (cut < list.length && Math.floor(list[cut]! / w) === cutRow) cut++;
  const upper = list.subarray(0, cut), lower = list.subarray(cut);
  const rowsBox = (l: Int32Array): Rect => [box[0], Math.floor(l[0]! / w), box[2], Math.floor(l[l.length - 1]! / w) + 1];
  if (!lower.length) return realignEdges(image, plate, { ...(valid ? { valid } : {}), pixels: { list, box }, ...(hint ? { hint } : {}), shifts: false });
  const part = bandPart(image, plate, valid, lower, rowsBox(lower), hint);
  const theirs = helper.realign(part).catch(() => undefined);
  const mine = realignEdges(image, plate, { ...(valid ? { valid } : {}), pixels: { list: upper, box: rowsBox(upper) }, ...(hint ? { hint } : {}), shifts: false });
  // Where the thread failed at it, the part's copies may have gone there (transferred): made again.
  const moves = (await theirs) ?? realignPart(part.image.data.byteLength ? part : bandPart(image, plate, valid, lower, rowsBox(lower), hint));
  let out = mine.plate;
  if (moves.at.length) {
    if (out === plate) out = { ...plate, data: f32Copy(plate.data) };
    applyMoves(out, moves);
  }
  return { plate: out, report: { edgePixels: mine.report.edgePixels + moves.report.edgePixels, realigned: mine.report.realigned + moves.report.realigned } };
}

/** The working grid for an image of this size: long side ≤ `long` (0: the image's own grid). */
function workingGrid(width: number, height: number, long: number): { scale: number; w: number; h: number } {
  const scale = long > 0 ? Math.min(1, long / Math.max(width, height)) : 1;
  return { scale, w: Math.max(1, Math.round(width * scale)), h: Math.max(1, Math.round(height * scale)) };
}

/** What the working resolution decides for the whole frame (engine.ts). */
type Decision = Omit<CoarseDecision, 'noise' | 'opaque' | 'clear'>;

/** The trust of the last `equationAlpha` call (a second return value without a tuple per pixel). */
let lastTrust = 0;

/**
 * Compositing-equation alpha at one pixel with the known background, blended towards the fallback
 * where F̂ and B are too alike for the equation to decide. Returns alpha; its trust is `lastTrust`.
 */
function equationAlpha(image: Float32Array, plate: Float32Array, fHat: Float32Array, p: number, q: number, noise: number, fallback: number): number {
  let num = 0, den = 0;
  for (let c = 0; c < 3; c++) {
    const fb = fHat[q * 3 + c]! - plate[p * 3 + c]!;
    num += (image[p * 3 + c]! - plate[p * 3 + c]!) * fb;
    den += fb * fb;
  }
  const sep = Math.sqrt(den / 3);
  const floor = Math.min(0.45, (1.5 * noise) / Math.max(sep, 1e-3));
  const eq = den > 1e-6 ? num / den : 0;
  const a = Math.min(1, Math.max(0, (eq - floor) / Math.max(0.05, 1 - 2 * floor)));
  const trust = smoothstep(0.04, 0.16, sep);
  lastTrust = trust;
  return trust * a + (1 - trust) * fallback;
}

/**
 * The whole-frame decisions on (possibly downscaled) images: d is the difference at this scale and
 * `weak` the difference that decides the region's reach (d itself, or a max-pooled full-resolution d).
 * F̂ comes from the pixels a first pass finds opaque (the sure interior and thick strong evidence
 * seed it), re-estimated once.
 */
function decide(image: ImageF32, plate: ImageF32, prior: Plane, d: Plane, weak: Plane, noise: number, lo: number, hi: number): Decision {
  const { width, height } = image;
  const diag = Math.hypot(width, height);
  // Strong evidence, opened to drop specks and one-pixel parallax lines. The decisions are binary
  // masks (ops.ts: Mask), a byte a pixel, from here to the region and the sure interior.
  const n = width * height;
  const strongRaw = maskOf(d, hi);
  const strong = dilateMask(erodeMask(strongRaw, 1), 1);
  const kept = subjectEvidence(strong, prior);
  const priorCore = supportedPrior(prior, strong);
  const evidenceCore = fillMaskHoles(erodeMask(dilateMask(kept, 2), 2));
  const core = createMask(width, height);
  for (let i = 0; i < n; i++) core.data[i] = evidenceCore.data[i]! | priorCore.data[i]!;

  // Where alpha may be non-zero: the core grown by a ring, extended along weak evidence touching it.
  const ringOut = Math.max(3, 0.03 * diag), ringIn = Math.max(2, 0.006 * diag);
  // Weak evidence joins only through a connected path to the core (strands reach out from the
  // subject; parallax clutter floats apart), and never further than a tenth of the diagonal.
  const fromCore = maskDistance(core);
  const far = 0.1 * diag;
  const reach = createMask(width, height);
  for (let i = 0; i < n; i++) reach.data[i] = fromCore[i]! <= ringOut || (weak.data[i]! > lo && fromCore[i]! <= far) ? 1 : 0;
  const { labels: reachLabels, stats: reachStats } = maskComponents(reach);
  const touches = new Uint8Array(reachStats.length + 1);
  for (let i = 0; i < n; i++) if (core.data[i]) touches[reachLabels[i]!] = 1;
  const region = createMask(width, height);
  for (let i = 0; i < n; i++) region.data[i] = touches[reachLabels[i]!]!;
  // Opaque for sure: only the interior of a prior silhouette that the plate supports. Evidence
  // alone never forces alpha to 1: a semi-transparent strand differs from the plate as much as skin.
  const confident = createMask(width, height);
  for (let i = 0; i < n; i++) confident.data[i] = priorCore.data[i]! && prior.data[i]! > 0.95 ? 1 : 0;
  const sure = erodeMask(confident, ringIn);
  // Where the compositing equation is ill-posed, fall back on the prior or on the evidence's silhouette.
  const silhouette = gaussianBlur(planeOf(evidenceCore), 2 * Math.round(ringIn) + 1);
  const fallback = createPlane(width, height);
  for (let i = 0; i < n; i++) fallback.data[i] = Math.max(prior.data[i]!, silhouette.data[i]!);

  // Subject colours F̂: first from the sure interior and thick strong evidence inside the core, then
  // re-estimated from the pixels the first pass found opaque.
  let opaque = createPlane(width, height);
  // Strong difference alone does not mean opaque (a half-transparent strand over a contrasting
  // background differs strongly too): take thick strong regions away from the core's edge.
  const thick = erodeMask(strongRaw, 2);
  const interior = erodeMask(core, 2 * ringIn);
  for (let i = 0; i < n; i++) opaque.data[i] = sure.data[i]! | (thick.data[i]! & interior.data[i]!);
  const first = propagateCoarse(image, opaque);
  opaque = createPlane(width, height);
  for (let p = 0; p < n; p++) {
    if (sure.data[p]) opaque.data[p] = 1;
    else if (region.data[p]) opaque.data[p] = equationAlpha(image.data, plate.data, first.data, p, p, noise, fallback.data[p]!) > 0.9 ? 1 : 0;
  }
  const fHat = propagateCoarse(image, opaque);
  return { region, sure, fallback, fHat };
}

/** The difference thresholds for a noise level: weak evidence above `lo`, strong above `hi`. */
function thresholds(noise: number): { lo: number; hi: number } {
  const lo = Math.min(0.12, Math.max(0.025, 2 * noise));
  return { lo, hi: lo + 0.04 };
}

/** Working-grid alpha at or beyond these is settled: full resolution would not change it visibly. */
const SETTLED_OPAQUE = 0.98;
const SETTLED_CLEAR = 0.02;

/**
 * Everything `matte` decides on the working grid for a frame with a still plate that covers it (no
 * re-alignment), made beforehand: a video's prior thread calls this for the frames it has the plate
 * for (MatteInput.coarse), with what the engine would compute itself: the frame shrunk to the
 * working grid (MatteInput.working), the plate shrunk the same way, the prior at the frame's size,
 * and the frame's difference from the plate (MatteInput.difference). The same functions on the same
 * numbers: the engine's own result, bit for bit (test/pipeline.test.ts).
 */
export function decideStill(working: ImageF32, plateSmall: ImageF32, prior: Plane, difference: PlateDifference): CoarseDecision {
  const noise = givenNoise(difference, prior);
  const { decision, settled } = decideOnGrid(working, plateSmall, resize(prior, working.width, working.height), difference.weak, noise, true);
  return { noise, ...decision, ...settled! };
}

/**
 * The plate shrunk to the working grid of `working` (the image on that grid) and its edges
 * re-aligned to it there, as `matte` does for a plate that may move: a video's prior thread does
 * it for a moving camera's frames (MatteInput.gridPlate), with what the engine would use (the same
 * resize, the same search): the engine's own result, bit for bit (test/classic.test.ts).
 */
export function realignOnGrid(working: ImageF32, plate: ImageF32, plateValid: Plane | undefined): GridPlate {
  const { width: w, height: h } = working;
  return realignEdges(working, resize(plate, w, h), { valid: plateValid && resize(plateValid, w, h) });
}

/**
 * The decisions on a grid (the working grid, or a small image's own): `weak` the difference that
 * decides the region's reach (the full-resolution maxima pooled on it; default d on this grid),
 * with `settle` the cells settled there too (a coarse grid's).
 */
function decideOnGrid(image: ImageF32, plate: ImageF32, prior: Plane, weak: Plane | undefined, noise: number, settle: boolean): { decision: Decision; settled?: { opaque: Mask; clear: Mask } } {
  const { lo, hi } = thresholds(noise);
  const d = colourDistance(image, plate);
  const reach = weak ?? d;
  const decision = decide(image, plate, prior, d, reach, noise, lo, hi);
  return { decision, ...(settle ? { settled: settledCells(image, plate, decision, reach, noise, lo) } : {}) };
}

/**
 * The cells of the region that the working grid already settles (BackgroundMattingV2's idea: refine
 * only where the coarse pass is uncertain). A cell is opaque when its compositing-equation alpha at
 * the working resolution is ≥ SETTLED_OPAQUE, clear when it is ≤ SETTLED_CLEAR and no full-resolution
 * pixel in it differs from the plate beyond the noise threshold (`weak` is max-pooled, so a
 * one-pixel strand keeps its cell unsettled). A cell counts only when its 3x3 neighbourhood is
 * settled the same way: a hole or a strand smaller than a cell lowers the cell's average alpha or
 * raises its pooled difference, and the band then reaches one cell past it.
 */
function settledCells(image: ImageF32, plate: ImageF32, decision: Decision, weak: Plane, noise: number, lo: number): { opaque: Mask; clear: Mask } {
  const { width, height } = image;
  const opaque = createMask(width, height), clear = createMask(width, height);
  const { region, sure, fallback, fHat } = decision;
  for (let p = 0; p < region.data.length; p++) {
    if (!region.data[p]) { clear.data[p] = 1; continue; }
    if (sure.data[p]) { opaque.data[p] = 1; continue; }
    const a = equationAlpha(image.data, plate.data, fHat.data, p, p, noise, fallback.data[p]!);
    if (a >= SETTLED_OPAQUE) opaque.data[p] = 1;
    else if (a <= SETTLED_CLEAR && weak.data[p]! <= lo) clear.data[p] = 1;
  }
  return { opaque: erodeMask(opaque, 1), clear: erodeMask(clear, 1) };
}

/** The band's pixels (raster order) and bounding box, and the sure interior's box; [x0, y0, x1, y1), x1 = 0 when empty. */
interface Spread { list: Int32Array; box: [number, number, number, number]; sureBox: [number, number, number, number] }

/**
 * The working grid's verdicts spread to full resolution: alpha set to 1 over the sure cells'
 * pixels, the band's pixels listed in raster order (and set in `band` when given). Each cell's
 * verdict once (1 sure, 2 band), then every full-resolution row as spans of pixels sharing a
 * verdict: fills instead of a lookup per pixel. A function of its own (see bandAlpha).
 */
function spreadVerdicts(sure: Mask, region: Mask, clear: Mask | undefined, width: number, height: number, scale: number, alpha: Plane, band?: Plane): Spread {
  const { width: w, height: h } = sure;
  let bandList = new Int32Array(1 << 16);
  let bandPixels = 0;
  let bx0 = width, by0 = height, bx1 = 0, by1 = 0;
  let sx0 = width, sy0 = height, sx1 = 0, sy1 = 0;
  const verdict = new Uint8Array(w * h);
  for (let cell = 0; cell < verdict.length; cell++) verdict[cell] = sure.data[cell] ? 1 : region.data[cell] && !(clear && clear.data[cell]) ? 2 : 0;
  const runStart = new Int32Array(w + 1);
  for (let cx = 0, x = 0; cx <= w; cx++) { while (x < width && Math.min(w - 1, Math.floor(x * scale)) < cx) x++; runStart[cx] = cx === w ? width : x; }
  // A working row's neighbouring cells of one verdict make one span of full-resolution columns,
  // found once for the two or three full-resolution rows that share the working row.
  const spans = new Int32Array(3 * w);
  let spanRow = -1, nSpans = 0;
  for (let y = 0; y < height; y++) {
    const cy = Math.min(h - 1, Math.floor(y * scale)), base = y * width;
    if (cy !== spanRow) {
      spanRow = cy; nSpans = 0;
      const row = cy * w;
      for (let cx = 0; cx < w;) {
        const v = verdict[row + cx]!;
        let end = cx + 1;
        while (end < w && verdict[row + end] === v) end++;
        if (v !== 0 && runStart[cx]! < runStart[end]!) { spans[nSpans * 3] = runStart[cx]!; spans[nSpans * 3 + 1] = runStart[end]!; spans[nSpans * 3 + 2] = v; nSpans++; }
        cx = end;
      }
    }
    for (let s = 0; s < nSpans; s++) {
      const x0 = spans[s * 3]!, x1 = spans[s * 3 + 1]!;
      if (spans[s * 3 + 2] === 1) {
        alpha.data.fill(1, base + x0, base + x1);
        if (x0 < sx0) sx0 = x0;
        if (x1 > sx1) sx1 = x1;
        if (y < sy0) sy0 = y;
        sy1 = y + 1;
        continue;
      }
      band?.data.fill(1, base + x0, base + x1);
      if (x0 < bx0) bx0 = x0;
      if (x1 > bx1) bx1 = x1;
      if (y < by0) by0 = y;
      by1 = y + 1;
      if (bandPixels + x1 - x0 > bandList.length) { const grown = new Int32Array(Math.max(bandList.length * 2, bandPixels + x1 - x0)); grown.set(bandList); bandList = grown; }
      for (let x = x0; x < x1; x++) bandList[bandPixels++] = base + x;
    }
  }
  return { list: bandList.subarray(0, bandPixels), box: [bx0, by0, bx1, by1], sureBox: [sx0, sy0, sx1, sy1] };
}

/**
 * Alpha at each band pixel (`list`) from the compositing equation, F̂ and the fallback sampled
 * bilinearly from the working grid (they are smooth); also F̂ and the fallback at each band pixel
 * (three floats and one a pixel, in the list's order), and how many pixels the equation could not
 * decide. A function of its own: as a loop inside the long async `matte`, V8 compiled it worse.
 */
function bandAlpha(image: ImageF32, plate: ImageF32, decision: Decision, scale: number, list: Int32Array, noise: number, alpha: Plane, fallbackFull?: Plane): { fHatBand: Float32Array; fallbackBand: Float32Array; ambiguous: number } {
  const { width } = image, { width: w, height: h } = decision.fHat;
  const fx = new Float32Array(width), fx0 = new Int32Array(width);
  for (let x = 0; x < width; x++) { const u = Math.min(w - 1, Math.max(0, (x + 0.5) * scale - 0.5)); fx0[x] = Math.floor(u); fx[x] = u - Math.floor(u); }
  const fHatS = decision.fHat.data, fallbackS = decision.fallback.data;
  const fHatBand = f32(list.length * 3), fallbackBand = f32(list.length);
  const fHatPixel = new Float32Array(3);
  let ambiguous = 0;
  for (let i = 0; i < list.length; i++) {
    const p = list[i]!, y = Math.floor(p / width), x = p - y * width;
    const v = Math.min(h - 1, Math.max(0, (y + 0.5) * scale - 0.5)), y0 = Math.floor(v), y1 = Math.min(h - 1, y0 + 1), fy = v - y0;
    const x0 = fx0[x]!, x1 = Math.min(w - 1, x0 + 1), gx = fx[x]!;
    const k00 = y0 * w + x0, k01 = y0 * w + x1, k10 = y1 * w + x0, k11 = y1 * w + x1;
    const b00 = (1 - fy) * (1 - gx), b01 = (1 - fy) * gx, b10 = fy * (1 - gx), b11 = fy * gx;
    for (let c = 0; c < 3; c++) {
      const f = b00 * fHatS[k00 * 3 + c]! + b01 * fHatS[k01 * 3 + c]! + b10 * fHatS[k10 * 3 + c]! + b11 * fHatS[k11 * 3 + c]!;
      fHatPixel[c] = f; fHatBand[i * 3 + c] = f;
    }
    const fallback = b00 * fallbackS[k00]! + b01 * fallbackS[k01]! + b10 * fallbackS[k10]! + b11 * fallbackS[k11]!;
    fallbackBand[i] = fallback;
    if (fallbackFull) fallbackFull.data[p] = fallback;
    alpha.data[p] = equationAlpha(image.data, plate.data, fHatPixel, p, 0, noise, fallback);
    if (lastTrust < 0.5) ambiguous++;
  }
  return { fHatBand, fallbackBand, ambiguous };
}

/**
 * The first-pass alpha (`bandAlpha`'s, at full resolution) a pixel must reach to seed the band's
 * second pass. Chosen by measurement over 0.5-0.95 (on 2x2 blocks): 0.7 lowered
 * every error of the dev benchmark and of the real-alpha video clips against the one-pass band
 * (0.8 did a little better on SAD, worse on the furry GT08 clip; 0.5 let the background's colour
 * into F̂).
 */
const REFIT_OPAQUE = 0.7;

/**
 * The band's second pass: alpha again from the compositing equation, with F̂ re-estimated from the
 * first pass's own full-resolution opaque pixels (foreground.ts bandColours, on 4x4 blocks of the
 * band's box) instead of the working grid's F̂, which averages a strand with its neighbours; as
 * `decide` re-estimates F̂ once on its grid. Writes alpha and returns the new F̂ (three floats a
 * band pixel) and the count of pixels the equation could not decide, or undefined where the band
 * had no pixel that opaque.
 */
function refitBand(image: ImageF32, plate: ImageF32, list: Int32Array, box: Rect, fallbackBand: Float32Array, noise: number, alpha: Plane): { fHatBand: Float32Array; ambiguous: number } | undefined {
  const fHatBand = bandColours(image, alpha, list, box, REFIT_OPAQUE);
  if (!fHatBand) return undefined;
  let ambiguous = 0;
  for (let i = 0; i < list.length; i++) {
    const p = list[i]!;
    alpha.data[p] = equationAlpha(image.data, plate.data, fHatBand, p, i, noise, fallbackBand[i]!);
    if (lastTrust < 0.5) ambiguous++;
  }
  return { fHatBand, ambiguous };
}

export class ClassicEngine implements MatteEngine {
  readonly name: 'classic' | 'refined';
  /**
   * With a `refiner` this is the `refined` engine: the same decisions and band, then the learned
   * refiner (refine.ts) re-estimates alpha inside the band before the foreground solve.
   */
  constructor(private readonly options: ClassicOptions = {}, private readonly refiner?: BandRefiner) {
    this.name = refiner ? 'refined' : 'classic';
  }

  readonly decidesStill = true;

  private readonly shrinkCache = new WeakMap<ImageF32, { print: number; small: ImageF32 }>();

  /** The working grid of an image this size, where it is coarser than the image (MatteInput.difference's grid). */
  differenceGrid(width: number, height: number): { width: number; height: number } | undefined {
    const { w, h } = workingGrid(width, height, this.options.workLongSide ?? WORK_LONG_SIDE);
    return w !== width || h !== height ? { width: w, height: h } : undefined;
  }

  /**
   * `image` at the working size, remembered per image object (a tripod video's plate is one object
   * for every frame); a fingerprint of strided samples notices a plate refitted in place (the live
   * app's colour refits). Kept in its own memory, outside any scratch arena the caller runs in.
   */
  private shrunk<T extends ImageF32>(image: T, w: number, h: number): T {
    if (image.width === w && image.height === h) return image;
    let print = 0;
    const stride = Math.max(1, Math.floor(image.data.length / 997));
    for (let i = 0; i < image.data.length; i += stride) print = print * 1.000001 + image.data[i]!;
    const cached = this.shrinkCache.get(image);
    if (cached && cached.print === print && cached.small.width === w && cached.small.height === h) return cached.small as T;
    const small = resize(image, w, h);
    const kept = { ...small, data: small.data.slice() } as T;
    this.shrinkCache.set(image, { print, small: kept });
    return kept;
  }

  async matte(input: MatteInput): Promise<MatteOutput> {
    const { image, plate, prior } = input;
    if (!plate) {
      const alpha = prior;
      return { alpha, foreground: estimateForeground(image, alpha), details: { source: 'prior' } };
    }
    const { width, height } = image;
    const times: Record<string, number> = {};
    let t0 = performance.now();
    const lap = (k: string) => { const now = performance.now(); times[k] = +(now - t0).toFixed(1); t0 = now; };
    const { scale, w, h } = workingGrid(width, height, this.options.workLongSide ?? WORK_LONG_SIDE);
    const coarse = w !== width || h !== height;
    // Weak evidence on a coarse grid: the full-resolution difference max-pooled, so that a strand a
    // cell dilutes still counts.
    const given = coarse ? input.difference : undefined;
    if (given && (given.step !== sampleStep(width * height) || given.samples.length !== Math.ceil((width * height) / given.step) || given.weak.width !== w || given.weak.height !== h)) {
      throw new Error(`the difference given was computed for another size (${given.weak.width}x${given.weak.height} grid, step ${given.step}) than ${width}x${height} on a ${w}x${h} grid`);
    }
    const realign = input.realign ?? true;
    // The working grid's decisions made beforehand (a video's prior thread, for a still plate).
    const pre = coarse && !realign ? input.coarse : undefined;
    if (pre && (pre.region.width !== w || pre.region.height !== h)) {
      throw new Error(`the coarse decisions given are for a ${pre.region.width}x${pre.region.height} grid, not the ${w}x${h} grid of a ${width}x${height} image`);
    }
    // The plate re-aligned on the working grid beforehand (a video's prior thread, for a moving camera).
    const gridPlate = coarse && realign ? input.gridPlate : undefined;
    if (gridPlate && (gridPlate.plate.width !== w || gridPlate.plate.height !== h)) {
      throw new Error(`the grid plate given is ${gridPlate.plate.width}x${gridPlate.plate.height}, not the ${w}x${h} grid of a ${width}x${height} image`);
    }
    const noResidue = (p: ImageF32) => ({ plate: p, report: { edgePixels: 0, realigned: 0 }, shifts: undefined as ShiftField | undefined });
    let noise: number, decision: Decision, settled: { opaque: Mask; clear: Mask } | undefined;
    let plateS: ImageF32 | undefined, residueS = noResidue(plate).report, shifts: ShiftField | undefined;
    if (pre) {
      ({ noise } = pre);
      decision = pre;
      settled = { opaque: pre.opaque, clear: pre.clear };
      lap('decide');
    } else {
      const full = fullDifference(image, plate, prior, input.plateValid, coarse ? { width: w, height: h } : undefined, given);
      noise = full.noise;
      const shrinks = input.shrinks;
      const small = <T extends ImageF32>(x: T): T => (!coarse ? x : shrinks ? shrinks.resize(x, w, h) : resize(x, w, h));
      // Alignment residue along the plate's edges is not subject (align/residue.ts): re-aligned here
      // on the working grid for the decisions, and at full resolution inside the band below.
      const working = coarse ? input.working : undefined;
      if (working && (working.width !== w || working.height !== h || working.channels !== 3)) {
        throw new Error(`the working image given is ${working.width}x${working.height}x${working.channels}, not the ${w}x${h} colour grid of a ${width}x${height} image`);
      }
      const imageS = working ?? small(image), priorS = small(prior);
      // A video's still camera hands over the same plate every frame: shrunk once.
      const onGrid = (): GridPlate => {
        const plateSmall = shrinks ? small(plate) : this.shrunk(plate, w, h), validSmall = input.plateValid && (shrinks ? small(input.plateValid) : this.shrunk(input.plateValid, w, h));
        return realign ? realignEdges(imageS, plateSmall, { valid: validSmall }) : noResidue(plateSmall);
      };
      const realigned = gridPlate ?? onGrid();
      ({ plate: plateS, report: residueS, shifts } = realigned);
      // Cells the working grid settles (opaque or clear around them too) get no full-resolution work.
      ({ decision, settled } = decideOnGrid(imageS, plateS, priorS, full.weak, noise, coarse));
      lap('decide');
    }

    const { lo, hi } = thresholds(noise);

    // Back to full resolution, decided on the working grid: the region grown and the sure interior
    // shrunk by one working pixel, so that the band (where alpha is computed at full resolution)
    // covers every pixel whose working cell or a neighbour is uncertain. A full-resolution pixel
    // then only looks up its cell: no morphology or resizing of whole full-resolution planes.
    const regionS = coarse ? dilateMask(decision.region, 1) : decision.region;
    const sureS = settled ? settled.opaque : decision.sure;
    const alpha = createPlane(width, height);
    // The band as a plane only for what reads one: the exact guided filter of a full-resolution
    // grid, the learned refiner. The rest reads the list and its box.
    const band = !coarse || this.refiner ? createPlane(width, height) : undefined;
    const { list: bandList, box: [bx0, by0, bx1, by1], sureBox: [sx0, sy0, sx1, sy1] } = spreadVerdicts(sureS, regionS, settled?.clear, width, height, scale, alpha, band);
    const bandPixels = bandList.length;
    // On a full-resolution grid the working plate is already re-aligned everywhere.
    // With a helper thread, a large band is re-aligned in two parts at once (awaited only then:
    // without a helper or a refiner, all of this runs in one go, as a video's scratch arena needs).
    const helped = coarse && realign && input.helper && bandPixels >= HELPED_BAND_PIXELS && width * height <= HELPED_MAX_PIXELS ? input.helper : undefined;
    const { plate: plateB, report: residue } = !coarse ? { plate: plateS!, report: residueS }
      : helped ? await realignHelped(image, plate, input.plateValid, bandList, [bx0, by0, bx1, by1], shifts, helped)
      : realign ? realignEdges(image, plate, { valid: input.plateValid, pixels: { list: bandList, box: [bx0, by0, bx1, by1] }, hint: shifts, shifts: false }) : noResidue(plate);
    lap('realign');
    const fallbackFull = this.refiner ? createPlane(width, height) : undefined;
    const first = bandAlpha(image, plateB, decision, scale, bandList, noise, alpha, fallbackFull);
    // A coarse grid's band gets a second pass with F̂ from its own opaque pixels (refitBand). Not for
    // the learned refiner: it was trained on the one-pass band's alpha and F̂.
    const second = coarse && !this.refiner && bandPixels && (this.options.refit ?? true) ? refitBand(image, plateB, bandList, [bx0, by0, bx1, by1], first.fallbackBand, noise, alpha) : undefined;
    const { fHatBand, ambiguous } = second ?? first;
    lap('band');
    const refineRadius = this.options.refineRadius ?? 3;
    // Coarse grids get the fast guided filter (coefficients at half resolution); full-resolution
    // decisions (small images) the exact one.
    // The fast one reads its band pixels' inputs before it writes any: it filters alpha in place.
    const pixels = { box: bandPixels ? [bx0, by0, bx1, by1] as [number, number, number, number] : undefined, list: bandList };
    let refined = refineRadius <= 0 ? alpha
      : coarse ? guidedFilterFast(image, alpha, refineRadius, 1e-4, pixels, 2, true) : guidedFilter(image, alpha, refineRadius, 1e-4, band);
    // Keep the refinement from spreading alpha beyond the band (the fast filter writes band pixels
    // only; the exact one all) or into the sure core.
    if (refined !== alpha && !coarse) for (let p = 0; p < refined.data.length; p++) if (band!.data[p]! <= 0.5) refined.data[p] = alpha.data[p]!;
    for (let i = 0; i < bandPixels; i++) { const p = bandList[i]!; if (refined.data[p]! < 0.01) refined.data[p] = 0; }
    lap('refine');
    if (this.refiner && fallbackFull) {
      const fHatFull = createImage(width, height, 3);
      for (let i = 0; i < bandPixels; i++) fHatFull.data.set(fHatBand.subarray(i * 3, i * 3 + 3), bandList[i]! * 3);
      refined = await this.refiner.refine({ image, plate: plateB, alpha: refined, fHat: fHatFull, fallback: fallbackFull, band: band! });
      lap('learned');
    }
    // B and F̂ are known at every band pixel, and alpha is 0 or 1 off the band: the solve needs no
    // propagation, no crop and no whole-frame F̂.
    const foreground = solveForegroundBand(image, refined, plateB, bandList, fHatBand);
    lap('foreground');
    // Alpha is 0 off the band and the sure interior (the learned refiner makes no such promise).
    const support: [number, number, number, number] | undefined = this.refiner || (sx1 === 0 && bx1 === 0) ? undefined
      : [Math.min(sx0, bx0), Math.min(sy0, by0), Math.max(sx1, bx1), Math.max(sy1, by1)];
    return {
      alpha: refined,
      foreground,
      ...(support ? { support } : {}),
      details: {
        noise: +noise.toFixed(4), thresholdLow: +lo.toFixed(4), thresholdHigh: +hi.toFixed(4), workScale: +scale.toFixed(4),
        ...(this.refiner ? { refiner: this.refiner.name } : {}),
        bandPixels, realignedPixels: residue.realigned, bandShare: +(bandPixels / (width * height)).toFixed(4), ambiguousPixels: ambiguous,
        ...Object.fromEntries(Object.entries(times).map(([k, v]) => [`ms_${k}`, v])),
      },
    };
  }
}
