/**
 * Raw frames over pipes to and from ffmpeg. A reader keeps a few decoded frames queued (ffmpeg
 * decodes ahead while we matte) and pauses the pipe beyond that, so memory does not grow with the
 * video's length; a writer hands frames to an encoder that runs in its own process.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { rm } from 'node:fs/promises';
import { CleanplateError } from '../errors.js';
import { DAMAGE, lastLine, silentFailure, tellingLine, tool } from './ffmpeg.js';
import type { FrameIndex } from './video-probe.js';
import { ffmpegThreads } from '../threads.js';

export interface ReaderOptions {
  width: number;
  height: number;
  pixelFormat: 'rgb24' | 'gray';
  /** Extra filters (scaling, frame rate) applied by ffmpeg before the frames reach us. */
  filter?: string;
  /** Repeat the input forever (a background video shorter than the subject's). */
  loop?: boolean;
  /** Frames decoded ahead of the consumer. */
  queue?: number;
  /**
   * Start part-way (see `seekTo`): ffmpeg seeks back to the keyframe at or before `time` (seconds,
   * the stream's own timestamps), and the frames before the one whose timestamp is `fromPts` are
   * dropped by their own timestamps, so the first frame delivered is exactly that one wherever the
   * seek landed.
   */
  seek?: { time: number; fromPts: number };
}

/**
 * The `seek` that makes a reader's first frame `frame` of the index: decoding starts at the last
 * keyframe at or before `frame`; the seek aims half a frame after that keyframe, so a timestamp
 * rounded either way still lands on it (or earlier, which the dropping makes harmless).
 */
export function seekTo(index: FrameIndex, frame: number): ReaderOptions['seek'] {
  if (frame <= 0) return undefined;
  let k = 0;
  for (const f of index.keyframes) if (f <= frame) k = f; else break;
  const next = index.pts[k + 1] ?? index.pts[k]! + 1;
  return { time: ((index.pts[k]! + next) / 2) * index.timeBase, fromPts: index.pts[frame]! };
}

export class FrameReader {
  readonly frameBytes: number;
  private readonly child: ChildProcessByStdio<null, Readable, Readable>;
  private readonly ready: Uint8Array[] = [];
  private current: Uint8Array;
  private filled = 0;
  private waiter?: { resolve: (f: Uint8Array | null) => void; reject: (e: Error) => void };
  private failure?: Error;
  private ended = false;
  private stopped = false;
  private stderr = '';
  private readonly queue: number;
  /** Frame buffers handed back (`recycle`): the next frames are read into them. */
  private readonly spare: Uint8Array[] = [];

  constructor(readonly file: string, private readonly options: ReaderOptions) {
    this.frameBytes = options.width * options.height * (options.pixelFormat === 'rgb24' ? 3 : 1);
    this.queue = options.queue ?? 3;
    this.current = new Uint8Array(this.frameBytes);
    const seek = options.seek ? ['-seek_timestamp', '1', '-ss', options.seek.time.toFixed(6), '-noaccurate_seek', '-copyts'] : [];
    const filter = [...(options.seek ? [`select='gte(pts\\,${options.seek.fromPts})'`] : []), ...(options.filter ? [options.filter] : [])].join(',');
    const args = ['-v', 'error', '-nostdin', ...(options.loop ? ['-stream_loop', '-1'] : []), ...seek, ...ffmpegThreads('input'), '-i', file, '-map', '0:v:0',
      ...(filter ? ['-vf', filter] : []), ...ffmpegThreads('output'), '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', options.pixelFormat, 'pipe:1'];
    this.child = spawn(tool('ffmpeg'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => { this.stderr = (this.stderr + d).slice(-4000); });
    this.child.stdout.on('data', (chunk: Buffer) => this.take(chunk));
    this.child.on('error', (e) => this.fail(new CleanplateError(`cannot run ffmpeg to decode: ${e.message}`, file)));
    this.child.on('close', (code) => this.finish(code));
  }

  private take(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(chunk.length - offset, this.frameBytes - this.filled);
      this.current.set(chunk.subarray(offset, offset + n), this.filled);
      this.filled += n;
      offset += n;
      if (this.filled === this.frameBytes) {
        this.deliver(this.current);
        this.current = this.spare.pop() ?? new Uint8Array(this.frameBytes);
        this.filled = 0;
      }
    }
    if (this.ready.length >= this.queue) this.child.stdout.pause();
  }

  private deliver(frame: Uint8Array): void {
    if (this.waiter) { const w = this.waiter; this.waiter = undefined; w.resolve(frame); }
    else this.ready.push(frame);
  }

  private finish(code: number | null): void {
    this.ended = true;
    if (this.stopped) return this.settle();
    if (code !== 0) this.fail(this.stderr.trim() ? new CleanplateError(`cannot decode video: ${lastLine(this.stderr, this.file)}`, this.file) : silentFailure('ffmpeg', code));
    else if (DAMAGE.test(this.stderr)) this.fail(new CleanplateError(`video is damaged or truncated: ${lastLine(this.stderr, this.file)}`, this.file));
    else if (this.filled) this.fail(new CleanplateError('video ends in the middle of a frame', this.file));
    this.settle();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.settle();
  }

