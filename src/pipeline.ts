/**
 * The image pipeline as one object: `createMatter()` loads models once, `matte()` runs
 * decode → prior → align → matte → composite on typed buffers and reports what it did. Node's edge:
 * decoding (sharp), the network engine (ONNX Runtime) and video (ffmpeg) are here; the steps after
 * decoding are photo.ts's, shared with the browser.
 */
import type { AlignMode } from './align/homography.js';
import { parseColour } from './composite/index.js';
import { loadCv } from './cv.js';
import { CleanplateError } from './errors.js';
import type { ImageF32 } from './image.js';
import { decodeImage, DEFAULT_MAX_PIXELS } from './io/decode.js';
import type { FrameIndex } from './io/video-probe.js';
import { ClassicEngine, type ClassicOptions } from './matte/classic.js';
import { NetworkEngine } from './matte/network.js';
import type { BandRefiner } from './matte/refine.js';
import { OnnxRefiner } from './matte/refiner-onnx.js';
import type { EngineName, MatteEngine } from './matte/engine.js';
import type { BandPart } from './align/residue.js';
import { mattePhoto, type MatteResult, type PhotoHelpers, type PhotoSetup } from './photo.js';
import { checkPriorFiles, createPrior, type Prior, type PriorName } from './prior/index.js';
import { sharedPriorThreads, type PriorThreads } from './prior/keeper.js';
import { ThreadedPrior } from './prior/threaded.js';
import { analyseVideo, matteVideo, type VideoReport, type VideoRequest, type VideoState } from './video/matte-video.js';

// The platform-free photo steps live in photo.ts (the browser runs them too); re-exported for the library's users.
export { alignPlate, checkPlate, matchPlate, placePlate, plateReport, type MatteReport, type MatteResult, type PlacedPlate } from './photo.js';

export interface MatterOptions {
  prior?: PriorName;
  engine?: EngineName;
  align?: AlignMode;
  maxPixels?: number;
  /** Folder holding prior/ and the network models; defaults to the package's models/. */
  modelsDir?: string;
  /** Which network model of models/network.json (default: the manifest's default). */
  networkModel?: string;
  /** Which refiner model of models/refiner.json the `refined` engine runs (default: the manifest's default). */
  refinerModel?: string;
  /** A band refiner of your own for the `refined` engine (training records its inputs this way). */
  refiner?: BandRefiner;
  /** Tuning of the classic engine (working resolution of its whole-frame decisions, refinement radius). */
  classic?: ClassicOptions;
  /**
   * Where the prior's model runs: on a prior thread (the second core) of these threads
   * (src/prior/keeper.ts; the CLI and the service keep their own), by default of threads shared by
   * all of this process's matters; `false`: on the calling thread. A photo's prior is computed
   * there while the calling thread tracks the plate; a video's runs ahead of its matting.
   */
  priorThreads?: PriorThreads | false;
}

export type ImageSource = string | Uint8Array | ImageF32;

export interface MatteRequest {
  image: ImageSource;
  plate?: ImageSource;
  /** A new background: an image (scaled to cover) or a hex colour. */
  background?: ImageSource;
  color?: string;
}

export interface Matter {
  readonly options: Required<Omit<MatterOptions, 'modelsDir' | 'networkModel' | 'classic' | 'refinerModel' | 'refiner' | 'priorThreads'>>;
  matte(request: MatteRequest): Promise<MatteResult>;
  /** Mattes a video file frame by frame through ffmpeg, streaming; see VideoRequest. */
  matteVideo(request: VideoRequest): Promise<VideoReport>;
  /**
   * A video's per-video decisions (colour pass: median colour, camera, plate check), for
   * `VideoRequest.state`; with its frame index (probeFrames) the sampled frames are read by seeking.
   */
  analyseVideo(request: Pick<VideoRequest, 'input' | 'plate' | 'temporal' | 'signal'> & { index?: FrameIndex }): Promise<VideoState>;
}

/** An image given as a path, encoded bytes or an RGB buffer, decoded within the pixel limit. */
export async function loadImage(source: ImageSource, maxPixels: number, name: string): Promise<ImageF32> {
  if (typeof source === 'string' || source instanceof Uint8Array) return decodeImage(source, { maxPixels, name });
  if (source.channels !== 3) throw new CleanplateError(`expected an RGB image buffer, got ${source.channels} channels`, name);
  return source;
}

