/**
 * A video's prior on the second core: a worker thread runs the model (TensorFlow.js's WebAssembly
 * backend is single-threaded here) while the main thread mattes earlier frames. Frames go over as
 * the decoder's bytes (a copy of 2.7 MB at 720p; the main thread keeps its own), which the thread
 * shrinks to the model's size; the alpha comes back at that size as a transferred buffer. Node edge: the browser runs the same stream in a Web Worker.
 */
import { Worker } from 'node:worker_threads';
import { CleanplateError } from '../errors.js';
import type { ImageF32, Plane } from '../image.js';
import { resize } from '../ops.js';
import type { PriorName, PriorStreamOptions } from './index.js';

type Reply = { id: number; data?: Float32Array; width?: number; height?: number; frame?: Float32Array; error?: string } | { ready: boolean; error?: string };

export class PriorThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: { prior: Plane; frame: Float32Array }) => void; reject: (e: Error) => void; width: number; height: number }>();
  private readonly ready: Promise<void>;
  private next = 0;
  private failure: Error | undefined;

  constructor(name: PriorName, modelsDir?: string, stream?: PriorStreamOptions) {
    this.worker = new Worker(new URL('./thread.js', import.meta.url), { workerData: { name, modelsDir, stream } });
    this.worker.unref();
    this.ready = new Promise((resolve, reject) => {
      this.worker.on('message', (msg: Reply) => {
        if ('ready' in msg) { if (msg.ready) resolve(); else reject(new CleanplateError(`prior thread could not start: ${msg.error}`)); return; }
        const job = this.pending.get(msg.id);
        if (!job) return;
        this.pending.delete(msg.id);
        if (msg.error !== undefined || !msg.data || !msg.frame) job.reject(new CleanplateError(`prior failed on a frame: ${msg.error}`));
        // The alpha comes at the model's size; enlarged here (bilinear, a few ms) to the frame's.
        else job.resolve({ prior: resize({ width: msg.width ?? job.width, height: msg.height ?? job.height, channels: 1, data: msg.data } as Plane, job.width, job.height), frame: msg.frame });
      });
      this.worker.on('error', (err: unknown) => this.fail(err as Error, reject));
      this.worker.on('exit', (code) => { if (code !== 0) this.fail(new Error(`exited with code ${code}`), reject); });
    });
    this.ready.catch(() => {});
  }

  private fail(err: Error, reject: (e: Error) => void): void {
    this.failure ??= new CleanplateError(`prior thread failed: ${err.message}`);
    reject(this.failure);
    for (const job of this.pending.values()) job.reject(this.failure);
    this.pending.clear();
  }

  /**
   * The prior of one RGB frame (decoder bytes, handed over: the buffer is transferred to the
   * thread), in submission order, and the frame itself as floats, converted in the thread: the
   * main thread, which mattes, never spends its time on the conversion (11 MB per 720p frame).
   */
  async estimateFrame(bytes: Uint8Array, width: number, height: number): Promise<{ prior: Plane; image: ImageF32 }> {
    if (this.failure) throw this.failure;
    const id = this.next++;
    const result = new Promise<{ prior: Plane; frame: Float32Array }>((resolve, reject) => this.pending.set(id, { resolve, reject, width, height }));
    await this.ready;
    this.worker.postMessage({ id, width, height, bytes }, [bytes.buffer as ArrayBuffer]);
    const { prior, frame } = await result;
    return { prior, image: { width, height, channels: 3, data: frame } };
  }

  /**
   * Forgets the model's memory (RVM's recurrent state), in order with the frames sent before: the
   * next frame is the first of a new video, as on a new thread. For a thread kept across videos.
   */
  reset(): void {
    if (this.failure) return;
    // After `ready`, like every frame's message, so that it keeps its place among them.
    void this.ready.then(() => this.worker.postMessage({ reset: true }), () => undefined);
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
