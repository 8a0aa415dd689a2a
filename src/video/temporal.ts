/**
 * Temporal cues for video: smoothing of the plate's homography and the network's crop box over
 * neighbouring frames, the median colour correction, and a stabiliser that keeps α still where
 * the picture is still (so compression noise does not make a static subject flicker).
 */
import type { ColourReport } from '../align/colour.js';
import { cornerDistance, project, type AlignmentReport } from '../align/homography.js';
import { cv, withMats } from '../cv.js';
import { createPlane, supportRect, type ImageF32, type Plane, type Rect } from '../image.js';
import { boxMean } from '../ops.js';
import type { Box } from '../matte/network.js';

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * The median of several plate→image homographies, taken where it means something: on the image
 * positions of the plate's four corners (a per-entry median of matrices is not a homography of
 * anything). One bad estimate in the window cannot pull the plate off.
 */
export function medianHomography(homographies: number[][], plateWidth: number, plateHeight: number): number[] {
  if (homographies.length === 1) return homographies[0]!;
  const corners: [number, number][] = [[0, 0], [plateWidth, 0], [plateWidth, plateHeight], [0, plateHeight]];
  const target = corners.map(([x, y]) => {
    const pts = homographies.map((h) => project(h, x, y));
    return [median(pts.map((p) => p[0])), median(pts.map((p) => p[1]))];
  });
  const c = cv();
  return withMats((track) => {
    const src = track(c.matFromArray(4, 1, c.CV_32FC2, corners.flat()));
    const dst = track(c.matFromArray(4, 1, c.CV_32FC2, target.flat()));
    const m = track(c.getPerspectiveTransform(src, dst));
    return Array.from(m.data64F as Float64Array);
  });
}

/** Neighbouring fits further than this (share of the diagonal) from a frame's own fit are motion, not jitter. */
const SMOOTH_TOLERANCE = 0.006;

/**
 * A moving camera's frame's plate homography from the fits of the frames around it (`window`, in
 * frame order, the frame's own fit `own` among them; undefined where a frame has none): the median
 * of those that found a transform. Smoothing removes jitter, not motion: neighbours whose fit puts
 * the plate elsewhere (a fast pan) are left out; a frame without a fit of its own takes its
 * neighbours'. Undefined when no fit is left. The matting thread and the prior thread (which
 * places the plate ahead of it) both call this, so that the same fits give the same homography.
 */
export function smoothedHomography(window: (AlignmentReport | undefined)[], own: AlignmentReport | undefined, plateWidth: number, plateHeight: number, width: number, height: number): number[] | undefined {
  let fits = window.filter((a) => a && a.method !== 'identity').map((a) => a!.homography);
  const fit = own && own.method !== 'identity' ? own.homography : undefined;
  if (fit) fits = fits.filter((h) => cornerDistance(h, fit, plateWidth, plateHeight) <= SMOOTH_TOLERANCE * Math.hypot(width, height));
  return fits.length ? medianHomography(fits, plateWidth, plateHeight) : undefined;
}

/** The median gain and bias over sampled frames (the paper's video recipe); applied only if most frames applied theirs. */
export function medianColour(reports: ColourReport[]): ColourReport | undefined {
  const used = reports.filter((r) => r.applied);
  if (!reports.length) return undefined;
  if (used.length * 2 <= reports.length) {
    return { applied: false, gain: [1, 1, 1], bias: [0, 0, 0], residualBefore: median(reports.map((r) => r.residualBefore)), residualAfter: median(reports.map((r) => r.residualBefore)), pixels: 0, reason: `the fit helped on only ${used.length} of ${reports.length} sampled frames` };
  }
  const channel = (pick: (r: ColourReport) => number[]) => [0, 1, 2].map((c) => median(used.map((r) => pick(r)[c]!))) as [number, number, number];
  return {
    applied: true, gain: channel((r) => r.gain), bias: channel((r) => r.bias),
    residualBefore: median(used.map((r) => r.residualBefore)), residualAfter: median(used.map((r) => r.residualAfter)),
    pixels: Math.round(median(used.map((r) => r.pixels))),
  };
}

