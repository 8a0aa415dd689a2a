/**
 * The prior on the second core: a worker thread runs the model (TensorFlow.js's WebAssembly
 * backend is single-threaded here) while the main thread mattes a video's earlier frames, or
 * tracks a photo's plate. Video frames go over as the decoder's bytes (a copy of 2.7 MB at 720p;
 * the main thread keeps its own), which the thread shrinks to the model's size; a photo goes over
 * already shrunk to it. The alpha comes back at the model's size as a transferred buffer. Node
 * edge: the browser runs the same stream in a Web Worker.
 */
import { Worker } from 'node:worker_threads';
import { CleanplateError } from '../errors.js';
import type { ImageF32, Plane } from '../image.js';
import { resize } from '../ops.js';
import type { PriorName, PriorStreamOptions } from './index.js';

type Reply = { id: number; data?: Float32Array; width?: number; height?: number; frame?: Float32Array; error?: string } | { ready: boolean; error?: string };
interface Job { resolve: (r: { prior: Plane; frame?: Float32Array }) => void; reject: (e: Error) => void; width: number; height: number; wantsFrame: boolean }

export class PriorThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Job>();
  private readonly ready: Promise<void>;
  private next = 0;
  private failure: Error | undefined;
  /** Whether `ready` has resolved. */
  private started = false;

  constructor(name: PriorName, modelsDir?: string, stream?: PriorStreamOptions) {
    this.worker = new Worker(new URL('./thread.js', import.meta.url), { workerData: { name, modelsDir, stream } });
    this.ready = new Promise((resolve, reject) => {
      this.worker.on('message', (msg: Reply) => {
        if ('ready' in msg) { if (msg.ready) { this.started = true; resolve(); } else reject(new CleanplateError(`prior thread could not start: ${msg.error}`)); return; }
        const job = this.pending.get(msg.id);
        if (!job) return;
        this.pending.delete(msg.id);
        if (!this.pending.size) this.worker.unref();
        if (msg.error !== undefined || !msg.data || (job.wantsFrame && !msg.frame)) job.reject(new CleanplateError(`prior failed on ${job.wantsFrame ? 'a frame' : 'an image'}: ${msg.error}`));
        // The alpha comes at the model's size; enlarged here (bilinear, a few ms) to the frame's.
        else job.resolve({ prior: resize({ width: msg.width ?? job.width, height: msg.height ?? job.height, channels: 1, data: msg.data } as Plane, job.width, job.height), frame: msg.frame });
      });
      this.worker.on('error', (err: unknown) => this.fail(err as Error, reject));
      this.worker.on('exit', (code) => { if (code !== 0) this.fail(new Error(`exited with code ${code}`), reject); });
    });
    this.ready.catch(() => {});
    // After the listeners: attaching a 'message' listener refs the worker's port again, and an idle
    // thread (warmed, never used: a command that failed on its input) kept the process alive.
    this.worker.unref();
  }

  private fail(err: Error, reject: (e: Error) => void): void {
    this.failure ??= new CleanplateError(`prior thread failed: ${err.message}`);
    reject(this.failure);
    for (const job of this.pending.values()) job.reject(this.failure);
    this.pending.clear();
    this.worker.unref();
  }

  /**
   * The prior of one RGB frame (decoder bytes, handed over: the buffer is transferred to the
   * thread), in submission order, and the frame itself as floats, converted in the thread: the
   * main thread, which mattes, never spends its time on the conversion (11 MB per 720p frame).
   */
  async estimateFrame(bytes: Uint8Array, width: number, height: number): Promise<{ prior: Plane; image: ImageF32 }> {
    const { prior, frame } = await this.submit({ width, height, wantsFrame: true }, (id) => this.worker.postMessage({ id, width, height, bytes }, [bytes.buffer as ArrayBuffer]));
    return { prior, image: { width, height, channels: 3, data: frame! } };
  }

  /**
   * The prior of one image on its own (a photo: not part of the video's memory), `prepared` at the
   * model's input size (Prior.inputSize), its alpha at that size. The image is copied, not taken.
   */
  async estimateImage(prepared: ImageF32, longSide?: number): Promise<Plane> {
    const { width, height, data } = prepared;
    const copy = data.slice();
    const { prior } = await this.submit({ width, height, wantsFrame: false }, (id) => this.worker.postMessage({ id, image: { width, height, data: copy }, longSide }, [copy.buffer]));
    return prior;
  }

  /** A job for the thread (frames in submission order, photos ahead of queued frames); the thread keeps the process alive while any is pending (it is unref'd when idle). */
  private async submit(job: Pick<Job, 'width' | 'height' | 'wantsFrame'>, post: (id: number) => void): Promise<{ prior: Plane; frame?: Float32Array }> {
    if (this.failure) throw this.failure;
    const id = this.next++;
    const result = new Promise<{ prior: Plane; frame?: Float32Array }>((resolve, reject) => this.pending.set(id, { ...job, resolve, reject }));
    result.catch(() => {}); // a failure before it is awaited below is the caller's, not unhandled
    this.worker.ref();
    // Posted now when the thread is up, not after an await: a caller that goes on computing
    // (a photo tracking its plate) would otherwise hold the message back until it is done.
    if (this.started) { post(id); return result; }
    try {
      await this.ready;
    } catch (err) {
      this.pending.delete(id);
      if (!this.pending.size) this.worker.unref();
      throw err;
    }
    post(id);
    return result;
  }

  /**
   * Forgets the model's memory (RVM's recurrent state), in order with the frames sent before: the
   * next frame is the first of a new video, as on a new thread. For a thread kept across videos.
   */
  reset(): void {
    if (this.failure) return;
    // Now when the thread is up, else after `ready` (as every frame's message), so that it keeps its place among them.
    if (this.started) this.worker.postMessage({ reset: true });
    else void this.ready.then(() => this.worker.postMessage({ reset: true }), () => undefined);
  }

  /** False once the thread failed or was closed: it takes no more frames. */
  get usable(): boolean {
    return !this.failure;
  }

  close(): void {
    this.failure ??= new CleanplateError('prior thread closed');
    void this.worker.terminate();
  }
}
