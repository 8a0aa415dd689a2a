/**
 * Plate → image geometric alignment for hand-held captures.
 * ORB features (binary, so Hamming distance — the released code's L2 was a bug) with the subject
 * masked out of the image, a ratio test, then a ladder of models fitted by RANSAC:
 * homography → affine → translation → identity. Each rung must pass a plausibility check;
 * a wrong homography is worse than none, and a featureless plate must never crash.
 */
import { cv, withMats, type Cv } from '../cv.js';
import { toGray, type ImageF32, type Plane } from '../image.js';
import { dilateDisc, resize } from '../ops.js';

export type AlignMode = 'auto' | 'homography' | 'none';
export type AlignMethod = 'homography' | 'affine' | 'translation' | 'identity';

export interface AlignmentReport {
  requested: AlignMode;
  method: AlignMethod;
  /** Row-major 3x3 matrix mapping plate pixels to image pixels (full resolution). */
  homography: number[];
  keypoints: { image: number; plate: number };
  matches: number;
  inliers: number;
  /** RMS reprojection error of the inliers, in image pixels. */
  rmsError: number;
  /** Why a simpler model than the requested one was used, when it was. */
  fallback?: string;
}

const WORK_LONG_SIDE = 960;
const ORB_FEATURES = 4000;
const RATIO = 0.8;
const RANSAC_PX = 3;
const MIN_INLIERS = 15;

export const IDENTITY: readonly number[] = [1, 0, 0, 0, 1, 0, 0, 0, 1];

interface Match { px: number; py: number; ix: number; iy: number }

function grayU8(c: Cv, image: ImageF32, scale: number): Cv {
  const w = Math.max(1, Math.round(image.width * scale)), h = Math.max(1, Math.round(image.height * scale));
  const g = resize(toGray(image), w, h);
  const mat = new c.Mat(h, w, c.CV_8UC1);
  const d = mat.data as Uint8Array;
  for (let i = 0; i < g.data.length; i++) d[i] = Math.max(0, Math.min(255, Math.round(g.data[i]! * 255)));
  return mat;
}

/**
 * The plate's ORB features, kept for the next call with the same plate: a video aligns every frame
 * to one plate. Held through a WeakRef so the cache never keeps a plate image alive.
 */
let plateCache: { plate: WeakRef<ImageF32>; scale: number; keypoints: Cv; descriptors: Cv } | undefined;

function plateFeatures(c: Cv, orb: Cv, plate: ImageF32, scale: number): { keypoints: Cv; descriptors: Cv } {
  if (plateCache && plateCache.plate.deref() === plate && plateCache.scale === scale) return plateCache;
  if (plateCache) { plateCache.keypoints.delete(); plateCache.descriptors.delete(); plateCache = undefined; }
  const keypoints = new c.KeyPointVector(), descriptors = new c.Mat();
  withMats((t) => {
    const gp = t(grayU8(c, plate, scale));
    orb.detectAndCompute(gp, t(new c.Mat(gp.rows, gp.cols, c.CV_8UC1, new c.Scalar(255))), keypoints, descriptors);
  });
  plateCache = { plate: new WeakRef(plate), scale, keypoints, descriptors };
  return plateCache;
}

function detectAndMatch(image: ImageF32, plate: ImageF32, subject: Plane | undefined, si: number, sp: number) {
  const c = cv();
  return withMats((t) => {
    const gi = t(grayU8(c, image, si));
    const mask = t(new c.Mat(gi.rows, gi.cols, c.CV_8UC1, new c.Scalar(255)));
    if (subject) {
      // Features on the subject move with it and would pull the fit off the background.
      const grown = dilateDisc(resize(subject, gi.cols, gi.rows), 0.03 * Math.hypot(gi.cols, gi.rows));
      const m = mask.data as Uint8Array;
      for (let i = 0; i < m.length; i++) if (grown.data[i]! > 0.5) m[i] = 0;
    }
    const orb = t(new c.ORB(ORB_FEATURES));
    const kpI = t(new c.KeyPointVector());
    const desI = t(new c.Mat());
    orb.detectAndCompute(gi, mask, kpI, desI);
    const { keypoints: kpP, descriptors: desP } = plateFeatures(c, orb, plate, sp);
    const keypoints = { image: kpI.size() as number, plate: kpP.size() as number };
    const matches: Match[] = [];
    if (keypoints.image >= 2 && keypoints.plate >= 2) {
      const matcher = t(new c.BFMatcher(c.NORM_HAMMING, false));
      const knn = t(new c.DMatchVectorVector());
      matcher.knnMatch(desI, desP, knn, 2);
      for (let i = 0; i < knn.size(); i++) {
        const pair = knn.get(i);
        if (pair.size() < 2) continue;
        const a = pair.get(0), b = pair.get(1);
        if (a.distance < RATIO * b.distance) {
          const ki = kpI.get(a.queryIdx).pt, kp = kpP.get(a.trainIdx).pt;
          matches.push({ ix: ki.x / si, iy: ki.y / si, px: kp.x / sp, py: kp.y / sp });
        }
      }
    }
    return { keypoints, matches };
  });
}