/**
 * The crop box held steady: the median of the boxes around this frame, and the previous box kept
 * as long as it still frames the subject — a box that moves by a pixel every frame is
 * exactly the crop jitter users saw as flicker.
 */
export class BoxSmoother {
  private previous?: Box;

  next(window: Box[], width: number, height: number): Box {
    const x0 = median(window.map((b) => b.x)), y0 = median(window.map((b) => b.y));
    const x1 = median(window.map((b) => b.x + b.width)), y1 = median(window.map((b) => b.y + b.height));
    const box = { x: Math.max(0, Math.floor(x0)), y: Math.max(0, Math.floor(y0)), width: 0, height: 0 };
    box.width = Math.min(width, Math.ceil(x1)) - box.x;
    box.height = Math.min(height, Math.ceil(y1)) - box.y;
    const p = this.previous;
    // The paper's box has a 10% margin around the subject: a box that pokes out of the previous one
    // by a few percent still frames the subject well.
    const slack = p ? 0.03 * Math.max(p.width, p.height) : 0;
    const inside = p && box.x >= p.x - slack && box.y >= p.y - slack && box.x + box.width <= p.x + p.width + slack && box.y + box.height <= p.y + p.height + slack;
    if (p && inside && box.width * box.height > 0.8 * p.width * p.height) return p;
    this.previous = box;
    return box;
  }
}

/** Radius of the box over which the stabiliser measures how much the picture changed. */
const RADIUS = 2;

function unionRect(a: Rect | undefined, b: Rect | undefined): Rect | undefined {
  if (!a || !b) return a ?? b;
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[2], b[2]), Math.max(a[3], b[3])];
}

/** The mean absolute colour change between two frames over [cx0, cx1) × [cy0, cy1), as a plane of that rectangle. */
function colourChange(image: Float32Array, previous: Float32Array, width: number, cx0: number, cy0: number, cx1: number, cy1: number): Plane {
  const cw = cx1 - cx0;
  const change = createPlane(cw, cy1 - cy0), out = change.data;
  for (let y = cy0; y < cy1; y++) {
    for (let x = cx0, q = (y - cy0) * cw, i = (y * width + cx0) * 3; x < cx1; x++, q++, i += 3) {
      out[q] = (Math.abs(image[i]! - previous[i]!) + Math.abs(image[i + 1]! - previous[i + 1]!) + Math.abs(image[i + 2]! - previous[i + 2]!)) / 3;
    }
  }
  return change;
}

/**
 * α and F over `rect` blended towards the previous frame's by how little the image changed around
 * each pixel (`local`: the change box-averaged, on the context rectangle starting at cx0, cy0, cw wide).
 * The stabiliser's loops are functions of their own, on local arrays: as loops inside the method,
 * reading the frames' and the stabiliser's fields, V8 compiled them worse.
 */
function blendRect(a: Float32Array, f: Float32Array, pa: Float32Array, pf: Float32Array, local: Float32Array, width: number, rect: Rect, cx0: number, cy0: number, cw: number, still: number, span: number, keep: number): void {
  const [x0, y0, x1, y1] = rect;
  for (let y = y0; y < y1; y++) {
    for (let x = x0, p = y * width + x0, l = (y - cy0) * cw + x0 - cx0; x < x1; x++, p++, l++) {
      // α is 0 in both frames (and so is F: every engine leaves F 0 where α is, and this blend
      // keeps it so): nothing would change. About half of the rectangle around a subject.
      const ap = a[p]!, bp = pa[p]!;
      if (ap === 0 && bp === 0) continue;
      const t = Math.min(1, Math.max(0, (local[l]! - still) / span));
      const w = keep * (1 - t * t * (3 - 2 * t));
      if (w <= 0) continue;
      a[p] = ap + w * (bp - ap);
      for (let c = 0; c < 3; c++) f[p * 3 + c] = f[p * 3 + c]! + w * (pf[p * 3 + c]! - f[p * 3 + c]!);
    }
  }
}

/**
 * Keeps α (and F) from the previous frame where neither the picture nor its surroundings changed.
 * The weight falls to zero where the image moved, so moving edges are never smeared; on still
 * regions it is a recursive average that removes frame-to-frame noise.
 */
