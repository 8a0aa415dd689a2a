/**
 * Plate → image geometric alignment for hand-held captures.
 * ORB features (binary, so Hamming distance — the released code's L2 was a bug) with the subject
 * masked out of the image, a ratio test, then a ladder of models fitted by RANSAC:
 * homography → affine → translation → identity. Each rung must pass a plausibility check;
 * a wrong homography is worse than none, and a featureless plate must never crash.
 * Whatever rung is reached is then refined to sub-pixel precision by corners tracked with
 * pyramidal Lucas-Kanade (OpenCV), kept only when many corners spread over the frame agree.
 */
import { channelWise, cv, withMats, type Cv } from '../cv.js';
import { createPlane, toGray, type ImageF32, type Plane } from '../image.js';
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
  /** The sub-pixel refinement by tracked corners: how many, how many fit, and whether it was used. */
  flow?: { points: number; inliers: number; rmsError: number; used: boolean };
  /** Why a simpler model than the requested one was used, when it was. */
  fallback?: string;
  /** Found by tracking corners from a start (a video's previous frame's fit, or no transform), without feature matching. */
  tracked?: boolean;
}

const WORK_LONG_SIDE = 960;
/**
 * ORB features per image: a first try with fewer (matching costs the product of the two counts),
 * and the full count only when that try does not end in a well-supported refined homography
 * (plain or blurred backgrounds need every feature they have).
 */
const ORB_FEATURES_FIRST = 2000;
const ORB_FEATURES = 4000;
const RATIO = 0.8;
const RANSAC_PX = 3;
const MIN_INLIERS = 15;
/** Corners tracked by the flow refinement, and how far tracking back may land from the start (working px). */
const FLOW_POINTS = 1500;
const FLOW_BACK_PX = 0.3;
/** RANSAC radius for the tracked corners (working px): they are precise, so the fit may be strict. */
const FLOW_RANSAC_PX = 1;
/** Share of the tracked corners that must fit the refined homography. */
const FLOW_MIN_SHARE = 0.3;
/** Eight unknowns from a cluster of corners extrapolate badly: ask for many, spread over the frame. */
const FLOW_MIN_INLIERS = 80;
const FLOW_MIN_SPREAD = 0.25;

export const IDENTITY: readonly number[] = [1, 0, 0, 0, 1, 0, 0, 0, 1];

interface Match { px: number; py: number; ix: number; iy: number }

/** The scale that brings an image's long side to at most `longSide` (never enlarging). */
function scaleTo(image: { width: number; height: number }, longSide = WORK_LONG_SIDE): number {
  return Math.min(1, longSide / Math.max(image.width, image.height));
}

/** The working-scale size of an image (what grayU8 makes of it). */
function workSize(image: ImageF32, scale: number): { cols: number; rows: number } {
  return { cols: Math.max(1, Math.round(image.width * scale)), rows: Math.max(1, Math.round(image.height * scale)) };
}

function grayU8(c: Cv, image: ImageF32, scale: number): Cv {
  const { cols: w, rows: h } = workSize(image, scale);
  const g = resize(toGray(image), w, h);
  const mat = new c.Mat(h, w, c.CV_8UC1);
  const d = mat.data as Uint8Array;
  for (let i = 0; i < g.data.length; i++) d[i] = Math.max(0, Math.min(255, Math.round(g.data[i]! * 255)));
  return mat;
}

/**
 * The plate's grey working image and ORB features, kept for the next call with the same plate: a
 * video aligns every frame to one plate. Held through a WeakRef so the cache never keeps a plate
 * image alive.
 */
interface PlateFeatures { keypoints: Cv; descriptors: Cv }
interface PlateGrey { grey: Cv; features: Map<number, PlateFeatures>; corners?: Float32Array }
/** By scale: a video tracks its frames at one (TRACK_LONG_SIDE) and re-acquires them with ORB at another. */
let plateCache: { plate: WeakRef<ImageF32>; scales: Map<number, PlateGrey> } | undefined;

/** The plate's grey working image at `scale`, cached (with its features, computed when first asked for). */
function plateGrey(c: Cv, plate: ImageF32, scale: number): PlateGrey {
  if (!plateCache || plateCache.plate.deref() !== plate) {
    for (const entry of plateCache?.scales.values() ?? []) {
      entry.grey.delete();
      for (const f of entry.features.values()) { f.keypoints.delete(); f.descriptors.delete(); }
    }
    plateCache = { plate: new WeakRef(plate), scales: new Map() };
  }
  let entry = plateCache.scales.get(scale);
  if (!entry) {
    entry = { grey: grayU8(c, plate, scale), features: new Map() };
    plateCache.scales.set(scale, entry);
  }
  return entry;
}

