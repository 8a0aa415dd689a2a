/**
 * Typed image buffers shared by every pipeline stage.
 * Pixels are interleaved float32 in [0, 1]: the maths of matting (compositing equation,
 * colour fits, metrics) is done in linear-range floats, and only decode/encode touch bytes.
 */
import { f32, f32Copy } from './alloc.js';

export interface ImageF32 {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  readonly data: Float32Array;
}

/** Default upper bound on decoded pixels: 8K UHD plus headroom (about 40 MP). */
export const DEFAULT_MAX_PIXELS = 7680 * 4320 * 1.2;
/** Smallest side an input may have. */
export const MIN_SIDE = 16;

/** A single-channel image (alpha, prior, masks, differences). */
export type Plane = ImageF32 & { readonly channels: 1 };

export function createImage(width: number, height: number, channels: number, fill = 0): ImageF32 {
  const data = f32(width * height * channels);
  if (fill !== 0) data.fill(fill);
  return { width, height, channels, data };
}

export function createPlane(width: number, height: number, fill = 0): Plane {
  return createImage(width, height, 1, fill) as Plane;
}

export function asPlane(image: ImageF32): Plane {
  if (image.channels !== 1) throw new Error(`expected a single-channel image, got ${image.channels} channels`);
  return image as Plane;
}

export function sameSize(a: { width: number; height: number }, b: { width: number; height: number }): boolean {
  return a.width === b.width && a.height === b.height;
}

/** Floats from 8-bit samples; written into `into` when it is given and of that length (a buffer kept for reuse). */
export function fromBytes(width: number, height: number, channels: number, bytes: Uint8Array | Uint8ClampedArray, into?: Float32Array): ImageF32 {
  const data = into && into.length === bytes.length ? into : new Float32Array(bytes.length);
  const k = 1 / 255;
  for (let i = 0; i < bytes.length; i++) data[i] = bytes[i]! * k;
  return { width, height, channels, data };
}

/**
 * RGB float from 8-bit RGBA (a canvas's ImageData, a video frame's pixels), dropping the alpha byte;
 * written into `out` when it is given and of that size (a live loop reuses one buffer).
 */
export function fromRgba(width: number, height: number, rgba: Uint8Array | Uint8ClampedArray, out?: ImageF32): ImageF32 {
  const n = width * height;
  const target = out && out.width === width && out.height === height && out.channels === 3 ? out : createImage(width, height, 3);
  const d = target.data, k = 1 / 255;
  for (let p = 0, i = 0, j = 0; p < n; p++, i += 4, j += 3) {
    d[j] = rgba[i]! * k; d[j + 1] = rgba[i + 1]! * k; d[j + 2] = rgba[i + 2]! * k;
  }
  return target;
}

/** 8-bit samples, rounded and clamped; written into `into` when it is given and of that length (a buffer kept for reuse). */
export function toBytes(image: ImageF32, into?: Uint8Array): Uint8Array {
  const out = into && into.length === image.data.length ? into : new Uint8Array(image.data.length);
  const d = image.data;
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    // (v·255 + 0.5) truncated is Math.round for the positive values that reach it, and cheaper.
    out[i] = v <= 0 ? 0 : v >= 1 ? 255 : (v * 255 + 0.5) | 0;
  }
  return out;
}

/**
 * 8-bit RGBA (straight alpha) from a colour image and its alpha plane, without a float RGBA copy; into `into` as `toBytes`.
 * `clearAsZero`: where alpha is 0 the pixel is four zero bytes whatever the colour (a matte's F is 0
 * there anyway), written without reading the colour.
 */
