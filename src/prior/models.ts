/**
 * The prior models on TF.js (WebAssembly backend): RVM (the browser's; Node runs it on ONNX Runtime,
 * rvm-onnx.ts) and MediaPipe's selfie segmentation. Loaded through `createPrior` (index.ts).
 */
import type { GraphModel } from '@tensorflow/tfjs-converter';
import type { Tensor } from '@tensorflow/tfjs-core';
import { type ImageF32, type Plane } from '../image.js';
import { resize } from '../ops.js';
import { RvmPrior, type RvmStep } from './rvm.js';
import { priorInputSize, SELFIE_SIZE, stateless, type Prior, type PriorStream } from './spec.js';
import { loadPriorModel, tf } from './tfjs.js';

/** RVM's step on TF.js: its state is the four recurrent tensors, freed by the caller. */
function tfjsRvm(model: GraphModel): RvmStep<Tensor[]> {
  return {
    async step(data, width, height, state) {
      const src = tf.tensor4d(data, [1, height, width, 3]);
      const zero = state ? undefined : tf.zeros([1, 1, 1, 1]);
      const [r1, r2, r3, r4] = state ?? [zero!, zero!, zero!, zero!];
      const ratio = tf.scalar(0.5);
      try {
        const [pha, ...next] = (await model.executeAsync(
          { src, r1i: r1!, r2i: r2!, r3i: r3!, r4i: r4!, downsample_ratio: ratio },
          ['pha', 'r1o', 'r2o', 'r3o', 'r4o'],
        )) as Tensor[];
        const alpha = Float32Array.from((await pha!.data()) as Float32Array);
        pha!.dispose();
        return { alpha, state: next };
      } finally {
        src.dispose(); zero?.dispose(); ratio.dispose();
      }
    },
    free: (state) => { for (const t of state) t.dispose(); },
  };
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
  return name === 'rvm' ? new RvmPrior(tfjsRvm(await loadPriorModel('rvm', modelsDir))) : new SelfiePrior(await loadPriorModel('selfie', modelsDir));
}