function plateFeatures(c: Cv, orb: Cv, count: number, plate: ImageF32, scale: number): PlateFeatures & { grey: Cv } {
  const { grey, features } = plateGrey(c, plate, scale);
  let found = features.get(count);
  if (!found) {
    found = { keypoints: new c.KeyPointVector(), descriptors: new c.Mat() };
    const everywhere = new c.Mat(grey.rows, grey.cols, c.CV_8UC1, new c.Scalar(255));
    orb.detectAndCompute(grey, everywhere, found.keypoints, found.descriptors);
    everywhere.delete();
    features.set(count, found);
  }
  return { grey, ...found };
}

/**
 * Margin (working px) that the tracker keeps from the plate's border: a corner's 21 px window and
 * its pyramid level must lie on plate pixels, not on the fill around a warped plate.
 */
const CORNER_MARGIN = 15;
/**
 * How many corners of the whole plate are kept for a video's tracking: enough that a subject
 * covering most of the frame still leaves TRACK_EFFORT's few hundred off it.
 */
const CORNER_POOL = 3000;

/**
 * The plate's strongest corners (working px, x/y pairs, strongest first), found once per plate
 * and cached with its grey image. A video tracks one plate every frame: the corners of the plate
 * warped by a homography close to the previous frame's are these corners projected, so Shi-Tomasi
 * over the whole warped plate, the warp of its coverage and the coverage's erosion (~30 ms a 720p
 * frame) are not redone per frame.
 */
function plateCorners(c: Cv, cache: PlateGrey): Float32Array {
  if (cache.corners) return cache.corners;
  const { grey } = cache;
  cache.corners = withMats((t) => {
    const inner = t(new c.Mat(grey.rows, grey.cols, c.CV_8UC1, new c.Scalar(0)));
    const w = grey.cols - 2 * CORNER_MARGIN, h = grey.rows - 2 * CORNER_MARGIN;
    if (w > 0 && h > 0) t(inner.roi(new c.Rect(CORNER_MARGIN, CORNER_MARGIN, w, h))).setTo(new c.Scalar(255));
    const corners = t(new c.Mat());
    c.goodFeaturesToTrack(grey, corners, CORNER_POOL, 0.001, 8, inner, 5);
    return Float32Array.from(corners.data32F as Float32Array);
  });
  return cache.corners;
}

/**
 * Where the subject is not, at the working scale (255 off the subject, 0 on it, grown a little),
 * or undefined without a subject: features on the subject move with it and would pull the fit off
 * the background.
 */
function offSubject(subject: Plane | undefined, cols: number, rows: number, coarse = false): Uint8Array | undefined {
  if (!subject) return undefined;
  // `coarse` (a video's tracked frames): grown on a grid of half the working size and looked up
  // from it. The margin is ~30 working px, so a pixel more or less at its edge changes little,
  // and a quarter of the pixels costs ~5 ms instead of ~18 (720p) on every frame.
  const hc = coarse ? Math.max(1, Math.round(cols / 2)) : cols, hr = coarse ? Math.max(1, Math.round(rows / 2)) : rows;
  const grown = dilateDisc(resize(subject, hc, hr), 0.03 * Math.hypot(hc, hr)).data;
  const m = new Uint8Array(cols * rows);
  if (!coarse) {
    for (let i = 0; i < m.length; i++) m[i] = grown[i]! > 0.5 ? 0 : 255;
    return m;
  }
  // Each working pixel looks up its cell of the half-size grid.
  const cellX = new Int32Array(cols);
  for (let x = 0; x < cols; x++) cellX[x] = Math.min(hc - 1, Math.floor((x * hc) / cols));
  for (let y = 0; y < rows; y++) {
    const row = Math.min(hr - 1, Math.floor((y * hr) / rows)) * hc;
    for (let x = 0; x < cols; x++) m[y * cols + x] = grown[row + cellX[x]!]! > 0.5 ? 0 : 255;
  }
  return m;
}

/** A mask Mat of the working image (everywhere without a subject). */
function maskMat(c: Cv, t: <M extends { delete(): void }>(m: M) => M, off: Uint8Array | undefined, cols: number, rows: number): Cv {
  const mask = t(new c.Mat(rows, cols, c.CV_8UC1, new c.Scalar(255)));
  if (off) (mask.data as Uint8Array).set(off);
  return mask;
}

