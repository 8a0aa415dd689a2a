/**
 * A prior that is a few frames old, made fit for the frame at hand.
 *
 * The live app mattes each camera frame with the newest prior the person model has finished, which
 * was computed on a frame one to a few frames back (the model is slower than the camera). While the
 * person moves, that prior still covers where they were: the classic engine takes the interior of a
 * prior silhouette the plate supports as opaque for sure, so the place they just left would show as
 * a patch of background kept beside them (measured: a prior 48 px behind a subject at 640x360 keeps
 * 6.9% of the background, against 0.4% with the frame's own prior).
 *
 * The fix uses what the matte worker knows for certain: a pixel that changed since the prior's frame
 * and now shows the plate is background the subject has left, and the prior is cleared there,
 * when that place joins, through pixels that show the plate, the background outside the prior (a
 * part of the subject whose colour happens to be the wall's is an island inside them, and stays).
 * Everything else keeps the prior: a pixel that changed but does not show the plate is the subject
 * moving within itself (a face, a hand) or arriving, where the plate difference decides anyway; a
 * pixel that did not change kept what the prior saw. Both tests run on small images (a few
 * thousand pixels, averaged from the frame, so the sensor noise shrinks with the averaging).
 */
import { createPlane, type ImageF32, type Plane } from '../image.js';
import { components, resize } from '../ops.js';

/** Long side of the grid the change and the plate's agreement are measured on. */
export const STALE_GRID = 160;

/**
 * Mean absolute difference per channel (0..1) that counts as a change, or as not showing the plate,
 * on the averaged grid: ~10 levels of 255, several times a webcam's noise after averaging 4x4 pixels
 * (the synthetic clip's 0.006 becomes 0.0015), and well below a person against a wall.
 */
const CHANGED = 0.04;
const SHOWS_PLATE = 0.04;
/** Smallest freed area that is cleared, in grid cells (at 640x360 a cell is 4x4 pixels). */
const MIN_LEFT_CELLS = 8;

/** The size of the grid for a frame of width x height. */
export function staleGridSize(width: number, height: number): { width: number; height: number } {
  const scale = Math.min(1, STALE_GRID / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** A frame (or the plate) shrunk to the grid, by area averaging. */
export function staleGridImage(image: ImageF32): ImageF32 {
  const { width, height } = staleGridSize(image.width, image.height);
  const small = resize(image, width, height);
  // resize hands back the image itself when it is already that small: the caller keeps a copy.
  return small === image ? { ...image, data: image.data.slice() } : small;
}

function meanAbs(a: Float32Array, b: Float32Array, p: number): number {
  return (Math.abs(a[p * 3]! - b[p * 3]!) + Math.abs(a[p * 3 + 1]! - b[p * 3 + 1]!) + Math.abs(a[p * 3 + 2]! - b[p * 3 + 2]!)) / 3;
}

/**
 * Where the subject has left since `then`, on the grid: 1 where the pixel changed from `then` to
 * `now`, `now` shows the plate, and it joins the background outside `prior` (the prior computed on
 * `then`, any size) through pixels that show the plate. `then`, `now` and `plate` are grid images
 * (staleGridImage). Returns undefined when no pixel qualifies (the prior needs nothing done to it).
 */
export function leftSince(then: ImageF32, now: ImageF32, plate: ImageF32, prior: Plane): Plane | undefined {
  const { width, height } = now;
  if (then.width !== width || then.height !== height || plate.width !== width || plate.height !== height) {
    throw new Error(`leftSince: grids differ (${then.width}x${then.height}, ${width}x${height}, ${plate.width}x${plate.height})`);
  }
  const n = width * height;
  // Candidates (changed and showing the plate) go straight into `left`; they stay where their
  // plate-like region reaches outside the prior.
  const shows = createPlane(width, height), left = createPlane(width, height);
  let candidates = 0;
  for (let p = 0; p < n; p++) {
    if (meanAbs(now.data, plate.data, p) >= SHOWS_PLATE) continue;
    shows.data[p] = 1;
    if (meanAbs(now.data, then.data, p) > CHANGED) { left.data[p] = 1; candidates++; }
  }
  if (!candidates) return undefined;
  const { labels, stats } = components(shows);
  const outside = new Uint8Array(stats.length + 1);
  const priorGrid = resize(prior, width, height).data;
  for (let p = 0; p < n; p++) if (shows.data[p]! > 0.5 && priorGrid[p]! < 0.5) outside[labels[p]!] = 1;
  for (let p = 0; p < n; p++) if (left.data[p]! > 0.5 && !outside[labels[p]!]) left.data[p] = 0;
  // Someone leaving frees an area; a few cells along their edge are as likely their own colour
  // matching the wall, where the prior is what keeps them.
  const parts = components(left);
  const big = new Uint8Array(parts.stats.length + 1);
  let any = false;
  for (const s of parts.stats) if (s.area >= MIN_LEFT_CELLS) { big[s.label] = 1; any = true; }
  if (!any) return undefined;
  for (let p = 0; p < n; p++) if (left.data[p]! > 0.5 && !big[parts.labels[p]!]) left.data[p] = 0;
  return left;
}

/** The prior with `left` (a grid plane from leftSince) cleared from it, at the prior's own size. */
export function clearLeft(prior: Plane, left: Plane): Plane {
  const gate = resize(left, prior.width, prior.height);
  const out = createPlane(prior.width, prior.height);
  for (let i = 0; i < out.data.length; i++) out.data[i] = prior.data[i]! * (1 - gate.data[i]!);
  return out;
}
