/**
 * A clean plate from frames that show the subject somewhere else: the pure core (typed buffers in,
 * typed buffers out; the Node edge that reads videos and photos is `./source.ts`).
 *
 * Every frame is already aligned to a reference frame and comes with a mask of where it may show
 * background (the warp covers the pixel and the person prior, dilated, does not claim it). Per
 * pixel, the estimate is the densest cluster of those observations, not their median: the
 * background is the same in every frame that shows it, while a moving subject's colours at one
 * pixel change from frame to frame, so the background wins even where the subject covered the pixel
 * in most frames. The observations within the noise tolerance of that cluster are averaged (which
 * also removes sensor noise); they are the frames that "saw" the pixel as background.
 */
import { createImage, createPlane, type ImageF32, type Plane } from '../image.js';
import { components, dilateDisc } from '../ops.js';
import { pushPull } from '../matte/pushpull.js';

export interface PlateObservation {
  /** RGB bytes (width × height × 3) aligned to the reference frame. */
  rgb: Uint8Array;
  /** 1 where this frame may show background (warp covers it, prior does not claim it), else 0. */
  background: Uint8Array;
}

export interface HoleDescription {
  /** Where the largest never-seen region lies, in words: "lower middle", "upper left", "centre", … */
  where: string;
  /** Its bounding box in pixels and its area. */
  box: { left: number; top: number; width: number; height: number };
  pixels: number;
}

export interface PlateEstimate {
  plate: ImageF32;
  /** Per pixel, how many frames agreed on its background (0 = never seen; filled from around). */
  seen: Uint16Array;
  /** Share of the pixels seen as background in at least one frame. */
  coverage: number;
  /** Sensor noise measured across frames (8-bit levels) and the agreement tolerance derived from it. */
  noise: number;
  tolerance: number;
  hole?: HoleDescription;
}

/** Candidate cluster centres tried per pixel (all observations when there are fewer). */
const CENTRES = 16;

/**
 * The sensor noise across frames, in 8-bit levels: over a sample of pixels, the median absolute
 * deviation of the green observations from their median (a moving subject is the minority at most
 * pixels, so the median deviation is the background's noise).
 */
function measureNoise(width: number, height: number, obs: PlateObservation[]): number {
  const n = width * height;
  const step = Math.max(1, Math.floor(n / 4000));
  const deviations: number[] = [];
  const values: number[] = [];
  for (let p = 0; p < n; p += step) {
    values.length = 0;
    for (const o of obs) if (o.background[p]) values.push(o.rgb[p * 3 + 1]!);
    if (values.length < 3) continue;
    values.sort((a, b) => a - b);
    const med = values[values.length >> 1]!;
    const dev = values.map((v) => Math.abs(v - med)).sort((a, b) => a - b);
    deviations.push(dev[dev.length >> 1]!);
  }
  if (!deviations.length) return 2;
  deviations.sort((a, b) => a - b);
  return 1.4826 * deviations[deviations.length >> 1]!;
}

/** Where a region lies in the frame, in words: thirds of the height × thirds of the width. */
export function whereInFrame(cx: number, cy: number, width: number, height: number): string {
  const col = cx < width / 3 ? 'left' : cx < (2 * width) / 3 ? 'middle' : 'right';
  const row = cy < height / 3 ? 'upper' : cy < (2 * height) / 3 ? 'middle' : 'lower';
  if (row === 'middle' && col === 'middle') return 'centre';
  if (row === 'middle') return col;
  return `${row} ${col}`;
}

/** The largest never-seen region (`neverSeen` > 0.5), located in words. */
export function describeHole(neverSeen: Plane): HoleDescription | undefined {
  const { labels, stats } = components(neverSeen);
  if (!stats.length) return undefined;
  const best = stats.reduce((a, b) => (b.area > a.area ? b : a));
  let sx = 0, sy = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === best.label) { sx += i % neverSeen.width; sy += Math.floor(i / neverSeen.width); }
  }
  return {
    where: whereInFrame(sx / best.area + 0.5, sy / best.area + 0.5, neverSeen.width, neverSeen.height),
    box: { left: best.left, top: best.top, width: best.width, height: best.height },
    pixels: best.area,
  };
}

/** The one-line reason for a plate that leaves too much unseen, naming the place and the remedy. */
export function coverageMessage(estimate: Pick<PlateEstimate, 'coverage' | 'hole'>, minCoverage: number): string {
  const where = estimate.hole ? (estimate.hole.where === 'centre' ? 'the centre of the frame' : `the ${estimate.hole.where} of the frame`) : 'part of the frame';
  return `only ${(estimate.coverage * 100).toFixed(1)}% of the background was ever seen (${(minCoverage * 100).toFixed(1)}% needed): the subject never left ${where}`
    + `${estimate.hole ? ` (${estimate.hole.box.width}x${estimate.hole.box.height} px at ${estimate.hole.box.left},${estimate.hole.box.top})` : ''}; `
    + 'film a second or two with the subject out of frame, or pass a plate';
}