export class AlphaStabiliser {
  private prevImage?: ImageF32;
  private prevAlpha?: Plane;
  private prevForeground?: ImageF32;
  /** The rectangle of prevAlpha's support (what `remember` copied), cleared before the next copy. */
  private kept?: [number, number, number, number];

  constructor(private readonly still = 0.012, private readonly moving = 0.04, private readonly keep = 0.6) {}

  /** After `apply`: a rectangle outside which the frame's α is 0 (undefined: α is 0 everywhere, or nothing applied yet). */
  get support(): Rect | undefined {
    return this.kept;
  }

  /** `support`: a rectangle outside which α is 0 (the engine's MatteOutput.support), else α is scanned for it. */
  apply(image: ImageF32, alpha: Plane, foreground: ImageF32, support?: Rect): void {
    const pi = this.prevImage, pa = this.prevAlpha, pf = this.prevForeground;
    const { width, height } = image;
    // Where α is 0 in both frames nothing changes (F is 0 there too): only the rectangle around
    // either frame's α is looked at, with RADIUS pixels of true context for the local change.
    // prevAlpha's support is the rectangle `remember` copied (zero around it). A looser rectangle
    // than α's own gives the same result: the local change at a pixel of the tight one reads RADIUS
    // around it, inside either's context, and pixels outside it are 0 in both frames (skipped).
    const rect = pi && pa && pf && pi.width === width && pi.height === height ? unionRect(support ?? supportRect(alpha, 0), this.kept) : undefined;
    if (rect && pi && pa && pf) {
      const [x0, y0, x1, y1] = rect;
      const cx0 = Math.max(0, x0 - RADIUS), cy0 = Math.max(0, y0 - RADIUS), cx1 = Math.min(width, x1 + RADIUS), cy1 = Math.min(height, y1 + RADIUS);
      const cw = cx1 - cx0;
      const local = boxMean(colourChange(image.data, pi.data, width, cx0, cy0, cx1, cy1), RADIUS);
      blendRect(alpha.data, foreground.data, pa.data, pf.data, local.data, width, rect, cx0, cy0, cw, this.still, this.moving - this.still, this.keep);
    }
    this.prevImage = image;
    // Blending changes α only inside `rect`, which holds all of this frame's α: its support is there.
    this.remember(alpha, foreground, rect ?? support);
  }

  /**
   * α and F kept for the next frame in buffers of the stabiliser's own (plain arrays, never a
   * scratch arena's, allocated once), so that the caller may reuse every buffer of this frame for
   * the next one: a video then mattes in one scratch arena instead of two (at 720p 96 MB fewer
   * pages first touched, ~0.5 s of a run's second frame). Only α's support rectangle is copied:
   * α is 0 outside it and F with it (every engine leaves F 0 where α is 0), and the old rectangle
   * is cleared first.
   */
  private remember(alpha: Plane, foreground: ImageF32, within?: Rect): void {
    const { width, height } = alpha;
    if (this.prevAlpha?.width !== width || this.prevAlpha.height !== height) {
      this.prevAlpha = { width, height, channels: 1, data: new Float32Array(width * height) };
      this.prevForeground = { width, height, channels: 3, data: new Float32Array(width * height * 3) };
      this.kept = undefined;
    }
    const pa = this.prevAlpha.data, pf = this.prevForeground!.data;
    if (this.kept) {
      const [x0, y0, x1, y1] = this.kept;
      for (let y = y0; y < y1; y++) { pa.fill(0, y * width + x0, y * width + x1); pf.fill(0, (y * width + x0) * 3, (y * width + x1) * 3); }
    }
    this.kept = supportRect(alpha, 0, within);
    if (this.kept) {
      const [x0, y0, x1, y1] = this.kept;
      for (let y = y0; y < y1; y++) {
        pa.set(alpha.data.subarray(y * width + x0, y * width + x1), y * width + x0);
        pf.set(foreground.data.subarray((y * width + x0) * 3, (y * width + x1) * 3), (y * width + x0) * 3);
      }
    }
  }
}
