/** Image decoding at the pipeline's edge: file or bytes in, a float RGB image out. */
import { stat } from 'node:fs/promises';
import sharp, { type Metadata } from "sharp";
import { CleanplateError } from '../errors.js';
import { fromBytes, type ImageF32 } from '../image.js';

/** Default upper bound on decoded pixels: 8K UHD plus headroom (about 40 MP). */
export const DEFAULT_MAX_PIXELS = 7680 * 4320 * 1.2;
export const MIN_SIDE = 16;

export interface DecodeOptions {
  /** Refuse images with more pixels than this (checked on the header, before decoding). */
  maxPixels?: number;
  /** Name used in error messages when decoding from bytes. */
  name?: string;
}

/**
 * Reads PNG, JPEG or WebP (8 or 16 bit, grey, RGB or RGBA) into float RGB in [0, 1].
 * EXIF orientation is applied, so the pixels are as a viewer shows them. An alpha channel is
 * dropped: cleanplate computes its own alpha, and the colour under a transparent pixel is
 * still the best guess of what the camera saw.
 */
export async function decodeImage(input: string | Uint8Array, options: DecodeOptions = {}): Promise<ImageF32> {
  const name = typeof input === 'string' ? input : options.name ?? '<buffer>';
  const maxPixels = Math.floor(options.maxPixels ?? DEFAULT_MAX_PIXELS);
  if (typeof input === 'string') {
    const info = await stat(input).catch(() => undefined);
    if (!info) throw new CleanplateError('file not found', name);
    if (!info.isFile()) throw new CleanplateError('not a regular file', name);
  }
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch {
    throw new CleanplateError('not a readable image (expected PNG, JPEG or WebP)', name);
  }
  if (!meta.format || !['png', 'jpeg', 'webp'].includes(meta.format)) {
    throw new CleanplateError(`unsupported image format '${meta.format ?? 'unknown'}' (expected PNG, JPEG or WebP)`, name);
  }
  const width = meta.width ?? 0, height = meta.height ?? 0;
  if (width * height > maxPixels) {
    throw new CleanplateError(`image is ${width}x${height} (${(width * height / 1e6).toFixed(1)} MP), over the limit of ${(maxPixels / 1e6).toFixed(1)} MP`, name);
  }
  if (width < MIN_SIDE || height < MIN_SIDE) {
    throw new CleanplateError(`image is ${width}x${height}, too small to matte (at least ${MIN_SIDE}x${MIN_SIDE})`, name);
  }
  try {
    const { data, info } = await sharp(input, { limitInputPixels: maxPixels, failOn: 'truncated' })
      .rotate()
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded ${info.channels} channels`);
    return fromBytes(info.width, info.height, 3, data);
  } catch (err) {
    throw new CleanplateError(`corrupt or truncated image (${String((err as Error).message).split('\n')[0]})`, name);
  }
}
