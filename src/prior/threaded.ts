/**
 * A prior whose model runs on a prior thread (the second core), for photos: the image is shrunk
 * here to the size the model sees, the thread runs the model, and its alpha is enlarged here, the
 * same steps as the model's own `estimate` on this thread, so the alpha is bit for bit the same.
 * Meanwhile this thread does what needs no subject (a photo tracks its plate's corners). When the
 * thread is lent out (a video holds it), or for a stream, the model is loaded on this thread
 * (`local`), once and only then. Node edge (worker_threads).
 */
import type { ImageF32, Plane } from '../image.js';
import { resize } from '../ops.js';
import type { PriorThreads } from './keeper.js';
import type { PriorThread } from './worker.js';
import { priorInputSize, RVM_VIDEO_LONG_SIDE, type Prior, type PriorEstimateOptions, type PriorName, type PriorStream, type PriorStreamOptions } from './spec.js';

export class ThreadedPrior implements Prior {
  constructor(
    readonly name: PriorName,
    private readonly threads: PriorThreads,
    private readonly local: () => Promise<Prior>,
    private readonly modelsDir?: string,
  ) {}

  async estimate(image: ImageF32, options: PriorEstimateOptions = {}): Promise<Plane> {
    const lease = this.threads.lend(this.name, this.modelsDir, true);
    if (!lease) return (await this.local()).estimate(image, options);
    try {
      return await estimateOnThread(lease.thread, this.name, image, options);
    } finally {
      lease.close();
    }
  }

  inputSize(width: number, height: number, options?: PriorStreamOptions): { width: number; height: number } {
    return priorInputSize(this.name, width, height, options);
  }

  /** A stream carries the model's memory from call to call: on this thread's own model. */
  stream(options?: PriorStreamOptions): PriorStream {
    const inner = this.local().then((prior) => prior.stream(options));
    inner.catch(() => {}); // reported by the first estimate
    return {
      estimate: async (image, prepared) => (await inner).estimate(image, prepared),
      inputSize: (width, height) => priorInputSize(this.name, width, height, { longSide: options?.longSide ?? RVM_VIDEO_LONG_SIDE }),
      close: () => { void inner.then((s) => s.close(), () => undefined); },
    };
  }
}

/**
 * A photo's prior on a given prior thread (one the caller holds, such as a video's): shrunk here,
 * the model there, enlarged here; the same alpha as the model's own `estimate` on this thread.
 */
export async function estimateOnThread(thread: PriorThread, name: PriorName, image: ImageF32, options: PriorEstimateOptions = {}): Promise<Plane> {
  const size = options.prepared ? image : priorInputSize(name, image.width, image.height, options);
  const small = options.shrinks ? options.shrinks.resize(image, size.width, size.height) : resize(image, size.width, size.height);
  const alpha = await thread.estimateImage(small, options.longSide);
  return resize(alpha, image.width, image.height);
}
