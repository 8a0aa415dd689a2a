/** The contract every matting engine implements: (I, B', S, M?) → α, F. */
import type { ImageF32, Plane } from '../image.js';
import type { Mask, Shrinks } from '../ops.js';
import type { PlateDifference } from './difference.js';
import type { BandMoves, BandPart, ResidueReport, ShiftField } from '../align/residue.js';

/** `refined`: the classic engine's decisions with the learned band refiner (issue 11). */
export type EngineName = 'classic' | 'refined' | 'network';

export interface MatteInput {
  image: ImageF32;
  /** The plate aligned to the image and colour-matched; pixels it did not cover hold the image. */
  plate?: ImageF32;
  /** Where the aligned plate really covers the image (1) or was filled (0). */
  plateValid?: Plane;
  /** The prior's raw soft alpha (image size); all zeros for prior `none`. */
  prior: Plane;
  /** Optional grey motion stack {I-2T, I-T, I+T, I+2T} for video, at the image's size or smaller. */
  motion?: Plane[];
  /**
   * Whether the plate's edges may be re-aligned locally to the image (default true). A video shot
   * from a tripod has no residue to remove: its plate is the camera's own view.
   */
  realign?: boolean;
  /** A crop decided by the caller (video smooths it over time); engines that crop use it. */
  box?: { x: number; y: number; width: number; height: number };
  /**
   * |I − plate| computed beforehand (a video's prior thread does it for a still plate), for a plate
   * that covers the whole image, on the engine's `differenceGrid`: the engine then does not.
   */
  difference?: PlateDifference;
  /**
   * The image on the engine's working grid (`differenceGrid`), shrunk beforehand as the engine would
   * shrink it (a video's prior thread does it): the engine then does not. One of another size is refused.
   */
  working?: ImageF32;
  /**
   * The classic engine's working-grid decisions for this frame, made beforehand (a video's prior
   * thread, for a still plate: classic.ts decideStill). Read only for a coarse grid without
   * re-alignment; one for another grid is refused.
   */
  coarse?: CoarseDecision;
  /**
   * The plate on the working grid with its edges re-aligned to `working` (classic.ts
   * realignOnGrid), done beforehand (a video's prior thread, for a moving camera's plate). Read
   * only for a coarse grid with re-alignment; one for another grid is refused.
   */
  gridPlate?: GridPlate;
  /**
   * The caller's shrinks (ops.ts), shared with its own stages: the image, the prior, the plate and
   * its coverage are shrunk to the working grid through it (a photo's prior, colour fit and plate
   * check have made them already). They must stay unchanged while the engine runs.
   */
  shrinks?: Shrinks;
  /**
   * Another thread idle while the engine runs (a photo's prior thread): the classic engine hands it
   * part of the band's full-resolution re-alignment and does the rest meanwhile.
   */
  helper?: BandHelper;
}

/** Work another thread can do for an engine. */
export interface BandHelper {
  /** `realignPart` of a band part (align/residue.ts) there; undefined where it cannot (the engine then does the part itself). */
  realign(part: BandPart): Promise<BandMoves | undefined>;
}

/** The plate shrunk to the working grid and its edges re-aligned there (classic.ts realignOnGrid). */
export interface GridPlate {
  plate: ImageF32;
  report: ResidueReport;
  /** The shift that re-aligned each grid pixel, where any was moved. */
  shifts?: ShiftField;
}

/** What the classic engine decides on its working grid for a whole frame (classic.ts). */
export interface CoarseDecision {
  /** The noise level of |I − B|, from its full-resolution samples. */
  noise: number;
  /** Where alpha may be non-zero. */
  region: Mask;
  /** Opaque for sure. */
  sure: Mask;
  /** Alpha where the compositing equation is ill-posed (prior or the evidence's silhouette). */
  fallback: Plane;
  /** The subject's colours, propagated from opaque pixels (second pass). */
  fHat: ImageF32;
  /** Cells settled opaque or clear, neighbourhoods included: no full-resolution work there. */
  opaque: Mask;
  clear: Mask;
}

export interface MatteOutput {
  alpha: Plane;
  foreground: ImageF32;
  /** A rectangle [x0, y0, x1, y1) outside which alpha is 0 (not necessarily the tightest), where the engine knows one without a scan. */
  support?: [number, number, number, number];
  /** Engine-specific measurements for the report. */
  details: Record<string, number | string | boolean>;
}

export interface MatteEngine {
  readonly name: EngineName;
  matte(input: MatteInput): Promise<MatteOutput>;
  /** Engines that read `MatteInput.difference`: the grid it is pooled on for an image of this size (none: not wanted). */
  differenceGrid?(width: number, height: number): { width: number; height: number } | undefined;
  /** The engine reads `MatteInput.coarse`: its working-grid decisions for a still plate are classic.ts decideStill's. */
  readonly decidesStill?: boolean;
}