export function rgbaBytes(foreground: ImageF32, alpha: ImageF32, into?: Uint8Array, clearAsZero = false): Uint8Array {
  const n = foreground.width * foreground.height;
  const out = into && into.length === n * 4 ? into : new Uint8Array(n * 4);
  const f = foreground.data, a = alpha.data;
  const byte = (v: number) => (v <= 0 ? 0 : v >= 1 ? 255 : (v * 255 + 0.5) | 0);
  // Often half a frame: one word written, the colour not read.
  const words = clearAsZero && out.byteOffset % 4 === 0 ? new Uint32Array(out.buffer, out.byteOffset, n) : undefined;
  for (let p = 0; p < n; p++) {
    const ap = a[p]!;
    if (ap <= 0 && words) { words[p] = 0; continue; }
    out[p * 4] = byte(f[p * 3]!); out[p * 4 + 1] = byte(f[p * 3 + 1]!); out[p * 4 + 2] = byte(f[p * 3 + 2]!); out[p * 4 + 3] = byte(ap);
  }
  return out;
}

/** Rec. 601 luma, the grey the paper's motion stack and feature detectors use. */
export function toGray(image: ImageF32): Plane {
  if (image.channels === 1) return image as Plane;
  const out = createPlane(image.width, image.height);
  const d = image.data, c = image.channels;
  for (let p = 0, i = 0; p < out.data.length; p++, i += c) {
    out.data[p] = 0.299 * d[i]! + 0.587 * d[i + 1]! + 0.114 * d[i + 2]!;
  }
  return out;
}

export function mapPlane(a: Plane, fn: (v: number, i: number) => number): Plane {
  const out = createPlane(a.width, a.height);
  for (let i = 0; i < a.data.length; i++) out.data[i] = fn(a.data[i]!, i);
  return out;
}

export function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

export function smoothstep(edge0: number, edge1: number, x: number): number {
  const t = clamp01((x - edge0) / (edge1 - edge0));
  return t * t * (3 - 2 * t);
}

/** The q-quantile of a sample (0 for an empty one). */
/**
 * The value at rank floor(q·n) of `values` (as if sorted ascending), found by quickselect on a copy:
 * O(n) instead of a sort's O(n log n), and the same answer.
 */
export function quantile(values: Float32Array, q: number): number {
  const n = values.length;
  if (!n) return 0;
  const a = f32Copy(values);
  const k = Math.min(n - 1, Math.max(0, Math.floor(q * n)));
  let lo = 0, hi = n - 1;
  while (lo < hi) {
    // Median of three as the pivot: sorted or constant runs stay O(n).
    const mid = (lo + hi) >> 1;
    const x = a[lo]!, y = a[mid]!, z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) { const tmp = a[i]!; a[i] = a[j]!; a[j] = tmp; i++; j--; }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

/** Mean of a plane where mask > 0.5 (or everywhere when no mask). */
export function meanOf(a: Plane, mask?: Plane): number {
  let s = 0, n = 0;
  for (let i = 0; i < a.data.length; i++) {
    if (mask && mask.data[i]! <= 0.5) continue;
    s += a.data[i]!; n++;
  }
  return n ? s / n : 0;
}

/** The rectangle [x0, x1) x [y0, y1) of an image, copied. */
export function cropRect<T extends ImageF32>(image: T, x0: number, y0: number, x1: number, y1: number): T {
  const c = image.channels, w = x1 - x0;
  const out = f32(w * (y1 - y0) * c);
  for (let y = y0; y < y1; y++) out.set(image.data.subarray((y * image.width + x0) * c, (y * image.width + x1) * c), (y - y0) * w * c);
  return { width: w, height: y1 - y0, channels: c, data: out } as T;
}

/**
 * Bounding rectangle [x0, y0, x1, y1) of the pixels above `threshold`, or undefined when there are
 * none; only the pixels inside `within` are looked at, when the caller knows none lies outside it.
 */
export function supportRect(plane: Plane, threshold: number, within?: readonly [number, number, number, number]): [number, number, number, number] | undefined {
  const { width, height } = plane;
  const [wx0, wy0, wx1, wy1] = within ?? [0, 0, width, height];
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = wy0; y < wy1; y++) {
    const row = y * width;
    for (let x = wx0; x < wx1; x++) {
      if (plane.data[row + x]! > threshold) { if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; y1 = y; }
    }
  }
  return x1 < 0 ? undefined : [x0, y0, x1 + 1, y1 + 1];
}