  private settle(): void {
    if (!this.waiter) return;
    const w = this.waiter;
    if (this.failure) { this.waiter = undefined; w.reject(this.failure); }
    else if (this.ended && !this.ready.length) { this.waiter = undefined; w.resolve(null); }
  }

  /** The next frame, or null after the last one; rejects when decoding failed. */
  next(): Promise<Uint8Array | null> {
    if (this.failure) return Promise.reject(this.failure);
    const frame = this.ready.shift();
    if (this.ready.length < this.queue && !this.ended) this.child.stdout.resume();
    if (frame) return Promise.resolve(frame);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => { this.waiter = { resolve, reject }; });
  }

  /**
   * Hands back a frame that nothing reads any more: a later frame is read into it. A fresh 2.7 MB
   * array per 720p frame costs ~10 ms of first-touched pages on a VM, and its external memory
   * drives the garbage collector.
   */
  recycle(frame: Uint8Array): void {
    if (frame.length === this.frameBytes && frame.byteOffset === 0 && frame.buffer.byteLength === this.frameBytes && this.spare.length < this.queue + 2) this.spare.push(frame);
  }

  /** Stops decoding early (a looped background, an abort). */
  close(): void {
    this.stopped = true;
    if (!this.ended) this.child.kill('SIGKILL');
  }
}

export interface WriterOptions {
  width: number;
  height: number;
  pixelFormat: 'rgb24' | 'gray' | 'rgba';
  rate: string;
  /** Encoder and muxer arguments placed after the raw input (and any `extraInputs`). */
  output: string[];
  extraInputs?: string[];
}

/** An encoder writing to a temporary file; `finish()` waits for it, the caller renames the file. */
export class FrameWriter {
  private readonly child: ChildProcessByStdio<Writable, null, Readable>;
  private stderr = '';
  private exit: Promise<number | null>;
  private broken?: Error;

  constructor(readonly temp: string, readonly label: string, options: WriterOptions) {
    const args = ['-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', options.pixelFormat, '-s', `${options.width}x${options.height}`,
      '-framerate', options.rate, '-i', 'pipe:0', ...(options.extraInputs ?? []), ...options.output, ...ffmpegThreads('output'), temp];
    this.child = spawn(tool('ffmpeg'), args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => { this.stderr = (this.stderr + d).slice(-4000); });
    // A broken pipe is reported by write() once ffmpeg has said why (its stderr is complete at exit).
    this.child.stdin.on('error', () => undefined);
    this.exit = new Promise((resolve) => {
      this.child.on('error', (e) => { this.broken ??= this.error(e.message); resolve(-1); });
      this.child.on('close', (code) => resolve(code));
    });
  }

  private error(detail: string): CleanplateError {
    return new CleanplateError(`encoding ${this.label} failed: ${tellingLine(this.stderr) || detail}`, this.temp);
  }

  /**
   * Resolves once the encoder has taken the frame (backpressure keeps memory bounded). When the
   * encoder is gone (it failed: a full disk, a bad option), rejects with ffmpeg's own last words,
   * waited for, rather than the pipe's EPIPE.
   */
  write(frame: Uint8Array): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.child.stdin.write(frame, (err) => {
        if (!err) return resolve();
        void this.exit.then(() => reject(this.broken ??= this.error(err.message)));
      });
    });
  }

  async finish(): Promise<void> {
    this.child.stdin.end();
    const code = await this.exit;
    if (this.broken) throw this.broken;
    if (code !== 0) throw this.stderr.trim() ? this.error(`ffmpeg exited with ${code}`) : silentFailure('ffmpeg', code);
  }

  async abort(): Promise<void> {
    this.child.stdin.destroy();
    this.child.kill('SIGKILL');
    await this.exit;
    await rm(this.temp, { force: true });
  }
}

/**
 * Sends one RGB image through ffmpeg's conversion to `pixelFormat` and back: the plate then has the
 * same coarse colour planes as the video's frames (4:2:0 halves chroma), so chroma blur along
 * coloured edges does not read as a difference between frame and plate.
 */
export function throughPixelFormat(rgb: Uint8Array, width: number, height: number, pixelFormat: string, name: string): Promise<Uint8Array> {
  const child = spawn(tool('ffmpeg'), ['-v', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-i', 'pipe:0',
    '-vf', `format=${pixelFormat}`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => chunks.push(d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  child.stdin.on('error', () => undefined);
  child.stdin.end(rgb);
  return new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new CleanplateError(`cannot run ffmpeg: ${e.message}`, name)));
    child.on('close', (code) => {
      const out = Buffer.concat(chunks);
      if (code === 0 && out.length === rgb.length) resolve(out);
      else reject(stderr.trim() ? new CleanplateError(`cannot convert to ${pixelFormat}: ${lastLine(stderr)}`, name) : silentFailure('ffmpeg', code));
    });
  });
}