export async function createMatter(options: MatterOptions = {}): Promise<Matter> {
  const resolved = {
    prior: options.prior ?? 'rvm',
    engine: options.engine ?? 'classic',
    align: options.align ?? 'auto',
    maxPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS,
  } as const;
  if (!['rvm', 'selfie', 'none'].includes(resolved.prior)) throw new CleanplateError(`unknown prior '${resolved.prior}' (rvm, selfie or none)`);
  if (!['auto', 'homography', 'none'].includes(resolved.align)) throw new CleanplateError(`unknown alignment '${resolved.align}' (auto, homography or none)`);
  let engine: MatteEngine;
  if (resolved.engine === 'classic') engine = new ClassicEngine(options.classic);
  else if (resolved.engine === 'refined') engine = new ClassicEngine(options.classic, options.refiner ?? await OnnxRefiner.create(options.refinerModel, options.modelsDir));
  else if (resolved.engine === 'network') engine = await NetworkEngine.create(options.networkModel, options.modelsDir);
  else throw new CleanplateError(`unknown engine '${resolved.engine}' (classic, refined or network)`);
  await loadCv();
  const priorDir = options.modelsDir && `${options.modelsDir}/prior`;
  const threads = options.priorThreads === false ? undefined : options.priorThreads ?? sharedPriorThreads();
  // The model on this thread only when something needs it here (its runtime and the model take time to load).
  let local: Promise<Prior> | undefined;
  const localPrior = () => (local ??= createPrior(resolved.prior, priorDir));
  let prior: Prior;
  if (threads && resolved.prior !== 'none') {
    // The model files' errors now, as loading the model here would give them, not at the first photo.
    await checkPriorFiles(resolved.prior, priorDir);
    prior = new ThreadedPrior(resolved.prior, threads, localPrior, priorDir);
  } else {
    prior = await localPrior();
  }
  // The prior thread's photo work besides the prior (part of the band's re-alignment; once it has
  // OpenCV, from a process's third photo on, part of the corners' tracking and the plate check's
  // judgement: PriorThread.withOpenCv), each asked for while this thread goes on, queued there
  // behind the photo's prior (keeper.ts helping). A video holding the thread turns it away; this
  // thread then does it.
  const helpers = (): PhotoHelpers | undefined => {
    const thread = threads && resolved.prior !== 'none' ? threads.helping?.(resolved.prior, priorDir) : undefined;
    if (!thread) return undefined;
    const band = { realign: (part: BandPart) => thread.realignBand(part) };
    return thread.withOpenCv() ? { band, flow: (job) => thread.flow(job), assess: (grid) => thread.assess(grid) } : { band };
  };
  const setup: PhotoSetup = { engine, prior, options: { prior: resolved.prior, engine: resolved.engine, align: resolved.align }, helpers };
  const videoParts = { engine, prior, priorName: resolved.prior, ...(priorDir ? { priorDir } : {}), align: resolved.align, maxPixels: resolved.maxPixels,
    ...(threads ? { priorThreads: threads } : {}) };

  return {
    options: resolved,
    matteVideo: (request) => matteVideo(videoParts, request),
    analyseVideo: (request) => analyseVideo(videoParts, request),
    async matte(request: MatteRequest): Promise<MatteResult> {
      const timings: Record<string, number> = {};
      let t = performance.now();
      const lap = (stage: string) => { const now = performance.now(); timings[stage] = +((timings[stage] ?? 0) + now - t).toFixed(1); t = now; };
      // sharp decodes on libuv's pool: the files at once keep both cores busy.
      const [image, plateRaw, background] = await Promise.all([
        loadImage(request.image, resolved.maxPixels, 'image'),
        request.plate === undefined ? undefined : loadImage(request.plate, resolved.maxPixels, 'plate'),
        request.background === undefined ? undefined : loadImage(request.background, resolved.maxPixels, 'background'),
      ]);
      const colour = request.color === undefined ? undefined : parseColour(request.color);
      if (request.plate === undefined && resolved.prior === 'none') throw new CleanplateError('nothing to matte from: give a plate, or a prior (rvm or selfie) to matte without one');
      lap('decode');
      return mattePhoto(setup, { image, plate: plateRaw, background, colour }, timings, t);
    },
  };
}