/** Where the homography h sends the point (x, y). */
export function project(h: number[], x: number, y: number): [number, number] {
  const w = h[6]! * x + h[7]! * y + h[8]!;
  return [(h[0]! * x + h[1]! * y + h[2]!) / w, (h[3]! * x + h[4]! * y + h[5]!) / w];
}

function inlierStats(h: number[], matches: Match[], thresholdPx: number) {
  let n = 0, se = 0;
  for (const m of matches) {
    const [x, y] = project(h, m.px, m.py);
    const e2 = (x - m.ix) ** 2 + (y - m.iy) ** 2;
    if (e2 <= thresholdPx * thresholdPx) { n++; se += e2; }
  }
  return { inliers: n, rms: n ? Math.sqrt(se / n) : Infinity };
}

/**
 * A plate from the same camera moves a little, rotates a little and zooms a little: reject any
 * transform whose image corners land far outside the plate or whose warped quad folds or is skewed.
 */
function plausible(h: number[], image: ImageF32, plate: ImageF32): string | undefined {
  if (h.some((v) => !Number.isFinite(v))) return 'non-finite transform';
  const inv = invert3(h);
  if (!inv) return 'singular transform';
  // A re-capture from about the same spot: nearly a similarity (no shear, little perspective).
  const [a, b, , c, d] = h as [number, number, number, number, number];
  const e = (a + d) / 2, f = (a - d) / 2, g = (c + b) / 2, k = (c - b) / 2;
  const q = Math.hypot(e, k), r = Math.hypot(f, g);
  const anisotropy = (q + r) / Math.max(1e-9, Math.abs(q - r));
  if (anisotropy > 1.15) return `transform shears the frame (singular value ratio ${anisotropy.toFixed(2)})`;
  if (Math.abs(Math.atan2(k, e)) > (15 * Math.PI) / 180) return 'transform rotates the frame by more than 15°';
  if (Math.abs(h[6]!) * image.width + Math.abs(h[7]!) * image.height > 0.15) return 'transform has a strong perspective';
  const corners: [number, number][] = [[0, 0], [image.width, 0], [image.width, image.height], [0, image.height]];
  const mapped = corners.map(([x, y]) => project(inv, x, y));
  const marginX = 0.25 * plate.width, marginY = 0.25 * plate.height;
  for (const [x, y] of mapped) {
    if (!(x > -marginX && x < plate.width + marginX && y > -marginY && y < plate.height + marginY)) return 'transform moves the frame too far';
  }
  let sign = 0;
  for (let i = 0; i < 4; i++) {
    const [ax, ay] = mapped[i]!, [bx, by] = mapped[(i + 1) % 4]!, [cx, cy] = mapped[(i + 2) % 4]!;
    const cross = (bx - ax) * (cy - by) - (by - ay) * (cx - bx);
    const s = Math.sign(cross);
    if (sign && s !== sign) return 'transform folds the frame';
    sign = s;
  }
  const area = Math.abs(polygonArea(mapped)) / (image.width * image.height);
  const expected = (plate.width * plate.height) / (image.width * image.height);
  const ratio = area / Math.min(1, expected);
  if (ratio < 0.75 || ratio > 1.33) return `transform scales the frame by ${ratio.toFixed(2)}`;
  return undefined;
}

function polygonArea(p: [number, number][]): number {
  let a = 0;
  for (let i = 0; i < p.length; i++) { const [x1, y1] = p[i]!, [x2, y2] = p[(i + 1) % p.length]!; a += x1 * y2 - x2 * y1; }
  return a / 2;
}

export function invert3(m: number[]): number[] | undefined {
  const [a, b, c, d, e, f, g, h, i] = m as [number, number, number, number, number, number, number, number, number];
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (Math.abs(det) < 1e-12) return undefined;
  return [A / det, -(b * i - c * h) / det, (b * f - c * e) / det, B / det, (a * i - c * g) / det, -(a * f - c * d) / det, C / det, -(a * h - b * g) / det, (a * e - b * d) / det];
}

function fitHomography(matches: Match[]): number[] | undefined {
  const c = cv();
  return withMats((t) => {
    const src = t(c.matFromArray(matches.length, 1, c.CV_32FC2, matches.flatMap((m) => [m.px, m.py])));
    const dst = t(c.matFromArray(matches.length, 1, c.CV_32FC2, matches.flatMap((m) => [m.ix, m.iy])));
    const mask = t(new c.Mat());
    const h = t(c.findHomography(src, dst, c.RANSAC, RANSAC_PX, mask, 2000, 0.995));
    if (h.empty() || h.rows !== 3) return undefined;
    const v = Array.from(h.data64F as Float64Array);
    return v.map((x) => x / v[8]!);
  });
}

