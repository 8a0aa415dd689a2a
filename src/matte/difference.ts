/**
 * The full-resolution difference d = |I − B| between an image and its plate, as the classic engine
 * reads it: samples for the noise level, and block maxima on the working grid (the view of d in
 * which a one-pixel strand survives). Plain loops on the buffers, no OpenCV (no library computes a
 * pooled maximum of a colour distance without first storing the distance plane): a video's prior
 * thread computes it for a still plate's frames, beside the model, without loading OpenCV.
 */
import { createPlane, type ImageF32, type Plane } from '../image.js';
import { f64 } from '../alloc.js';

/** Squared colour distance of two RGB images at sample index i (pixel · 3). */
export function distance2(a: Float32Array, b: Float32Array, i: number): number {
  const dr = a[i]! - b[i]!, dg = a[i + 1]! - b[i + 1]!, db = a[i + 2]! - b[i + 2]!;
  return dr * dr + dg * dg + db * db;
}

/** d at one pixel, rounded to a float as a stored plane would hold it. */
export function distanceAt(a: Float32Array, b: Float32Array, p: number): number {
  return Math.fround(Math.sqrt(distance2(a, b, p * 3) / 3));
}

/** 50k samples set a median to well under a percent; more only cost time. */
export function sampleStep(pixels: number): number {
  return Math.max(1, Math.floor(pixels / 50000));
}

/**
 * d computed elsewhere for an image and its plate: `samples[k]` is d at pixel k · step (step =
 * sampleStep(pixels)), NaN where the plate does not cover that pixel (the noise level leaves those
 * out, as the engine's own difference does), `weak` its block maxima on the engine's working grid.
 */
export interface PlateDifference {
  step: number;
  samples: Float32Array;
  weak: Plane;
}

/**
 * Block maxima of d on `out`'s grid. The squared distance is pooled and the root taken once a cell:
 * d's float rounding and root are non-decreasing, so the cell's maximum is the same number.
 */
export function poolMaxima(a: Float32Array, b: Float32Array, width: number, height: number, out: Plane): void {
  const w = out.width, h = out.height, o = out.data, sy = h / height;
  // Column x falls in cell floor(x · w / width): cell cx spans columns [start[cx], start[cx + 1]).
  const start = new Int32Array(w + 1);
  for (let x = width - 1; x >= 0; x--) start[Math.min(w - 1, Math.floor(x * (w / width)))] = x;
  start[w] = width;
  const best = f64(w * h), line = f64(width);
  for (let y = 0; y < height; y++) {
    // A row's squared distances first (independent, vectorisable work), then its cells' maxima.
    for (let x = 0, i = y * width * 3; x < width; x++, i += 3) line[x] = distance2(a, b, i);
    const row = Math.min(h - 1, Math.floor(y * sy)) * w;
    for (let cx = 0; cx < w; cx++) {
      let m = best[row + cx]!;
      for (let x = start[cx]!, end = start[cx + 1]!; x < end; x++) if (line[x]! > m) m = line[x]!;
      best[row + cx] = m;
    }
  }
  for (let q = 0; q < o.length; q++) o[q] = Math.sqrt(best[q]! / 3);
}

/**
 * d's samples and its maxima on a `grid` (see PlateDifference), for a plate that covers the image
 * where `valid` (default: everywhere) is above one half: a moving camera's plate, warped, leaves
 * parts uncovered.
 */
export function plateDifference(image: ImageF32, plate: ImageF32, grid: { width: number; height: number }, valid?: Plane): PlateDifference {
  const { width, height } = image;
  const n = width * height, step = sampleStep(n);
  const samples = new Float32Array(Math.ceil(n / step));
  for (let p = 0, k = 0; p < n; p += step, k++) samples[k] = valid && valid.data[p]! <= 0.5 ? NaN : distanceAt(image.data, plate.data, p);
  const weak = createPlane(grid.width, grid.height);
  poolMaxima(image.data, plate.data, width, height, weak);
  return { step, samples, weak };
}
