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
  /** Soft alpha of the subject in [0, 1], same size as the image. */
  estimate(image: ImageF32): Promise<Plane>;
}

/** RVM works at any size that its stride-32 encoder divides; 512 on the long side keeps it ~0.5 s. */
const RVM_LONG_SIDE = 512;
const SELFIE_SIZE = 256;

function fitTo(image: ImageF32, longSide: number, multiple: number): { w: number; h: number } {
  const scale = longSide / Math.max(image.width, image.height);
  const w = Math.max(multiple, Math.round((image.width * scale) / multiple) * multiple);
  const h = Math.max(multiple, Math.round((image.height * scale) / multiple) * multiple);
  return { w, h };
}

class RvmPrior implements Prior {
  readonly name = 'rvm' as const;
  constructor(private readonly model: GraphModel) {}

  async estimate(image: ImageF32): Promise<Plane> {
    const { w, h } = fitTo(image, RVM_LONG_SIDE, 32);
    const small = resize(image, w, h);
    const src = tf.tensor4d(small.data, [1, h, w, 3]);
    const zero = tf.zeros([1, 1, 1, 1]);
    const ratio = tf.scalar(0.5);
    try {
      const [fgr, pha] = (await this.model.executeAsync(
        { src, r1i: zero, r2i: zero, r3i: zero, r4i: zero, downsample_ratio: ratio },
        ['fgr', 'pha'],
      )) as tf.Tensor[];
      const alpha = (await pha!.data()) as Float32Array;
      fgr!.dispose();
      pha!.dispose();
      return resize({ width: w, height: h, channels: 1, data: Float32Array.from(alpha) } as Plane, image.width, image.height);
    } finally {
      src.dispose(); zero.dispose(); ratio.dispose();
    }
  }
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
}

class NoPrior implements Prior {
  readonly name = 'none' as const;
  async estimate(image: ImageF32): Promise<Plane> {
    return createPlane(image.width, image.height);
  }
}

export async function createPrior(name: PriorName, modelsDir?: string): Promise<Prior> {
  switch (name) {
    case 'rvm': return new RvmPrior(await loadPriorModel('rvm', modelsDir));
    case 'selfie': return new SelfiePrior(await loadPriorModel('selfie', modelsDir));
    case 'none': return new NoPrior();
  }
}