/**
 * Where a frame may show background: inside `valid` (the warp covers it), and, given a prior,
 * outside the subject it claims (S > 0.1), dilated by `radius` for edges, hair and shadows.
 */
export function backgroundMask(width: number, height: number, prior: Plane | undefined, valid: Plane | undefined, radius: number): Uint8Array {
  const mask = new Uint8Array(width * height).fill(1);
  if (valid) for (let p = 0; p < mask.length; p++) if (valid.data[p]! < 0.5) mask[p] = 0;
  if (prior) {
    const subject = createPlane(width, height);
    for (let p = 0; p < mask.length; p++) subject.data[p] = prior.data[p]! > 0.1 ? 1 : 0;
    const grown = radius > 0 ? dilateDisc(subject, radius) : subject;
    for (let p = 0; p < mask.length; p++) if (grown.data[p]! > 0.5) mask[p] = 0;
  }
  return mask;
}

/** The plate from aligned observations: per pixel the densest agreeing cluster, averaged; holes filled from around. */
export function estimatePlate(width: number, height: number, observations: PlateObservation[]): PlateEstimate {
  const n = width * height;
  const noise = measureNoise(width, height, observations);
  const tolerance = Math.min(40, Math.max(8, Math.round(4 * noise + 2)));
  const plate = createImage(width, height, 3);
  const seen = new Uint16Array(n);
  const k = observations.length;
  const r = new Int16Array(k), g = new Int16Array(k), b = new Int16Array(k);
  const near = (i: number, cr: number, cg: number, cb: number) =>
    Math.abs(r[i]! - cr) <= tolerance && Math.abs(g[i]! - cg) <= tolerance && Math.abs(b[i]! - cb) <= tolerance;
  for (let p = 0; p < n; p++) {
    let m = 0;
    for (const o of observations) {
      if (!o.background[p]) continue;
      r[m] = o.rgb[p * 3]!; g[m] = o.rgb[p * 3 + 1]!; b[m] = o.rgb[p * 3 + 2]!;
      m++;
    }
    if (!m) continue;
    // Densest centre among (up to CENTRES of) the observations themselves.
    const stride = Math.max(1, Math.floor(m / CENTRES));
    let best = 0, bestCount = -1;
    for (let c = 0; c < m; c += stride) {
      let count = 0;
      for (let i = 0; i < m; i++) if (near(i, r[c]!, g[c]!, b[c]!)) count++;
      if (count > bestCount) { bestCount = count; best = c; }
    }
    // Re-centre once on the mean of its cluster, then average what agrees with that.
    let sr = 0, sg = 0, sb = 0, cnt = 0;
    for (let i = 0; i < m; i++) if (near(i, r[best]!, g[best]!, b[best]!)) { sr += r[i]!; sg += g[i]!; sb += b[i]!; cnt++; }
    const mr = sr / cnt, mg = sg / cnt, mb = sb / cnt;
    sr = sg = sb = cnt = 0;
    for (let i = 0; i < m; i++) if (near(i, mr, mg, mb)) { sr += r[i]!; sg += g[i]!; sb += b[i]!; cnt++; }
    if (!cnt) { sr = mr; sg = mg; sb = mb; cnt = 1; }
    plate.data[p * 3] = sr / cnt / 255;
    plate.data[p * 3 + 1] = sg / cnt / 255;
    plate.data[p * 3 + 2] = sb / cnt / 255;
    seen[p] = Math.min(65535, cnt);
  }
  let covered = 0;
  const weight = createPlane(width, height), neverSeen = createPlane(width, height);
  for (let p = 0; p < n; p++) {
    if (seen[p]) { covered++; weight.data[p] = 1; } else neverSeen.data[p] = 1;
  }
  const coverage = covered / n;
  let filled = plate;
  if (covered && covered < n) {
    // Never-seen pixels get a smooth extrapolation of the background around them.
    const pulled = pushPull(plate, weight);
    filled = { ...plate, data: plate.data.slice() };
    for (let p = 0; p < n; p++) if (!seen[p]) for (let c = 0; c < 3; c++) filled.data[p * 3 + c] = pulled.data[p * 3 + c]!;
  }
  const hole = covered < n ? describeHole(neverSeen) : undefined;
  return { plate: filled, seen, coverage, noise: +noise.toFixed(2), tolerance, ...(hole ? { hole } : {}) };
}

/** The never-seen region as an 8-bit plane: 1 where no frame showed the background. */
export function neverSeenPlane(width: number, height: number, seen: Uint16Array): Plane {
  const out = createPlane(width, height);
  for (let p = 0; p < seen.length; p++) out.data[p] = seen[p] ? 0 : 1;
  return out;
}
