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
  bytesToUnit(bytes, data);
  return { width, height, channels, data };
}

/** v / 255 for every byte value, as the float that `v * (1 / 255)` rounds to. */
const UNIT = Float32Array.from({ length: 256 }, (_, v) => v * (1 / 255));

/**
 * Bytes to [0, 1] floats through the table, four a step: about half the time of a multiply per
 * byte (a 720p frame, 2.8 M bytes: ~3 against ~5.5 ms; a video converts every frame), same floats.
 */
function bytesToUnit(bytes: Uint8Array | Uint8ClampedArray, out: Float32Array): void {
  const n = bytes.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    out[i] = UNIT[bytes[i]!]!; out[i + 1] = UNIT[bytes[i + 1]!]!; out[i + 2] = UNIT[bytes[i + 2]!]!; out[i + 3] = UNIT[bytes[i + 3]!]!;
  }
  for (; i < n; i++) out[i] = UNIT[bytes[i]!]!;
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

/** A rectangle [x0, y0, x1, y1) of pixels. */
export type Rect = readonly [number, number, number, number];

/**
 * Zeroes `out` (`stride` bytes a pixel, rows `width` pixels) outside `within` and calls `row(y, x0, x1)`
 * for each row of it: where the caller knows that every sample outside is 0, the conversions
 * below read and convert only the rectangle (a subject's rectangle is often half the frame).
 */
function eachRowOf(out: Uint8Array, width: number, height: number, stride: number, within: Rect, row: (y: number, x0: number, x1: number) => void): void {
  const x0 = Math.max(0, within[0]), y0 = Math.max(0, within[1]), x1 = Math.min(width, within[2]), y1 = Math.min(height, within[3]);
  if (x1 <= x0 || y1 <= y0) { out.fill(0); return; }
  out.fill(0, 0, y0 * width * stride);
  for (let y = y0; y < y1; y++) {
    out.fill(0, y * width * stride, (y * width + x0) * stride);
    row(y, x0, x1);
    out.fill(0, (y * width + x1) * stride, (y + 1) * width * stride);
  }
  out.fill(0, y1 * width * stride);
}

/** Samples [from, to) of `d` as 8-bit, rounded and clamped, into the same places of `out`. */
function bytesOf(d: Float32Array, out: Uint8Array, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const v = d[i]!;
    // (v·255 + 0.5) truncated is Math.round for the positive values that reach it, and cheaper.
    out[i] = v <= 0 ? 0 : v >= 1 ? 255 : (v * 255 + 0.5) | 0;
  }
}

/**
 * 8-bit samples, rounded and clamped; written into `into` when it is given and of that length (a
 * buffer kept for reuse). `within`: every sample outside this rectangle is 0 (an α's support).
 */
export function toBytes(image: ImageF32, into?: Uint8Array, within?: Rect): Uint8Array {
  const out = into && into.length === image.data.length ? into : new Uint8Array(image.data.length);
  const d = image.data, c = image.channels, w = image.width;
  if (!within) bytesOf(d, out, 0, d.length);
  else eachRowOf(out, w, image.height, c, within, (y, x0, x1) => bytesOf(d, out, (y * w + x0) * c, (y * w + x1) * c));
  return out;
}

/** Pixels [from, to) of `rgbaBytes`. */
function rgbaRun(f: Float32Array, a: Float32Array, out: Uint8Array, words: Uint32Array | undefined, from: number, to: number): void {
  const byte = (v: number) => (v <= 0 ? 0 : v >= 1 ? 255 : (v * 255 + 0.5) | 0);
  for (let p = from; p < to; p++) {
    const ap = a[p]!;
    if (ap <= 0 && words) { words[p] = 0; continue; }
    out[p * 4] = byte(f[p * 3]!); out[p * 4 + 1] = byte(f[p * 3 + 1]!); out[p * 4 + 2] = byte(f[p * 3 + 2]!); out[p * 4 + 3] = byte(ap);
  }
}

/**
 * 8-bit RGBA (straight alpha) from a colour image and its alpha plane, without a float RGBA copy; into `into` as `toBytes`.
 * `clearAsZero`: where alpha is 0 the pixel is four zero bytes whatever the colour (a matte's F is 0
 * there anyway), written without reading the colour; `within` (with it): alpha is 0 outside this rectangle.
 */
export function rgbaBytes(foreground: ImageF32, alpha: ImageF32, into?: Uint8Array, clearAsZero = false, within?: Rect): Uint8Array {
  const { width, height } = foreground, n = width * height;
  const out = into && into.length === n * 4 ? into : new Uint8Array(n * 4);
  const f = foreground.data, a = alpha.data;
  // Often half a frame: one word written, the colour not read.
  const words = clearAsZero && out.byteOffset % 4 === 0 ? new Uint32Array(out.buffer, out.byteOffset, n) : undefined;
  if (within && clearAsZero) eachRowOf(out, width, height, 4, within, (y, x0, x1) => rgbaRun(f, a, out, words, y * width + x0, y * width + x1));
  else rgbaRun(f, a, out, words, 0, n);
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
export function supportRect(plane: Plane, threshold: number, within?: Rect): [number, number, number, number] | undefined {
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