/** `count` ORB features on each side, matched by Hamming distance with the ratio test. */
function detectAndMatch(c: Cv, t: <M extends { delete(): void }>(m: M) => M, gi: Cv, mask: Cv, plate: ImageF32, count: number, si: number, sp: number) {
  const orb = t(new c.ORB(count));
  const kpI = t(new c.KeyPointVector());
  const desI = t(new c.Mat());
  orb.detectAndCompute(gi, mask, kpI, desI);
  const { grey: gp, keypoints: kpP, descriptors: desP } = plateFeatures(c, orb, count, plate, sp);
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
  return { gp, keypoints, matches };
}

/** How many corners the tracker follows, over how many pyramid levels. */
interface FlowEffort { points: number; levels: number }
/** From an ORB fit (a photo, a video's (re)acquisition): displacements of several pixels left. */
const FULL_EFFORT: FlowEffort = { points: FLOW_POINTS, levels: 3 };
/**
 * From the previous frame's fit (a video's tracking): the plate is off by the camera's motion in one
 * frame, a few working pixels, so two levels reach it, and a few hundred corners pin a homography's
 * eight numbers down (the "a few hundred corners"): about a third of the full effort.
 */
const TRACK_EFFORT: FlowEffort = { points: 500, levels: 2 };
/**
 * The long side of the grid a video's frames are tracked on from the previous frame's fit: coarser
 * than the working grid, since the grey images, the warp and the pyramids cost with the pixels.
 * Measured on the bench's generated hand-held clips against their true camera motion: a 720p
 * frame's fit ~145 → ~110 ms, its corners 0.08 → 0.06 px off on average (the clip's alpha MAD
 * 11.62e-3 and dtSSD 5.88e-2 either way); at 1080p 0.05 → 0.09 px (MAD 8.76 → 8.75e-3, dtSSD 5.40e-2).
 */
const TRACK_LONG_SIDE = 640;
/**
 * The same before the subject is known (a photo's, while its prior runs): the subject's part of
 * the corners is left out afterwards, so more are asked for. On the four hand-held bgm-samples
 * pairs 500 left ~350 off the subject, against ~470 found with the subject masked; 700 leave about as many.
 */
const TRACK_EFFORT_UNMASKED: FlowEffort = { points: 700, levels: 2 };

/** A tracked corner: where it was found on the warped plate (working px), and the match it gives. */
interface TrackedCorner extends Match { wx: number; wy: number }

/**
 * Sub-pixel refinement of a coarse plate → image homography, first half: the plate is warped onto
 * the image by it, corners of the warped plate are tracked into the image by pyramidal
 * Lucas-Kanade and kept when tracking back lands where they started. ORB keypoints sit on a pixel
 * grid of their pyramid level; tracked corners do not, so a few hundred of them pin the plate down
 * more precisely than thousands of ORB matches, and cost less. `mask` (the subject's absence)
 * keeps corners off the subject. The corners come from the plate, which shows no subject, so they
 * can also be found before the subject is known and those on it left out afterwards
 * (`offSubjectCorners`): a photo tracks them while its prior is being computed.
 */
function trackFlow(c: Cv, t: <M extends { delete(): void }>(m: M) => M, gi: Cv, gp: Cv, si: number, sp: number, coarse: number[], effort: FlowEffort, mask?: Cv, pool?: { corners: Float32Array; off?: Uint8Array }): TrackedCorner[] {
  const start = flowStart(c, t, gi, gp, si, sp, coarse, effort, mask, pool);
  if (!start) return [];
  return flowEnd(start.points, flowBothWays(c, t, start.warped, gi, start.points, effort.levels), coarse, si);
}

