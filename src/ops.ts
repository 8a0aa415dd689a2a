/**
 * Morphology, filtering and resampling on planes, through OpenCV.js.
 * Every function is pure: it copies its inputs into Mats, frees them, and returns new planes.
 */
import { channelWise, cv, withMats, matU8FromPlane, planeFromMatU8, type Cv } from './cv.js';
import { createPlane, type ImageF32, type Plane } from './image.js';
import { f32Copy, i32Copy, u8 } from './alloc.js';

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
 * A binary mask, one byte a pixel (1 inside, 0 outside): what OpenCV's distance transform and
 * labelling read. A chain of morphology on masks (the classic engine's decisions) copies each into
 * OpenCV's memory as it is, instead of thresholding a float plane into a new byte image per call.
 */
export interface Mask { readonly width: number; readonly height: number; readonly data: Uint8Array }

export function createMask(width: number, height: number): Mask {
  return { width, height, data: u8(width * height) };
}

/** 1 where the plane is above `threshold`. */
export function maskOf(plane: Plane, threshold = 0.5): Mask {
  const out = createMask(plane.width, plane.height), o = out.data, d = plane.data;
  for (let i = 0; i < o.length; i++) o[i] = d[i]! > threshold ? 1 : 0;
  return out;
}

/** The mask as a float plane of 0 and 1. */
export function planeOf(mask: Mask): Plane {
  const out = createPlane(mask.width, mask.height), o = out.data, d = mask.data;
  for (let i = 0; i < o.length; i++) o[i] = d[i]!;
  return out;
}

/** The mask in a new 8-bit Mat (inverted: 1 outside). */
function matFromMask(c: Cv, mask: Mask, invert: boolean): Cv {
  const mat = new c.Mat(mask.height, mask.width, c.CV_8UC1);
  const out = mat.data as Uint8Array;
  if (!invert) out.set(mask.data);
  else for (let i = 0; i < out.length; i++) out[i] = mask.data[i]! ? 0 : 1;
  return mat;
}

/**
 * `fn` of the distance (px) from every pixel to the nearest pixel where `inside` is false (inside:
 * the mask; else its complement), via OpenCV's distance transform: a disc dilation or erosion of
 * any radius costs the same. `fn` reads the distances in OpenCV's memory, freed after it returns.
 */
function withDistance<T>(mask: Mask, inside: boolean, fn: (distance: Float32Array) => T): T {
  const c = cv();
  return withMats((t) => {
    const src = t(matFromMask(c, mask, !inside));
    const dst = t(new c.Mat());
    c.distanceTransform(src, dst, c.DIST_L2, 5);
    return fn(dst.data32F as Float32Array);
  });
}

/** Distance (px) from every pixel to the nearest pixel of the mask; 0 on the mask itself. */
export function maskDistance(mask: Mask): Float32Array {
  return withDistance(mask, false, f32Copy);
}

/**
 * Below this radius a disc is a kernel of at most 5x5, and OpenCV's erode/dilate with it beats
 * the distance transform several times (a 512x288 mask: ~0.9 against ~3 ms, copies included).
 */
const KERNEL_RADIUS_MAX = 3;

const chamferKernels = new Map<number, number[]>();

/**
 * The offsets within `radius` by the distance transform's own metric (DIST_L2 with a 5x5 mask, a
 * chamfer distance: 1, 1.4 and 2.1969 a step), read off OpenCV's transform of one pixel, so that
 * erode/dilate with them give what thresholding the transform gives, bit for bit (tests compare).
 * Returned as 5x5 bytes (row-major), 1 inside.
 */
function chamferKernel(radius: number): number[] {
  let k = chamferKernels.get(radius);
  if (k) return k;
  const c = cv();
  k = withMats((t) => {
    const src = t(new c.Mat(5, 5, c.CV_8UC1, new c.Scalar(1)));
    (src.data as Uint8Array)[12] = 0;
    const dst = t(new c.Mat());
    c.distanceTransform(src, dst, c.DIST_L2, 5);
    return Array.from(dst.data32F as Float32Array, (d) => (d <= radius ? 1 : 0));
  });
  chamferKernels.set(radius, k);
  return k;
}

/** Erosion or dilation of a mask by a disc of radius < KERNEL_RADIUS_MAX: one OpenCV call with its chamfer kernel. */
function morphMask(op: 'erode' | 'dilate', mask: Mask, radius: number): Mask {
  const c = cv();
  const out = createMask(mask.width, mask.height);
  withMats((t) => {
    const src = t(matFromMask(c, mask, false));
    const dst = t(new c.Mat());
    const kernel = t(c.matFromArray(5, 5, c.CV_8UC1, chamferKernel(radius)));
    // Outside the image counts as neither inside nor outside the mask: the distance transform
    // measures only to pixels of the image, and the default borders of erode/dilate do the same.
    c[op](src, dst, kernel);
    out.data.set(dst.data as Uint8Array);
  });
  return out;
}

/** Dilation by a disc of the given radius, in one pass whatever the radius. */
export function dilateMask(mask: Mask, radius: number): Mask {
  return discMorph('dilate', mask, radius);
}

/** Erosion by a disc of the given radius. */
export function erodeMask(mask: Mask, radius: number): Mask {
  return discMorph('erode', mask, radius);
}

/** A copy below radius 1, the chamfer kernel below KERNEL_RADIUS_MAX, the distance transform beyond. */
function discMorph(op: 'erode' | 'dilate', mask: Mask, radius: number): Mask {
  if (radius < 1) { const out = createMask(mask.width, mask.height); out.data.set(mask.data); return out; }
  return radius < KERNEL_RADIUS_MAX ? morphMask(op, mask, radius) : morphMaskByDistance(op, mask, radius);
}

/**
 * Erosion or dilation by thresholding the distance transform, at any radius of 1 or more: what
 * dilateMask and erodeMask do from KERNEL_RADIUS_MAX on, and what their kernel path must equal
 * below it (exported for the tests).
 */
export function morphMaskByDistance(op: 'erode' | 'dilate', mask: Mask, radius: number): Mask {
  const out = createMask(mask.width, mask.height);
  const o = out.data;
  if (op === 'dilate') withDistance(mask, false, (dist) => { for (let i = 0; i < o.length; i++) o[i] = dist[i]! <= radius ? 1 : 0; });
  else withDistance(mask, true, (dist) => { for (let i = 0; i < o.length; i++) o[i] = dist[i]! > radius ? 1 : 0; });
  return out;
}

/** Distance (px) from every pixel to the nearest pixel of (plane > 0.5); 0 on the plane itself. */
export function distanceOutside(plane: Plane): Plane {
  return { width: plane.width, height: plane.height, channels: 1, data: maskDistance(maskOf(plane)) } as Plane;
}

/** Dilation of (plane > 0.5) by a disc of the given radius, in one pass whatever the radius. */
export function dilateDisc(plane: Plane, radius: number): Plane {
  return planeOf(dilateMask(maskOf(plane), radius));
}

/** Erosion of (plane > 0.5) by a disc of the given radius. */
export function erodeDisc(plane: Plane, radius: number): Plane {
  return planeOf(erodeMask(maskOf(plane), radius));
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

/**
 * `resize` remembered per source image and size, for images nobody writes to while it is in use:
 * a photo's prior, colour fit and engine each see the photo (and its prior, and its plate's
 * coverage) at 512 px, a ~18 ms shrink of a 1080p colour image each time, the same bits each time.
 * What it hands out is shared: read it, never write to it. An image changed in place after its
 * shrink was made would get the old shrink, so a caller gives it only images that stay as they are.
 */
export class Shrinks {
  private readonly made = new Map<ImageF32, ImageF32[]>();

  resize<T extends ImageF32>(image: T, width: number, height: number): T {
    if (image.width === width && image.height === height) return image;
    let sizes = this.made.get(image);
    if (!sizes) this.made.set(image, (sizes = []));
    const known = sizes.find((s) => s.width === width && s.height === height);
    if (known) return known as T;
    const small = resize(image, width, height);
    sizes.push(small);
    return small;
  }
}

/** 8-bit RGB resized as `resize` resizes floats: area when shrinking, else bilinear. */
export function resizeBytes(bytes: Uint8Array, width: number, height: number, w: number, h: number): Uint8Array {
  if (w === width && h === height) return bytes;
  const c = cv();
  return withMats((t) => {
    const src = t(new c.Mat(height, width, c.CV_8UC3));
    (src.data as Uint8Array).set(bytes);
    const dst = t(new c.Mat());
    c.resize(src, dst, new c.Size(w, h), 0, 0, w < width && h < height ? c.INTER_AREA : c.INTER_LINEAR);
    return Uint8Array.from(dst.data as Uint8Array);
  });
}

export interface Component { label: number; area: number; left: number; top: number; width: number; height: number }

/** 8-connected components of the mask: the label map and per-component statistics. */
export function maskComponents(mask: Mask): { labels: Int32Array; stats: Component[] } {
  const c = cv();
  return withMats((t) => {
    const src = t(matFromMask(c, mask, false));
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

/** 8-connected components of (plane > threshold): the label map and per-component statistics. */
export function components(plane: Plane, threshold = 0.5): { labels: Int32Array; stats: Component[] } {
  return maskComponents(maskOf(plane, threshold));
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

/** Fills the holes of a mask: background not reachable from the border becomes foreground. */
export function fillMaskHoles(mask: Mask): Mask {
  const w = mask.width, h = mask.height, m = mask.data;
  const inverse = createMask(w, h);
  for (let i = 0; i < m.length; i++) inverse.data[i] = m[i]! ? 0 : 1;
  const { labels, stats } = maskComponents(inverse);
  const touches = new Uint8Array(stats.length + 1);
  for (let x = 0; x < w; x++) { touches[labels[x]!] = 1; touches[labels[(h - 1) * w + x]!] = 1; }
  for (let y = 0; y < h; y++) { touches[labels[y * w]!] = 1; touches[labels[y * w + w - 1]!] = 1; }
  const out = createMask(w, h);
  for (let i = 0; i < m.length; i++) out.data[i] = m[i]! || (labels[i]! > 0 && !touches[labels[i]!]) ? 1 : 0;
  return out;
}

/** Fills the holes of (plane > 0.5): background not reachable from the border becomes foreground. */
export function fillHoles(plane: Plane): Plane {
  return planeOf(fillMaskHoles(maskOf(plane)));
}
