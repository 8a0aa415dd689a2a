/** Image decoding at the pipeline's edge: file or bytes in, a float RGB image out. */
import { open, stat } from 'node:fs/promises';
import sharp, { type Metadata } from "sharp";
import { CleanplateError } from '../errors.js';
import { DEFAULT_MAX_PIXELS, fromBytes, MIN_SIDE, type ImageF32 } from '../image.js';

// The limits are the core's (image.ts), so that the browser's decoder applies the same ones.
export { DEFAULT_MAX_PIXELS, MIN_SIDE };

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
  // sharp would silently take the first frame of an animation; a still is expected (a plate is one
  // picture, and the frames of an animation are what `cleanplate video` is for). GIF is refused above.
  const frames = Math.max(meta.pages ?? 1, meta.format === 'png' ? await apngFrames(input) : 1);
  if (frames > 1) {
    throw new CleanplateError(`animated ${meta.format === 'png' ? 'PNG' : 'WebP'} with ${frames} frames: expected a still image (save the frame you want as PNG, JPEG or WebP)`, name);
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

/**
 * Frames of an animated PNG (its acTL chunk, which must come before the first IDAT), or 1. libvips
 * reads an APNG as its default image and does not report the animation. Reads chunk headers only.
 */
async function apngFrames(input: string | Uint8Array): Promise<number> {
  const file = typeof input === 'string' ? await open(input, 'r').catch(() => undefined) : undefined;
  if (typeof input === 'string' && !file) return 1;
  const read = async (offset: number, length: number): Promise<Uint8Array> => {
    if (typeof input !== 'string') return input.subarray(offset, offset + length);
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await file!.read(buffer, 0, length, offset);
    return buffer.subarray(0, bytesRead);
  };
  try {
    let offset = 8; // PNG signature
    for (let chunk = 0; chunk < 1000; chunk++) {
      const head = await read(offset, 12);
      if (head.length < 12) return 1;
      const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
      const type = String.fromCharCode(head[4]!, head[5]!, head[6]!, head[7]!);
      if (type === 'acTL') return Math.max(1, view.getUint32(8));
      if (type === 'IDAT' || type === 'IEND') return 1;
      offset += 12 + view.getUint32(0);
    }
    return 1;
  } finally {
    await file?.close();
  }
}