/** Where `trackFlow` tracks from: the plate warped to the working image, and its corners there (x/y pairs); undefined for too few. */
function flowStart(c: Cv, t: <M extends { delete(): void }>(m: M) => M, gi: Cv, gp: Cv, si: number, sp: number, coarse: number[], effort: FlowEffort, mask?: Cv, pool?: { corners: Float32Array; off?: Uint8Array }): { warped: Cv; points: Float32Array } | undefined {
  const toWork = [si, 0, 0, 0, si, 0, 0, 0, 1], fromPlateWork = [1 / sp, 0, 0, 0, 1 / sp, 0, 0, 0, 1];
  const hw = multiply3(toWork, multiply3(coarse, fromPlateWork));
  // A photo's plate of its own size, tracked from no transform: the warp would be an exact copy
  // (OpenCV's bilinear weights are 1 and 0 at whole pixels), ~20 ms at 960 px. Only read below.
  const identity = gp.cols === gi.cols && gp.rows === gi.rows && hw.every((v, i) => v === IDENTITY[i]);
  const warped = identity ? gp : t(new c.Mat());
  if (!identity) c.warpPerspective(gp, warped, t(c.matFromArray(3, 3, c.CV_64FC1, hw)), new c.Size(gi.cols, gi.rows), c.INTER_LINEAR, c.BORDER_CONSTANT, new c.Scalar(0));
  let corners: Cv;
  if (pool) {
    // The plate's own corners (found once, CORNER_MARGIN inside its border) where the start puts
    // them: those landing in the image and off the subject, strongest first.
    const picked: number[] = [];
    const { corners: all, off } = pool;
    for (let k = 0; k < all.length && picked.length < 2 * effort.points; k += 2) {
      const [x, y] = project(hw, all[k]!, all[k + 1]!);
      if (!(x >= 0 && y >= 0 && x <= gi.cols - 1 && y <= gi.rows - 1)) continue;
      if (off && off[Math.round(y) * gi.cols + Math.round(x)] === 0) continue;
      picked.push(x, y);
    }
    corners = t(c.matFromArray(picked.length / 2, 1, c.CV_32FC2, picked));
  } else {
    // Corners only where the warped plate has real pixels well inside its border.
    const cover = t(new c.Mat(gi.rows, gi.cols, c.CV_8UC1));
    coverMask(coverage(hw, gp.cols, gp.rows, gi.cols, gi.rows).data, cover.data as Uint8Array);
    const where = t(new c.Mat());
    c.erode(cover, where, t(c.getStructuringElement(c.MORPH_RECT, new c.Size(2 * CORNER_MARGIN + 1, 2 * CORNER_MARGIN + 1))));
    if (mask) c.bitwise_and(where, mask, where);
    corners = t(new c.Mat());
    c.goodFeaturesToTrack(warped, corners, effort.points, 0.001, 8, where, 5);
  }
  if ((corners.rows as number) < MIN_INLIERS) return undefined;
  return { warped, points: Float32Array.from(corners.data32F as Float32Array) };
}

/** Corners tracked by pyramidal Lucas-Kanade from one grey image into another and back, each on its own. */
export interface Flow { tracked: Float32Array; status: Uint8Array; back: Float32Array; backStatus: Uint8Array }

/**
 * `points` (x/y pairs) of `from` tracked into `to` and back. OpenCV tracks each point on its own
 * over the two images' pyramids, so the points may be split between threads: each part gets what
 * the whole would.
 */
function flowBothWays(c: Cv, t: <M extends { delete(): void }>(m: M) => M, from: Cv, to: Cv, points: Float32Array, levels: number): Flow {
  const corners = t(c.matFromArray(points.length / 2, 1, c.CV_32FC2, points));
  const tracked = t(new c.Mat()), back = t(new c.Mat());
  const status = t(new c.Mat()), backStatus = t(new c.Mat()), err = t(new c.Mat()), backErr = t(new c.Mat());
  const win = new c.Size(21, 21);
  const criteria = new c.TermCriteria(c.TermCriteria_COUNT + c.TermCriteria_EPS, 30, 0.01);
  c.calcOpticalFlowPyrLK(from, to, corners, tracked, status, err, win, levels, criteria);
  c.calcOpticalFlowPyrLK(to, from, tracked, back, backStatus, backErr, win, levels, criteria);
  return {
    tracked: Float32Array.from(tracked.data32F as Float32Array), status: Uint8Array.from(status.data as Uint8Array),
    back: Float32Array.from(back.data32F as Float32Array), backStatus: Uint8Array.from(backStatus.data as Uint8Array),
  };
}

/** A part of a photo's corners to track on another thread: both grey working images (8-bit) and the part's points. */
export interface FlowJob { cols: number; rows: number; from: Uint8Array; to: Uint8Array; points: Float32Array; levels: number }

/** `flowBothWays` of a job (on the thread that was sent it). */
export function flowOfJob(job: FlowJob): Flow {
  const c = cv();
  return withMats((t) => {
    const grey = (bytes: Uint8Array) => { const m = t(new c.Mat(job.rows, job.cols, c.CV_8UC1)); (m.data as Uint8Array).set(bytes); return m; };
    return flowBothWays(c, t, grey(job.from), grey(job.to), job.points, job.levels);
  });
}

