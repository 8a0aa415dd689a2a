/**
 * Messages between the page (app.ts) and its two workers: the prior worker runs the person model
 * (TensorFlow.js), the matte worker runs the plate-guided engine and the compositing. The prior worker
 * talks to the matte worker over a MessageChannel of its own, so a prior never waits on the page.
 */
import type { AlphaMetrics } from '../eval/metrics.js';
import type { MatteReport } from '../photo.js';

/** Priors the live mode can run; photo mode offers the CLI's choice (rvm, selfie, none). */
export type LivePrior = 'selfie' | 'rvm';
export type PhotoPrior = 'rvm' | 'selfie' | 'none';
export type PhotoAlign = 'auto' | 'homography' | 'none';

export interface LiveSettings {
  width: number;
  height: number;
  /** Frames averaged into the plate. */
  plateFrames: number;
  /** Long side of the classic engine's working grid (its whole-frame decisions). */
  work: number;
  /** Radius of its guided refinement (0: none). */
  refine: number;
  /** How often (ms) the plate's colour is re-fitted to the camera's exposure, and how often its fit is checked. */
  colourMs: number;
  checkMs: number;
}

export interface PriorSettings {
  prior: LivePrior;
  /** Long side of the frames the prior sees. */
  side: number;
  /** TensorFlow.js WebAssembly threads (1 without cross-origin isolation). */
  threads: number;
}

export type BackgroundSpec =
  /** A hex colour, parsed by the core as the CLI's --color is. */
  | { kind: 'colour'; hex: string }
  | { kind: 'picture'; bitmap: ImageBitmap }
  | { kind: 'blur' };

/** Milliseconds of one live frame, per stage, and what the plate check says. */
export interface FrameStats {
  matting: boolean;
  ms: Record<string, number>;
  /** Frames between the camera frame matted and the one the prior it used came from. */
  priorLag?: number;
  /** Whether the prior was cleared where the subject has left since its frame (prior/stale.ts). */
  priorCleared?: boolean;
  /** Share (0..1) of the visible background that the plate does not explain, when this frame was checked. */
  plateMismatch?: number;
  /** Share of pixels in the engine's uncertain band. */
  band?: number;
  /** Megabytes held for the frames' temporary planes (alloc.ts). */
  scratchMb?: number;
}

export type ToPrior =
  | { type: 'init'; port: MessagePort; settings: PriorSettings }
  | { type: 'settings'; settings: PriorSettings }
  | { type: 'frame'; id: number; frame: VideoFrame; width: number; height: number }
  | { type: 'reset' };

export type FromPrior =
  | { type: 'progress'; file: string; loaded: number; total: number }
  | { type: 'ready'; ms: number; simd: boolean; threads: number; prior: LivePrior }
  | { type: 'done'; id: number; ms: number }
  | { type: 'error'; message: string };

/** Over the channel between the two workers. */
export type PriorChannel =
  | { type: 'prior'; id: number; width: number; height: number; data: Float32Array }
  | { type: 'photo'; id: number; prior: PhotoPrior; width: number; height: number; data: Float32Array }
  | { type: 'photo-prior'; id: number; data?: Float32Array; error?: string };

export interface PhotoRequest {
  type: 'photo';
  id: number;
  image: ImageBitmap;
  plate?: ImageBitmap;
  background?: ImageBitmap;
  /** Hex colour to composite onto (as the CLI's --color). */
  colour?: string;
  /** A known alpha to score the result against (the benchmark's metrics). */
  reference?: ImageBitmap;
  prior: PhotoPrior;
  align: PhotoAlign;
  /** Names of the files, for messages. */
  names: { image: string; plate?: string; background?: string; reference?: string };
}

export interface PhotoResult {
  type: 'photo';
  id: number;
  width: number;
  height: number;
  /** PNG files as the CLI writes them: 8-bit grey alpha, RGBA foreground (straight alpha), RGB composite. */
  png: { alpha: Uint8Array; foreground: Uint8Array; composite?: Uint8Array };
  /** RGBA pixels for the previews. */
  preview: { alpha: Uint8ClampedArray; foreground: Uint8ClampedArray; composite?: Uint8ClampedArray };
  report: MatteReport;
  metrics?: AlphaMetrics;
}

export type ToMatte =
  | { type: 'init'; port: MessagePort; settings: LiveSettings }
  | { type: 'settings'; settings: LiveSettings }
  | { type: 'frame'; id: number; frame: VideoFrame; out?: ArrayBuffer }
  | { type: 'capture'; frames: number }
  /** Forget the plate (another camera). */
  | { type: 'reset' }
  | { type: 'background'; background: BackgroundSpec }
  | PhotoRequest;

export type FromMatte =
  | { type: 'ready'; ms: number }
  | { type: 'frame'; id: number; width: number; height: number; rgba: ArrayBuffer; stats: FrameStats }
  | { type: 'plate'; width: number; height: number; frames: number }
  | PhotoResult
  /** `context`: the request that failed (its type), with its id for frames and photos. */
  | { type: 'error'; message: string; context: ToMatte['type']; id?: number };
