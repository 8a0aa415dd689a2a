/**
 * Robust Video Matting as a prior, whichever runtime runs its graph (TF.js in models.ts, ONNX
 * Runtime in rvm-onnx.ts): the frame shrunk to the model's grid, the recurrent state carried from
 * frame to frame of one video, the alpha enlarged back. A runtime supplies one step.
 */
import { type ImageF32, type Plane } from '../image.js';
import { resize, type Shrinks } from '../ops.js';
import { fitTo, priorInputSize, RVM_LONG_SIDE, RVM_VIDEO_LONG_SIDE, type Prior, type PriorEstimateOptions, type PriorStream, type PriorStreamOptions } from './spec.js';

/** One frame through the model: `src` is (1, height, width, 3) NHWC in [0, 1]; no state on a first frame. */
export interface RvmStep<S> {
  step(src: Float32Array, width: number, height: number, state: S | undefined): Promise<{ alpha: Float32Array; state: S }>;
  /** Frees a state the caller no longer needs. */
  free(state: S): void;
}

export class RvmPrior<S> implements Prior {
  readonly name = 'rvm' as const;
  constructor(private readonly model: RvmStep<S>) {}

  private async run(image: ImageF32, longSide: number, state: S | undefined, prepared = false, shrinks?: Shrinks): Promise<{ alpha: Plane; state: S }> {
    const { w, h } = prepared ? { w: image.width, h: image.height } : fitTo(image, longSide, 32);
    const small = shrinks ? shrinks.resize(image, w, h) : resize(image, w, h);
    const out = await this.model.step(small.data, w, h, state);
    return { alpha: resize({ width: w, height: h, channels: 1, data: out.alpha } as Plane, image.width, image.height), state: out.state };
  }

  async estimate(image: ImageF32, options: PriorEstimateOptions = {}): Promise<Plane> {
    const { alpha, state } = await this.run(image, options.longSide ?? RVM_LONG_SIDE, undefined, options.prepared, options.shrinks);
    this.model.free(state);
    return alpha;
  }

  inputSize(width: number, height: number, options: PriorStreamOptions = {}): { width: number; height: number } {
    return priorInputSize('rvm', width, height, options);
  }

  stream(options: PriorStreamOptions = {}): PriorStream {
    const longSide = options.longSide ?? RVM_VIDEO_LONG_SIDE;
    let state: S | undefined;
    let size = '';
    const drop = () => { if (state !== undefined) this.model.free(state); state = undefined; };
    return {
      estimate: async (image, prepared) => {
        // A change of frame size (never within one video) would not fit the carried state.
        const key = `${image.width}x${image.height}`;
        if (key !== size) { drop(); size = key; }
        const out = await this.run(image, longSide, state, prepared);
        drop();
        state = out.state;
        return out.alpha;
      },
      close: drop,
      inputSize: (width, height) => priorInputSize('rvm', width, height, { longSide }),
    };
  }
}