/** The tracked corners that tracked back to where they started, as matches plate → image. */
function flowEnd(p0: Float32Array, flow: Flow, coarse: number[], si: number): TrackedCorner[] {
  const n = p0.length / 2;
  const { tracked: p1, back: pb, status: ok, backStatus: okBack } = flow;
  const inverse = invert3(coarse);
  if (!inverse) return [];
  const out: TrackedCorner[] = [];
  for (let k = 0; k < n; k++) {
    if (!ok[k] || !okBack[k]) continue;
    if (Math.hypot(pb[2 * k]! - p0[2 * k]!, pb[2 * k + 1]! - p0[2 * k + 1]!) > FLOW_BACK_PX) continue;
    const [px, py] = project(inverse, p0[2 * k]! / si, p0[2 * k + 1]! / si);
    out.push({ px, py, ix: p1[2 * k]! / si, iy: p1[2 * k + 1]! / si, wx: p0[2 * k]!, wy: p0[2 * k + 1]! });
  }
  return out;
}

/** The tracked corners found off the subject (`off`: offSubject's mask of the working image). */
function offSubjectCorners(corners: TrackedCorner[], off: Uint8Array | undefined, cols: number): TrackedCorner[] {
  if (!off) return corners;
  return corners.filter((m) => off[Math.round(m.wy) * cols + Math.round(m.wx)] !== 0);
}

/** Whether h's inliers span at least FLOW_MIN_SPREAD of the image's width and of its height (5th–95th percentile). */
function spread(h: number[], matches: Match[], thresholdPx: number, image: ImageF32): boolean {
  const xs: number[] = [], ys: number[] = [];
  for (const m of matches) {
    const [x, y] = project(h, m.px, m.py);
    if ((x - m.ix) ** 2 + (y - m.iy) ** 2 <= thresholdPx * thresholdPx) { xs.push(m.ix); ys.push(m.iy); }
  }
  const span = (v: number[]) => { v.sort((a, b) => a - b); return v[Math.floor(0.95 * (v.length - 1))]! - v[Math.floor(0.05 * (v.length - 1))]!; };
  return xs.length > 0 && span(xs) >= FLOW_MIN_SPREAD * image.width && span(ys) >= FLOW_MIN_SPREAD * image.height;
}

function multiply3(a: number[], b: number[]): number[] {
  const out: number[] = [];
  for (let r = 0; r < 3; r++) for (let col = 0; col < 3; col++) out.push(a[r * 3]! * b[col]! + a[r * 3 + 1]! * b[3 + col]! + a[r * 3 + 2]! * b[6 + col]!);
  return out;
}

/** Largest distance between where two homographies put a width x height frame's corners, in pixels. */
export function cornerDistance(a: number[], b: number[], width: number, height: number): number {
  let worst = 0;
  for (const [x, y] of [[0, 0], [width, 0], [width, height], [0, height]] as const) {
    const [ax, ay] = project(a, x, y), [bx, by] = project(b, x, y);
    worst = Math.max(worst, Math.hypot(ax - bx, ay - by));
  }
  return worst;
}

/** How far a plate→image homography moves a width x height frame's corners at most, in pixels. */
export function cornerShift(h: number[], width: number, height: number): number {
  return cornerDistance(h, [...IDENTITY], width, height);
}

/**
 * Largest corner displacement (px) of a plate-sized frame's fit that counts as no motion: a video
 * (or a plate source) whose sampled frames all fit within it is a tripod shot, and its plate is
 * used as it is.
 */
export const STILL_SHIFT_PX = 1;

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

