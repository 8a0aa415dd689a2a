/**
 * The person prior: a soft segmentation of the subject from a pretrained model, at the input's
 * resolution. It bounds where a subject can be; the plate recovers the subject's edges.
 */
import type { GraphModel } from '@tensorflow/tfjs-converter';
import { createPlane, type ImageF32, type Plane } from '../image.js';
import { resize } from '../ops.js';
import { loadPriorModel, tf } from './tfjs.js';

export type PriorName = 'rvm' | 'selfie' | 'none';
export const PRIOR_NAMES: readonly PriorName[] = ['rvm', 'selfie', 'none'];

export interface Prior {
  readonly name: PriorName;
  /**
   * Soft alpha of the subject in [0, 1], same size as the image. `longSide`: what the model sees
   * (RVM; default the photo's RVM_LONG_SIDE), e.g. a video's coarser grid for its sampled frames.
   */
  estimate(image: ImageF32, options?: PriorStreamOptions): Promise<Plane>;
  /**
   * For the frames of one video, in order: a model with memory (RVM's recurrent state) carries it
   * from frame to frame, and may work at a coarser size than a photo needs (a plate refines it).
   * Priors without memory return themselves.
   */
  stream(options?: PriorStreamOptions): PriorStream;
}

export interface PriorStreamOptions {
  /** Long side the model sees (RVM: a multiple of 32). */
  longSide?: number;
}

export interface PriorStream {
  /**
   * `prepared`: the image is already at `inputSize` of the frame it stands for; it goes to the
   * model as it is and its alpha comes back at that size (the caller enlarges it): a thread that
   * shrinks the decoder's bytes itself never converts a whole full-resolution frame.
   */
  estimate(image: ImageF32, prepared?: boolean): Promise<Plane>;
  /** The size the model sees for a frame of this size. */
  inputSize(width: number, height: number): { width: number; height: number };
  /** Frees the carried state. */
  close(): void;
}

/** RVM's long side for video frames: its recurrent state makes up for the coarser grid. */
export const RVM_VIDEO_LONG_SIDE = 384;

/** RVM works at any size that its stride-32 encoder divides; 512 on the long side keeps it ~0.5 s. */
const RVM_LONG_SIDE = 512;
const SELFIE_SIZE = 256;

function fitTo(image: { width: number; height: number }, longSide: number, multiple: number): { w: number; h: number } {
  const scale = longSide / Math.max(image.width, image.height);
  const w = Math.max(multiple, Math.round((image.width * scale) / multiple) * multiple);
  const h = Math.max(multiple, Math.round((image.height * scale) / multiple) * multiple);
  return { w, h };
}

class RvmPrior implements Prior {
  readonly name = 'rvm' as const;
  constructor(private readonly model: GraphModel) {}

  /** One frame through the model with the given recurrent state; returns alpha and the new state. */
  async run(image: ImageF32, longSide: number, state: tf.Tensor[] | undefined, prepared = false): Promise<{ alpha: Plane; state: tf.Tensor[] }> {
    const { w, h } = prepared ? { w: image.width, h: image.height } : fitTo(image, longSide, 32);
    const small = resize(image, w, h);
    const src = tf.tensor4d(small.data, [1, h, w, 3]);
    const zero = state ? undefined : tf.zeros([1, 1, 1, 1]);
    const [r1, r2, r3, r4] = state ?? [zero!, zero!, zero!, zero!];
    const ratio = tf.scalar(0.5);
    try {
      const [pha, ...next] = (await this.model.executeAsync(
        { src, r1i: r1!, r2i: r2!, r3i: r3!, r4i: r4!, downsample_ratio: ratio },
        ['pha', 'r1o', 'r2o', 'r3o', 'r4o'],
      )) as tf.Tensor[];
      const alpha = (await pha!.data()) as Float32Array;
      pha!.dispose();
      return { alpha: resize({ width: w, height: h, channels: 1, data: Float32Array.from(alpha) } as Plane, image.width, image.height), state: next };
    } finally {
      src.dispose(); zero?.dispose(); ratio.dispose();
    }
  }

  async estimate(image: ImageF32, options: PriorStreamOptions = {}): Promise<Plane> {
    const { alpha, state } = await this.run(image, options.longSide ?? RVM_LONG_SIDE, undefined);
    for (const t of state) t.dispose();
    return alpha;
  }

  stream(options: PriorStreamOptions = {}): PriorStream {
    const longSide = options.longSide ?? RVM_VIDEO_LONG_SIDE;
    let state: tf.Tensor[] | undefined;
    let size = '';
    return {
      estimate: async (image, prepared) => {
        // A change of frame size (never within one video) would not fit the carried state.
        const key = `${image.width}x${image.height}`;
        if (key !== size) { for (const t of state ?? []) t.dispose(); state = undefined; size = key; }
        const out = await this.run(image, longSide, state, prepared);
        for (const t of state ?? []) t.dispose();
        state = out.state;
        return out.alpha;
      },
      close: () => { for (const t of state ?? []) t.dispose(); state = undefined; },
      inputSize: (width, height) => { const { w, h } = fitTo({ width, height }, longSide, 32); return { width: w, height: h }; },
    };
  }
}

/** A prior without memory as a stream: every frame on its own. */
function stateless(prior: { estimate(image: ImageF32): Promise<Plane> }, size?: number): PriorStream {
  return { estimate: (image) => prior.estimate(image), close: () => {}, inputSize: (width, height) => (size ? { width: size, height: size } : { width, height }) };
}

class SelfiePrior implements Prior {
  readonly name = 'selfie' as const;
  constructor(private readonly model: GraphModel) {}

  async estimate(image: ImageF32): Promise<Plane> {
    const small = resize(image, SELFIE_SIZE, SELFIE_SIZE);
    const input = tf.tensor4d(small.data, [1, SELFIE_SIZE, SELFIE_SIZE, 3]);
    try {
      const out = this.model.execute(input) as tf.Tensor;
      const mask = (await out.data()) as Float32Array;
      out.dispose();
      return resize({ width: SELFIE_SIZE, height: SELFIE_SIZE, channels: 1, data: Float32Array.from(mask) } as Plane, image.width, image.height);
    } finally {
      input.dispose();
    }
  }

  stream(): PriorStream { return stateless(this, SELFIE_SIZE); }
}

class NoPrior implements Prior {
  readonly name = 'none' as const;
  async estimate(image: ImageF32): Promise<Plane> {
    return createPlane(image.width, image.height);
  }

  stream(): PriorStream { return stateless(this); }
}

export async function createPrior(name: PriorName, modelsDir?: string): Promise<Prior> {
  switch (name) {
    case 'rvm': return new RvmPrior(await loadPriorModel('rvm', modelsDir));
    case 'selfie': return new SelfiePrior(await loadPriorModel('selfie', modelsDir));
    case 'none': return new NoPrior();
  }
}
