/**
 * What a person prior is (the interface every prior implements, and its names) and what size its
 * model sees: no model here, so that importing it loads no TF.js.
 */
import type { ImageF32, Plane } from '../image.js';
import type { Shrinks } from '../ops.js';

export type PriorName = 'rvm' | 'selfie' | 'none';
export const PRIOR_NAMES: readonly PriorName[] = ['rvm', 'selfie', 'none'];

export interface Prior {
  readonly name: PriorName;
  /**
   * Soft alpha of the subject in [0, 1], same size as the image. `longSide`: what the model sees
   * (RVM; default the photo's RVM_LONG_SIDE), e.g. a video's coarser grid for its sampled frames.
   */
  estimate(image: ImageF32, options?: PriorEstimateOptions): Promise<Plane>;
  /** The size the model sees for an image of this size (`estimate`'s `prepared` images have it). */
  inputSize(width: number, height: number, options?: PriorStreamOptions): { width: number; height: number };
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

export interface PriorEstimateOptions extends PriorStreamOptions {
  /**
   * The image is already at `inputSize` of the image it stands for: it goes to the model as it is
   * and its alpha comes back at that size (the caller enlarges it). A prior thread is sent images
   * shrunk this way rather than whole ones.
   */
  prepared?: boolean;
  /**
   * Shrinks the caller shares between its stages (a photo's colour fit and engine see the image at
   * the size RVM does): the image is shrunk through it, so it is shrunk once.
   */
  shrinks?: Shrinks;
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
export const RVM_LONG_SIDE = 512;
export const SELFIE_SIZE = 256;

export function fitTo(image: { width: number; height: number }, longSide: number, multiple: number): { w: number; h: number } {
  const scale = longSide / Math.max(image.width, image.height);
  const w = Math.max(multiple, Math.round((image.width * scale) / multiple) * multiple);
  const h = Math.max(multiple, Math.round((image.height * scale) / multiple) * multiple);
  return { w, h };
}

/** The size `name`'s model sees for an image of this size (Prior.inputSize). */
export function priorInputSize(name: PriorName, width: number, height: number, options: PriorStreamOptions = {}): { width: number; height: number } {
  if (name === 'selfie') return { width: SELFIE_SIZE, height: SELFIE_SIZE };
  if (name === 'none') return { width, height };
  const { w, h } = fitTo({ width, height }, options.longSide ?? RVM_LONG_SIDE, 32);
  return { width: w, height: h };
}

/** A prior without memory as a stream: every frame on its own. */
export function stateless(prior: { estimate(image: ImageF32): Promise<Plane> }, size?: number): PriorStream {
  return { estimate: (image) => prior.estimate(image), close: () => {}, inputSize: (width, height) => (size ? { width: size, height: size } : { width, height }) };
}