function fitHomography(matches: Match[], thresholdPx = RANSAC_PX): number[] | undefined {
  const c = cv();
  return withMats((t) => {
    const src = t(c.matFromArray(matches.length, 1, c.CV_32FC2, matches.flatMap((m) => [m.px, m.py])));
    const dst = t(c.matFromArray(matches.length, 1, c.CV_32FC2, matches.flatMap((m) => [m.ix, m.iy])));
    const mask = t(new c.Mat());
    const h = t(c.findHomography(src, dst, c.RANSAC, thresholdPx, mask, 2000, 0.995));
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

/** Corners tracked from a start (`trackFlow`), for `estimateAlignment` to fit once the subject is known. */
export interface CornerTrack { start: readonly number[]; corners: TrackedCorner[] }

/**
 * Corners of `plate` tracked into `image` from `start` (a video's previous frame's homography; by
 * default none, for a plate of the image's size), kept off the subject by `off` (offSubject's mask)
 * or, without one, all of them. Undefined where tracking does not apply (no start for a plate of
 * another size).
 */
function trackCorners(image: ImageF32, plate: ImageF32, start: readonly number[] | undefined, off: Uint8Array | undefined, effort: FlowEffort, longSide = WORK_LONG_SIDE): CornerTrack | undefined {
  const from = start ?? (image.width === plate.width && image.height === plate.height ? IDENTITY : undefined);
  if (!from) return undefined;
  const si = scaleTo(image, longSide);
  const sp = scaleTo(plate, longSide);
  const c = cv();
  return withMats((t) => {
    const gi = t(grayU8(c, image, si));
    const cache = plateGrey(c, plate, sp);
    // A video's frame (tracked from the previous frame's fit): the plate's cached corners, projected.
    if (start) return { start: from, corners: trackFlow(c, t, gi, cache.grey, si, sp, [...from], effort, undefined, { corners: plateCorners(c, cache), ...(off ? { off } : {}) }) };
    const mask = off && maskMat(c, t, off, gi.cols, gi.rows);
    return { start: from, corners: trackFlow(c, t, gi, cache.grey, si, sp, [...from], effort, mask) };
  });
}

/**
 * The first half of a photo's tracking from no transform, before its subject is known: a photo
 * runs it while its prior is computed, and hands it to `estimateAlignment` as `track`, which
 * leaves out the corners on the subject and fits the rest.
 */
export function trackBeforeSubject(image: ImageF32, plate: ImageF32): CornerTrack | undefined {
  return trackCorners(image, plate, undefined, undefined, TRACK_EFFORT_UNMASKED);
}

/**
 * The helper's share of the corners: it tracks them after the photo's prior (~100 ms at 1080p),
 * while this thread starts on its own share at once; ~0.3 has both end about together.
 */
const FLOW_HELPED_SHARE = 0.3;

/** Another thread that tracks a part of the corners (`flowOfJob` there); undefined where it cannot. */
export type FlowHelper = (job: FlowJob) => Promise<Flow | undefined> | undefined;

/**
 * `trackBeforeSubject` with the last FLOW_HELPED_SHARE of the corners tracked by `helper` (a
 * photo's prior thread, once its prior is done) while this thread tracks the others: the same
 * corners, the same matches, in the same order. Where the helper cannot, this thread tracks them
 * all. Repeats trackCorners' set-up because it awaits the helper between the flow's start and end,
 * which trackCorners' synchronous `withMats` scope cannot.
 */
export async function trackBeforeSubjectHelped(image: ImageF32, plate: ImageF32, helper: FlowHelper): Promise<CornerTrack | undefined> {
  if (image.width !== plate.width || image.height !== plate.height) return undefined;
  const effort = TRACK_EFFORT_UNMASKED;
  const si = scaleTo(image);
  const c = cv();
  // Mats kept across the wait for the helper (withMats frees them at the end of a synchronous call).
  const mats: { delete(): void }[] = [];
  const t = <M extends { delete(): void }>(m: M): M => { mats.push(m); return m; };
  try {
    const gi = t(grayU8(c, image, si));
    const grey = plateGrey(c, plate, si).grey;
    const start = flowStart(c, t, gi, grey, si, si, [...IDENTITY], effort);
    if (!start) return { start: IDENTITY, corners: [] };
    const { warped, points } = start;
    // The x/y pairs before `cut` are tracked here, the rest there.
    const cut = 2 * Math.floor((points.length / 2) * (1 - FLOW_HELPED_SHARE));
    const job: FlowJob = { cols: gi.cols, rows: gi.rows, from: Uint8Array.from(warped.data as Uint8Array), to: Uint8Array.from(gi.data as Uint8Array), points: points.slice(cut), levels: effort.levels };
    const theirs = helper(job)?.catch(() => undefined);
    const mine = flowBothWays(c, t, warped, gi, points.subarray(0, cut), effort.levels);
    const rest = (await theirs) ?? flowBothWays(c, t, warped, gi, points.subarray(cut), effort.levels);
    const joined = <A extends Float32Array | Uint8Array>(a: A, b: A): A => { const out = new (a.constructor as new (n: number) => A)(a.length + b.length); out.set(a); out.set(b, a.length); return out; };
    const flow: Flow = { tracked: joined(mine.tracked, rest.tracked), status: joined(mine.status, rest.status), back: joined(mine.back, rest.back), backStatus: joined(mine.backStatus, rest.backStatus) };
    return { start: IDENTITY, corners: flowEnd(points, flow, [...IDENTITY], si) };
  } finally {
    for (const m of mats) m.delete();
  }
}

/**
 * Estimates the plate → image transform. `subject` (soft prior, image size) masks the subject out
 * of feature detection. Never throws for lack of features: the report says what was used and why.
 * `start` (a video's previous frame's homography; default: none for a plate of the image's size)
 * skips feature matching when corners tracked from it give a supported fit; `track`: those corners
 * when `trackBeforeSubject` already followed them from no transform.
 */
export function estimateAlignment(image: ImageF32, plate: ImageF32, subject: Plane | undefined, mode: AlignMode, start?: readonly number[], track?: CornerTrack): AlignmentReport {
  const base: AlignmentReport = { requested: mode, method: 'identity', homography: [...IDENTITY], keypoints: { image: 0, plate: 0 }, matches: 0, inliers: 0, rmsError: 0 };
  if (mode === 'none') return base;
  const si = scaleTo(image);
  const sp = scaleTo(plate);
  // Tracking: a video's previous frame's homography is a start as good as ORB's, and so is no
  // transform for a plate of the image's own size and framing (shot from about the same spot: a
  // tripod, and the hand-held sample pairs, 12-40 px apart, track from it), at a fraction of ORB's
  // cost (1080p: ~400 against ~650 ms). ORB (re)acquires when tracking ends without a supported fit.
  // A video's frame, tracked from the previous frame's fit, on a coarser grid (TRACK_LONG_SIDE).
  const longSide = start ? TRACK_LONG_SIDE : WORK_LONG_SIDE;
  const st = scaleTo(image, longSide);
  const tracks = workSize(image, st);
  const offTracked = offSubject(subject, tracks.cols, tracks.rows, start !== undefined);
  // With the subject known, its corners are never asked for (a video's frames, whose prior came first).
  const tracking = track ?? trackCorners(image, plate, start, offTracked, TRACK_EFFORT, longSide);
  if (tracking) {
    const tracked = fitTracked({ ...base, method: 'homography', homography: [...tracking.start] }, offSubjectCorners(tracking.corners, offTracked, tracks.cols), st, image, plate);
    if (tracked.flow?.used) return { ...tracked, tracked: true, inliers: tracked.flow.inliers, rmsError: tracked.flow.rmsError };
  }
  const { cols, rows } = workSize(image, si);
  const off = st === si ? offTracked : offSubject(subject, cols, rows, start !== undefined);
  const c = cv();
  return withMats((t) => {
    const gi = t(grayU8(c, image, si));
    const mask = maskMat(c, t, off, cols, rows);
    let result: AlignmentReport = base;
    for (const count of [ORB_FEATURES_FIRST, ORB_FEATURES]) {
      const { gp, keypoints, matches } = detectAndMatch(c, t, gi, mask, plate, count, si, sp);
      const coarse = ladder({ ...base, keypoints, matches: matches.length }, matches, mode, image, plate, RANSAC_PX / Math.min(si, sp));
      // Identity is a starting point only for a plate of the image's own size and framing.
      const start = coarse.method !== 'identity' || (image.width === plate.width && image.height === plate.height);
      result = start ? fitTracked(coarse, trackFlow(c, t, gi, gp, si, sp, coarse.homography, FULL_EFFORT, mask), si, image, plate) : coarse;
      if (result.flow?.used) break;
    }
    return result;
  });
}

/** The ORB matches' ladder: homography → affine → translation → identity, each checked. */
function ladder(report: AlignmentReport, matches: Match[], mode: AlignMode, image: ImageF32, plate: ImageF32, threshold: number): AlignmentReport {
  const reasons: string[] = [];
  if (matches.length < MIN_INLIERS) {
    return { ...report, fallback: `only ${matches.length} feature matches (featureless or unrelated plate); using the plate as it is` };
  }
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
  return { ...report, fallback: reasons.join('; ') + '; using the plate as it is' };
}

/**
 * The coarse transform replaced by a homography fitted to tracked corners (off the subject), when
 * enough of them agree on it and it passes the same plausibility check. Any rung of the ladder
 * (even identity, for a plate too plain for ORB but with corners) is a good enough start for the tracker.
 */
function fitTracked(coarse: AlignmentReport, tracked: Match[], si: number, image: ImageF32, plate: ImageF32): AlignmentReport {
  const threshold = FLOW_RANSAC_PX / si;
  const h = tracked.length >= MIN_INLIERS ? fitHomography(tracked, threshold) : undefined;
  if (!h) return { ...coarse, flow: { points: tracked.length, inliers: 0, rmsError: 0, used: false } };
  const { inliers, rms } = inlierStats(h, tracked, threshold);
  const used = inliers >= Math.max(FLOW_MIN_INLIERS, FLOW_MIN_SHARE * tracked.length) && spread(h, tracked, threshold, image) && !plausible(h, image, plate);
  const flow = { points: tracked.length, inliers, rmsError: rms, used };
  if (!used) return { ...coarse, flow };
  if (coarse.method === 'homography') return { ...coarse, homography: h, flow };
  const from = coarse.method === 'identity' ? 'no transform' : `an ${coarse.method} start`;
  return { ...coarse, method: 'homography', homography: h, flow, fallback: `${coarse.fallback}; tracked corners from ${from} gave a homography` };
}

/**
 * Warps the plate into the image's frame with the estimated transform. `valid` marks the pixels
 * the plate actually covers (the rest must be filled by the caller). `into`: buffers of the right
 * sizes to write both into (kept for reuse: a video warps a plate every frame).
 */
export function warpPlate(plate: ImageF32, homography: number[], width: number, height: number, into?: { warped: Float32Array; valid: Float32Array }): { warped: ImageF32; valid: Plane } {
  const c = cv();
  const warped = withMats((t) => {
    const m = t(c.matFromArray(3, 3, c.CV_64FC1, homography));
    return channelWise(c, plate, (src, dst) => c.warpPerspective(src, dst, m, new c.Size(width, height), c.INTER_LINEAR, c.BORDER_REPLICATE), into?.warped);
  });
  return { warped, valid: coverage(homography, plate.width, plate.height, width, height, into?.valid) };
}

/** 255 where `valid` is 1, else 0: a coverage plane as an OpenCV mask. */
function coverMask(valid: Float32Array, out: Uint8Array): void {
  for (let i = 0; i < valid.length; i++) out[i] = valid[i]! > 0.5 ? 255 : 0;
}

/** Round half to even, as C's lrint (OpenCV's cvRound, saturate_cast<int> of a double). */
function rint(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Where a `pw`x`ph` plate warped by `homography` (plate → image) covers a `width`x`height` image:
 * 1 where the pixel's preimage, rounded to the nearest plate pixel, lies on the plate, else 0.
 * Exactly what OpenCV's nearest-neighbour warpPerspective of a constant image into a zero border
 * gives (the test compares them): the same inverse (cv::invert's 3x3 formula), the same doubles in
 * the same order (its 64-pixel blocks' start, then the offset), the same rounding. Written here
 * because OpenCV.js's warp runs as scalar WebAssembly: ~60 ms at 1080p for the mask alone, a frame
 * of a moving camera's video or a photo's alignment, against a few ms here. A singular homography covers nothing.
 * Written into `into` when it is given and of the image's size.
 */
export function coverage(homography: number[], pw: number, ph: number, width: number, height: number, into?: Float32Array): Plane {
  const [a, b, c, d, e, f, g, h, i] = homography as [number, number, number, number, number, number, number, number, number];
  const det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
  const valid: Plane = into && into.length === width * height ? { width, height, channels: 1, data: into.fill(0) } : createPlane(width, height, 0);
  if (det === 0) return valid;
  const s = 1 / det;
  const M = [(e * i - f * h) * s, (c * h - b * i) * s, (b * f - c * e) * s, (f * g - d * i) * s, (a * i - c * g) * s, (c * d - a * f) * s, (d * h - e * g) * s, (b * g - a * h) * s, (a * e - b * d) * s] as const;
  const out = valid.data;
  const BLOCK = 64;
  /** Whether pixel (x, y) lands on the plate, computed as OpenCV computes it. */
  const covered = (x: number, y: number): boolean => {
    const xb = x - (x % BLOCK), x1 = x - xb;
    const X0 = M[0] * xb + M[1] * y + M[2], Y0 = M[3] * xb + M[4] * y + M[5], W0 = M[6] * xb + M[7] * y + M[8];
    let w = W0 + M[6] * x1;
    w = w ? 1 / w : 0;
    const X = rint(Math.max(-2147483648, Math.min(2147483647, (X0 + M[0] * x1) * w)));
    const Y = rint(Math.max(-2147483648, Math.min(2147483647, (Y0 + M[3] * x1) * w)));
    return X >= 0 && X < pw && Y >= 0 && Y < ph;
  };
  for (let y = 0, row = 0; y < height; y++, row += width) {
    // Along a row the preimage moves monotonically while its projective denominator keeps its
    // sign (it is linear in x): the covered pixels are one run, found from both ends inward.
    const w0 = M[6] * 0 + M[7] * y + M[8], w1 = M[6] * (width - 1) + M[7] * y + M[8];
    if (w0 > 0 === w1 > 0 && w0 !== 0 && w1 !== 0) {
      let left = 0;
      while (left < width && !covered(left, y)) left++;
      if (left === width) continue;
      let right = width - 1;
      while (!covered(right, y)) right--;
      out.fill(1, row + left, row + right + 1);
    } else {
      for (let x = 0; x < width; x++) if (covered(x, y)) out[row + x] = 1;
    }
  }
  return valid;
}
