/**
 * The prior models on TF.js (WebAssembly backend): RVM, with its recurrent state carried across a
 * video's frames, and MediaPipe's selfie segmentation. Loaded through `createPrior` (index.ts).
 */
import type { GraphModel } from '@tensorflow/tfjs-converter';
import type { Tensor } from '@tensorflow/tfjs-core';
import { type ImageF32, type Plane } from '../image.js';
import { resize } from '../ops.js';
import { fitTo, priorInputSize, RVM_LONG_SIDE, RVM_VIDEO_LONG_SIDE, SELFIE_SIZE, stateless, type Prior, type PriorEstimateOptions, type PriorStream, type PriorStreamOptions } from './spec.js';
import { loadPriorModel, tf } from './tfjs.js';

class RvmPrior implements Prior {
  readonly name = 'rvm' as const;
  constructor(private readonly model: GraphModel) {}

  /** One frame through the model with the given recurrent state; returns alpha and the new state. */
  async run(image: ImageF32, longSide: number, state: Tensor[] | undefined, prepared = false): Promise<{ alpha: Plane; state: Tensor[] }> {
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
      )) as Tensor[];
      const alpha = (await pha!.data()) as Float32Array;
      pha!.dispose();
      return { alpha: resize({ width: w, height: h, channels: 1, data: Float32Array.from(alpha) } as Plane, image.width, image.height), state: next };
    } finally {
      src.dispose(); zero?.dispose(); ratio.dispose();
    }
  }

  async estimate(image: ImageF32, options: PriorEstimateOptions = {}): Promise<Plane> {
    const { alpha, state } = await this.run(image, options.longSide ?? RVM_LONG_SIDE, undefined, options.prepared);
    for (const t of state) t.dispose();
    return alpha;
  }

  inputSize(width: number, height: number, options: PriorStreamOptions = {}): { width: number; height: number } {
    return priorInputSize('rvm', width, height, options);
  }

  stream(options: PriorStreamOptions = {}): PriorStream {
    const longSide = options.longSide ?? RVM_VIDEO_LONG_SIDE;
    let state: Tensor[] | undefined;
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
      inputSize: (width, height) => priorInputSize('rvm', width, height, { longSide }),
    };
  }
}

class SelfiePrior implements Prior {
  readonly name = 'selfie' as const;
  constructor(private readonly model: GraphModel) {}

  async estimate(image: ImageF32): Promise<Plane> {
    const small = resize(image, SELFIE_SIZE, SELFIE_SIZE);
    const input = tf.tensor4d(small.data, [1, SELFIE_SIZE, SELFIE_SIZE, 3]);
    try {
      const out = this.model.execute(input) as Tensor;
      const mask = (await out.data()) as Float32Array;
      out.dispose();
      return resize({ width: SELFIE_SIZE, height: SELFIE_SIZE, channels: 1, data: Float32Array.from(mask) } as Plane, image.width, image.height);
    } finally {
      input.dispose();
    }
  }

  inputSize(width: number, height: number): { width: number; height: number } { return priorInputSize('selfie', width, height); }

  stream(): PriorStream { return stateless(this, SELFIE_SIZE); }
}

export async function loadPrior(name: 'rvm' | 'selfie', modelsDir?: string): Promise<Prior> {
  return name === 'rvm' ? new RvmPrior(await loadPriorModel('rvm', modelsDir)) : new SelfiePrior(await loadPriorModel('selfie', modelsDir));
}
