/** Compositing: αF + (1-α)B_new onto an image (scaled to cover) or a flat colour. */
import { CleanplateError } from '../errors.js';
import { createImage, type ImageF32, type Plane } from '../image.js';
import { resize } from '../ops.js';

/** Scales and centre-crops `image` so that it covers width x height (CSS `object-fit: cover`). */
export function resizeCover(image: ImageF32, width: number, height: number): ImageF32 {
  const scale = Math.max(width / image.width, height / image.height);
  const cw = Math.min(image.width, Math.max(1, Math.round(width / scale)));
  const ch = Math.min(image.height, Math.max(1, Math.round(height / scale)));
  const x0 = Math.floor((image.width - cw) / 2), y0 = Math.floor((image.height - ch) / 2);
  const crop = createImage(cw, ch, image.channels);
  for (let y = 0; y < ch; y++) {
    const src = ((y0 + y) * image.width + x0) * image.channels;
    crop.data.set(image.data.subarray(src, src + cw * image.channels), y * cw * image.channels);
  }
  return resize(crop, width, height);
}

export function parseColour(hex: string): [number, number, number] {
  const m = /^#?([0-9a-f]{6}|[0-9a-f]{3})$/i.exec(hex.trim());
  if (!m) throw new CleanplateError(`--color '${hex}' is not a hex colour like #00ff00 or 0f0`);
  const h = m[1]!.length === 3 ? m[1]!.replace(/./g, (c) => c + c) : m[1]!;
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16) / 255) as [number, number, number];
}

export function solidColour(width: number, height: number, rgb: [number, number, number]): ImageF32 {
  const out = createImage(width, height, 3);
  const d = out.data, [r, g, b] = rgb;
  for (let i = 0; i < d.length; i += 3) { d[i] = r; d[i + 1] = g; d[i + 2] = b; }
  return out;
}

/** αF + (1-α)B with straight-alpha F; background must match the size of the foreground. */
export function composite(foreground: ImageF32, alpha: Plane, background: ImageF32): ImageF32 {
  const out = createImage(foreground.width, foreground.height, 3);
  for (let p = 0; p < alpha.data.length; p++) {
    const a = alpha.data[p]!;
    for (let c = 0; c < 3; c++) out.data[p * 3 + c] = a * foreground.data[p * 3 + c]! + (1 - a) * background.data[p * 3 + c]!;
  }
  return out;
}

/** αF + (1-α)C onto a flat colour C: `composite` onto `solidColour`, without that image in memory. */
export function compositeColour(foreground: ImageF32, alpha: Plane, rgb: [number, number, number]): ImageF32 {
  const out = createImage(foreground.width, foreground.height, 3);
  const f = foreground.data, a = alpha.data, o = out.data;
  // As stored in an image's Float32Array, so that the sums equal composite()'s bit for bit.
  const r = Math.fround(rgb[0]), g = Math.fround(rgb[1]), b = Math.fround(rgb[2]);
  for (let p = 0, i = 0; p < a.length; p++, i += 3) {
    const w = a[p]!, v = 1 - w;
    o[i] = w * f[i]! + v * r; o[i + 1] = w * f[i + 1]! + v * g; o[i + 2] = w * f[i + 2]! + v * b;
  }
  return out;
}

/**
 * αF + (1-α)B written straight into 8-bit RGBA (opaque), the same sum as `composite` without a float
 * image in between: a live loop draws it and reuses `out` frame after frame.
 */
export function compositeRgba(foreground: ImageF32, alpha: Plane, background: ImageF32, out: Uint8Array | Uint8ClampedArray): void {
  const f = foreground.data, b = background.data, a = alpha.data;
  for (let p = 0, i = 0, j = 0; p < a.length; p++, i += 3, j += 4) {
    const w = a[p]!, v = 1 - w;
    const r = w * f[i]! + v * b[i]!, g = w * f[i + 1]! + v * b[i + 1]!, bl = w * f[i + 2]! + v * b[i + 2]!;
    out[j] = r <= 0 ? 0 : r >= 1 ? 255 : (r * 255 + 0.5) | 0;
    out[j + 1] = g <= 0 ? 0 : g >= 1 ? 255 : (g * 255 + 0.5) | 0;
    out[j + 2] = bl <= 0 ? 0 : bl >= 1 ? 255 : (bl * 255 + 0.5) | 0;
    out[j + 3] = 255;
  }
}
