/**
 * Morphology, filtering and resampling on planes, through OpenCV.js.
 * Every function is pure: it copies its inputs into Mats, frees them, and returns new planes.
 */
import { channelWise, cv, withMats, matU8FromPlane, planeFromMatU8 } from './cv.js';
import { createPlane, type ImageF32, type Plane } from './image.js';
import { f32Copy, i32Copy } from './alloc.js';

function ellipse(size: number) {
  const c = cv();
  return c.getStructuringElement(c.MORPH_ELLIPSE, new c.Size(size, size));
}

function morph(op: 'erode' | 'dilate', plane: Plane, kernel: number, iterations: number): Plane {
  if (iterations <= 0) return binarize(plane);
  const c = cv();
  return withMats((t) => {
    const src = t(matU8FromPlane(c, plane));
    const dst = t(new c.Mat());
    const k = t(ellipse(kernel));
    c[op](src, dst, k, new c.Point(-1, -1), iterations, c.BORDER_CONSTANT, new c.Scalar(0));
    return planeFromMatU8(dst);
  });
}

/** Binary erosion of (plane > 0.5) with an elliptical kernel, `iterations` times. */
export function erode(plane: Plane, kernel: number, iterations = 1): Plane {
  return morph('erode', plane, kernel, iterations);
}

/** Binary dilation of (plane > 0.5) with an elliptical kernel, `iterations` times. */
export function dilate(plane: Plane, kernel: number, iterations = 1): Plane {
  return morph('dilate', plane, kernel, iterations);
}

/**
 * Distance (px) from every pixel to the nearest pixel where `inside` is false, via OpenCV's
 * distance transform: a disc dilation or erosion of any radius costs the same.
 */
function distanceTo(plane: Plane, inside: boolean): Float32Array {
  const c = cv();
  return withMats((t) => {
    const src = t(matU8FromPlane(c, plane, 0.5, !inside));
    const dst = t(new c.Mat());
    c.distanceTransform(src, dst, c.DIST_L2, 5);
    return f32Copy(dst.data32F);
  });
}

/** Distance (px) from every pixel to the nearest pixel of (plane > 0.5); 0 on the plane itself. */
export function distanceOutside(plane: Plane): Plane {
  return { width: plane.width, height: plane.height, channels: 1, data: distanceTo(plane, false) } as Plane;
}

/** Dilation by a disc of the given radius, in one pass whatever the radius. */
export function dilateDisc(plane: Plane, radius: number): Plane {
  if (radius < 1) return binarize(plane);
  const dist = distanceTo(plane, false);
  const out = createPlane(plane.width, plane.height);
  for (let i = 0; i < dist.length; i++) out.data[i] = dist[i]! <= radius ? 1 : 0;
  return out;
}

export function erodeDisc(plane: Plane, radius: number): Plane {
  if (radius < 1) return binarize(plane);
  const dist = distanceTo(plane, true);
  const out = createPlane(plane.width, plane.height);
  for (let i = 0; i < dist.length; i++) out.data[i] = dist[i]! > radius ? 1 : 0;
  return out;
}

export function binarize(plane: Plane, threshold = 0.5): Plane {
  const out = createPlane(plane.width, plane.height);
  for (let i = 0; i < out.data.length; i++) out.data[i] = plane.data[i]! > threshold ? 1 : 0;
  return out;
}

/** Gaussian blur of any float image; kernel size is forced odd. */
export function gaussianBlur<T extends ImageF32>(image: T, kernel: number, sigma = 0): T {
  const c = cv();
  const k = Math.max(1, kernel | 1);
  return channelWise(c, image, (src, dst) => c.GaussianBlur(src, dst, new c.Size(k, k), sigma, sigma, c.BORDER_REFLECT)) as T;
}

/** Normalised box filter (mean over a (2r+1)^2 window), the building block of the guided filter. */
export function boxMean<T extends ImageF32>(image: T, radius: number): T {
  const c = cv();
  const k = 2 * radius + 1;
  return channelWise(c, image, (src, dst) => c.blur(src, dst, new c.Size(k, k), new c.Point(-1, -1), c.BORDER_REFLECT)) as T;
}

/**
 * Bilinear (upsampling) or area (downsampling) resize of any float image; written into `into` when
 * it is given and of the result's length (a buffer kept for reuse; not for a large colour image).
 */
export function resize<T extends ImageF32>(image: T, width: number, height: number, into?: Float32Array): T {
  if (image.width === width && image.height === height) return image;
  const c = cv();
  const shrinking = width < image.width && height < image.height;
  return channelWise(c, image, (src, dst) => c.resize(src, dst, new c.Size(width, height), 0, 0, shrinking ? c.INTER_AREA : c.INTER_LINEAR), into) as T;
}

export interface Component { label: number; area: number; left: number; top: number; width: number; height: number }

/** 8-connected components of (plane > threshold): the label map and per-component statistics. */
export function components(plane: Plane, threshold = 0.5): { labels: Int32Array; stats: Component[] } {
  const c = cv();
  return withMats((t) => {
    const src = t(matU8FromPlane(c, plane, threshold));
    const labels = t(new c.Mat());
    const stats = t(new c.Mat());
    const centroids = t(new c.Mat());
    const n = c.connectedComponentsWithStats(src, labels, stats, centroids, 8, c.CV_32S);
    const s = stats.data32S as Int32Array;
    const list: Component[] = [];
    for (let l = 1; l < n; l++) {
      list.push({ label: l, left: s[l * 5]!, top: s[l * 5 + 1]!, width: s[l * 5 + 2]!, height: s[l * 5 + 3]!, area: s[l * 5 + 4]! });
    }
    return { labels: i32Copy(labels.data32S), stats: list };
  });
}

/** Keeps the components for which `keep` says yes; returns a binary plane. */
export function keepComponents(plane: Plane, keep: (c: Component, labels: Int32Array) => boolean, threshold = 0.5): Plane {
  const { labels, stats } = components(plane, threshold);
  const kept = new Uint8Array(stats.length + 1);
  for (const s of stats) if (keep(s, labels)) kept[s.label] = 1;
  const out = createPlane(plane.width, plane.height);
  for (let i = 0; i < labels.length; i++) out.data[i] = kept[labels[i]!]!;
  return out;
}

export function largestComponent(plane: Plane, threshold = 0.5): Plane {
  const { stats } = components(plane, threshold);
  if (!stats.length) return createPlane(plane.width, plane.height);
  const best = stats.reduce((a, b) => (b.area > a.area ? b : a));
  return keepComponents(plane, (s) => s.label === best.label, threshold);
}

/** Fills the holes of a binary mask: background not reachable from the border becomes foreground. */
export function fillHoles(plane: Plane): Plane {
  const inverse = createPlane(plane.width, plane.height);
  for (let i = 0; i < inverse.data.length; i++) inverse.data[i] = plane.data[i]! > 0.5 ? 0 : 1;
  const { labels, stats } = components(inverse);
  const w = plane.width, h = plane.height;
  const touches = new Uint8Array(stats.length + 1);
  for (let x = 0; x < w; x++) { touches[labels[x]!] = 1; touches[labels[(h - 1) * w + x]!] = 1; }
  for (let y = 0; y < h; y++) { touches[labels[y * w]!] = 1; touches[labels[y * w + w - 1]!] = 1; }
  const out = createPlane(w, h);
  for (let i = 0; i < out.data.length; i++) {
    out.data[i] = plane.data[i]! > 0.5 || (labels[i]! > 0 && !touches[labels[i]!]) ? 1 : 0;
  }
  return out;
}
