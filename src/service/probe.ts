/**
 * Every upload is read before a job is accepted: images are decoded whole (the same decoder and
 * limits as the CLI), videos are probed packet by packet and their first frame decoded. A problem
 * becomes a 4xx that names the field and what is wrong with it.
 */
import sharp from 'sharp';
import { CleanplateError } from '../errors.js';
import { decodeImage } from '../io/decode.js';
import { runTool, tool } from '../io/ffmpeg.js';
import { probeVideo } from '../io/video-probe.js';
import type { JobKind } from './jobs.js';

export interface Limits {
  /** Largest upload, per file, in bytes. */
  maxUploadBytes: number;
  maxPixels: number;
  maxVideoSeconds: number;
  maxVideoFrames: number;
  /** Jobs queued or running per token at once. */
  maxOpenJobsPerOwner: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxUploadBytes: 512 * 1024 * 1024,
  maxPixels: 7680 * 4320 * 1.2,
  maxVideoSeconds: 600,
  maxVideoFrames: 36_000,
  maxOpenJobsPerOwner: 100,
};

/** An HTTP error with a message meant for the client. */
export class HttpError extends Error {
  constructor(readonly statusCode: number, message: string) {
    super(message);
  }
}

export interface Probed { kind: JobKind; width: number; height: number; frames?: number; fps?: number }

const STILL_FORMATS = new Set(['png', 'jpeg', 'webp']);

function unprocessable(field: string, path: string, err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const message = (err as Error).message.split(path).join(field);
  if (err instanceof CleanplateError) return new HttpError(422, message.startsWith(`${field}:`) ? message : `${field}: ${message}`);
  return new HttpError(422, `${field}: cannot be read (${message})`);
}

/** Reads one stored upload; `video` says whether a video is acceptable in this field. */
export async function probeUpload(path: string, field: string, limits: Limits, video: boolean): Promise<Probed> {
  const format = await sharp(path, { limitInputPixels: false }).metadata().then((m) => m.format, () => undefined);
  if (format && STILL_FORMATS.has(format)) {
    try {
      const image = await decodeImage(path, { maxPixels: limits.maxPixels, name: field });
      return { kind: 'image', width: image.width, height: image.height };
    } catch (err) {
      throw unprocessable(field, path, err);
    }
  }
  if (!video) throw new HttpError(422, `${field}: not a readable image (expected PNG, JPEG or WebP)`);
  try {
    tool('ffprobe');
  } catch {
    throw new HttpError(422, `${field}: not a readable image, and this server has no ffmpeg to read videos`);
  }
  try {
    const info = await probeVideo(path);
    if (info.width * info.height > limits.maxPixels) throw new HttpError(422, `${field}: video is ${info.width}x${info.height}, over the limit of ${(limits.maxPixels / 1e6).toFixed(1)} MP`);
    if (info.frames > limits.maxVideoFrames) throw new HttpError(422, `${field}: video has ${info.frames} frames, over the limit of ${limits.maxVideoFrames}`);
    const seconds = info.frames / info.fps;
    if (seconds > limits.maxVideoSeconds) throw new HttpError(422, `${field}: video lasts ${seconds.toFixed(1)} s, over the limit of ${limits.maxVideoSeconds} s`);
    // The container can be read; so must its first frame be.
    await runTool('ffmpeg', ['-v', 'error', '-nostdin', '-i', path, '-map', '0:v:0', '-frames:v', '1', '-f', 'null', '-'], path, 'cannot decode the first frame');
    return { kind: 'video', width: info.width, height: info.height, frames: info.frames, fps: info.fps };
  } catch (err) {
    if (err instanceof CleanplateError && /cannot read video|no usable video stream|holds only audio/.test(err.message)) {
      throw new HttpError(422, `${field}: not a readable image or video (expected PNG, JPEG, WebP or a video ffmpeg reads)`);
    }
    throw unprocessable(field, path, err);
  }
}
