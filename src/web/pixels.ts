/**
 * The browser's edge for pixels: video frames and decoded pictures into 8-bit RGBA at a given size,
 * and PNG files out. Everything after this is the core's ImageF32.
 */
import { encode } from 'fast-png';

/** The centred crop of a src-sized picture with the aspect ratio of dst (CSS `object-fit: cover`). */
export function coverRect(srcW: number, srcH: number, dstW: number, dstH: number): { x: number; y: number; w: number; h: number } {
  const scale = Math.max(dstW / srcW, dstH / srcH);
  const w = Math.min(srcW, dstW / scale), h = Math.min(srcH, dstH / scale);
  return { x: (srcW - w) / 2, y: (srcH - h) / 2, w, h };
}

const canvases = new Map<string, OffscreenCanvasRenderingContext2D>();

function context(width: number, height: number): OffscreenCanvasRenderingContext2D {
  const key = `${width}x${height}`;
  let ctx = canvases.get(key);
  if (!ctx) {
    const c = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true, alpha: false });
    if (!c) throw new Error('no 2D canvas in this worker');
    ctx = c;
    canvases.set(key, ctx);
  }
  return ctx;
}

/**
 * A video frame's pixels as RGBA at width x height. A frame already of that size is converted by
 * the frame itself into `into` (no canvas, no allocation); any other is scaled to cover on a canvas.
 * The frame is closed.
 */
export async function frameRgba(frame: VideoFrame, width: number, height: number, into?: Uint8Array): Promise<Uint8Array> {
  try {
    if (frame.displayWidth === width && frame.displayHeight === height && frame.codedWidth === width && frame.codedHeight === height) {
      const out = into && into.length === width * height * 4 ? into : new Uint8Array(width * height * 4);
      try {
        await frame.copyTo(out, { format: 'RGBA', colorSpace: 'srgb' } as VideoFrameCopyToOptions);
        return out;
      } catch {
        // A browser without format conversion in copyTo: the canvas below.
      }
    }
    return drawRgba(frame, frame.displayWidth, frame.displayHeight, width, height);
  } finally {
    frame.close();
  }
}

/** Any drawable (a frame, a decoded picture) scaled to cover width x height, as RGBA. */
export function drawRgba(source: CanvasImageSource, srcW: number, srcH: number, width: number, height: number): Uint8Array {
  const ctx = context(width, height);
  const r = coverRect(srcW, srcH, width, height);
  ctx.drawImage(source, r.x, r.y, r.w, r.h, 0, 0, width, height);
  const data = ctx.getImageData(0, 0, width, height).data;
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** A decoded picture at its own size, as RGBA (straight alpha, as decoded). */
export function bitmapRgba(bitmap: ImageBitmap): Uint8Array {
  const c = new OffscreenCanvas(bitmap.width, bitmap.height).getContext('2d', { willReadFrequently: true });
  if (!c) throw new Error('no 2D canvas in this worker');
  c.drawImage(bitmap, 0, 0);
  const data = c.getImageData(0, 0, bitmap.width, bitmap.height).data;
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** A PNG file of 8-bit pixels: 1 channel (grey), 3 (RGB) or 4 (RGBA, straight alpha). */
export function encodePng(width: number, height: number, channels: 1 | 3 | 4, data: Uint8Array): Uint8Array {
  return encode({ width, height, channels, depth: 8, data });
}