function fitAffine(matches: Match[]): number[] | undefined {
  const c = cv();
  return withMats((t) => {
    const src = t(c.matFromArray(matches.length, 1, c.CV_32FC2, matches.flatMap((m) => [m.px, m.py])));
    const dst = t(c.matFromArray(matches.length, 1, c.CV_32FC2, matches.flatMap((m) => [m.ix, m.iy])));
    const inl = t(new c.Mat());
    const a = t(c.estimateAffine2D(src, dst, inl, c.RANSAC, RANSAC_PX, 2000, 0.995, 10));
    if (a.empty()) return undefined;
    const v = Array.from(a.data64F as Float64Array);
    return [v[0]!, v[1]!, v[2]!, v[3]!, v[4]!, v[5]!, 0, 0, 1];
  });
}

/** Translation by consensus: the shift that the most matches agree on within the RANSAC radius. */
function fitTranslation(matches: Match[]): number[] | undefined {
  let best: number[] | undefined, bestCount = 0;
  const step = Math.max(1, Math.floor(matches.length / 300));
  for (let k = 0; k < matches.length; k += step) {
    const m = matches[k]!;
    const h = [1, 0, m.ix - m.px, 0, 1, m.iy - m.py, 0, 0, 1];
    const { inliers } = inlierStats(h, matches, RANSAC_PX);
    if (inliers > bestCount) { bestCount = inliers; best = h; }
  }
  return best;
}

/**
 * Estimates the plate → image transform. `subject` (soft prior, image size) masks the subject out
 * of feature detection. Never throws for lack of features: the report says what was used and why.
 */
export function estimateAlignment(image: ImageF32, plate: ImageF32, subject: Plane | undefined, mode: AlignMode): AlignmentReport {
  const base: AlignmentReport = { requested: mode, method: 'identity', homography: [...IDENTITY], keypoints: { image: 0, plate: 0 }, matches: 0, inliers: 0, rmsError: 0 };
  if (mode === 'none') return base;
  const si = Math.min(1, WORK_LONG_SIDE / Math.max(image.width, image.height));
  const sp = Math.min(1, WORK_LONG_SIDE / Math.max(plate.width, plate.height));
  const { keypoints, matches } = detectAndMatch(image, plate, subject, si, sp);
  const report: AlignmentReport = { ...base, keypoints, matches: matches.length };
  const threshold = RANSAC_PX / Math.min(si, sp);
  const reasons: string[] = [];
  if (matches.length < MIN_INLIERS) {
    reasons.push(`only ${matches.length} feature matches (featureless or unrelated plate)`);
  } else {
    const rungs: [AlignMethod, (m: Match[]) => number[] | undefined][] =
      mode === 'homography' ? [['homography', fitHomography]] : [['homography', fitHomography], ['affine', fitAffine], ['translation', fitTranslation]];
    const minInliers = Math.max(MIN_INLIERS, Math.round(0.15 * matches.length));
    for (const [method, fit] of rungs) {
      const h = fit(matches);
      if (!h) { reasons.push(`${method}: no fit`); continue; }
      const { inliers, rms } = inlierStats(h, matches, threshold);
      const problem = inliers < (method === 'translation' ? MIN_INLIERS : minInliers)
        ? `${inliers} inliers of ${matches.length} matches` : plausible(h, image, plate);
      if (problem) { reasons.push(`${method}: ${problem}`); continue; }
      return { ...report, method, homography: h, inliers, rmsError: rms, ...(reasons.length ? { fallback: reasons.join('; ') } : {}) };
    }
  }
  return { ...report, fallback: reasons.join('; ') + '; using the plate as it is' };
}

/**
 * Warps the plate into the image's frame with the estimated transform. `valid` marks the pixels
 * the plate actually covers (the rest must be filled by the caller).
 */
export function warpPlate(plate: ImageF32, homography: number[], width: number, height: number): { warped: ImageF32; valid: Plane } {
  const c = cv();
  return withMats((t) => {
    const src = t(new c.Mat(plate.height, plate.width, c.CV_32FC3));
    src.data32F.set(plate.data);
    const m = t(c.matFromArray(3, 3, c.CV_64FC1, homography));
    const dst = t(new c.Mat());
    c.warpPerspective(src, dst, m, new c.Size(width, height), c.INTER_LINEAR, c.BORDER_REPLICATE);
    const ones = t(new c.Mat(plate.height, plate.width, c.CV_8UC1, new c.Scalar(255)));
    const cover = t(new c.Mat());
    c.warpPerspective(ones, cover, m, new c.Size(width, height), c.INTER_NEAREST, c.BORDER_CONSTANT, new c.Scalar(0));
    const cd = cover.data as Uint8Array;
    const valid = new Float32Array(width * height);
    for (let i = 0; i < valid.length; i++) valid[i] = cd[i]! > 0 ? 1 : 0;
    return {
      warped: { width, height, channels: 3, data: new Float32Array(dst.data32F) },
      valid: { width, height, channels: 1, data: valid } as Plane,
    };
  });
}
