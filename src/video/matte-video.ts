/**
 * Video matting, streamed: ffmpeg decodes frames into a pipe, each frame goes through prior →
 * align → matte → composite, and ffmpeg encoders take the results from pipes. Memory is a few
 * frames whatever the video's length. Outputs are written under temporary names and renamed
 * together at the end, so an interrupted run leaves nothing under a final name.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ColourReport } from '../align/colour.js';
import { cornerShift, IDENTITY, STILL_SHIFT_PX, type AlignmentReport } from '../align/homography.js';
import { composite, parseColour, resizeCover, solidColour } from '../composite/index.js';
import { CleanplateError, InterruptedError } from '../errors.js';
import { fromBytes, rgbaBytes, sameSize, toBytes, type ImageF32, type Plane } from '../image.js';
import { encodePng, encodeRgbaPng } from '../io/encode.js';
import { ensureWritableDir, tempPath } from '../io/folders.js';
import { tool } from '../io/ffmpeg.js';
import { probeVideo, type FrameIndex, type VideoInfo } from '../io/video-probe.js';
import { FrameReader, FrameWriter, seekTo, throughPixelFormat, type WriterOptions } from '../io/video-stream.js';
import type { PlateDifference } from '../matte/difference.js';
import type { CoarseDecision, MatteEngine } from '../matte/engine.js';
import { NetworkEngine, type Box } from '../matte/network.js';
import { loadImage } from '../pipeline.js';
import { alignPlate, matchPlate, placePlate, plateReport, sampleCheck, sampleFit, trackInChain, type MatteReport, type SampleOutcome, type TrackChain } from '../photo.js';
import type { PlateAssessment } from '../align/plate-check.js';
import { RVM_VIDEO_LONG_SIDE, type Prior, type PriorName } from '../prior/index.js';
import { estimateOnThread } from '../prior/threaded.js';
import { PriorThread, type FrameEstimate, type Refit, type StillDecision } from '../prior/worker.js';
import type { PlacedAhead } from '../prior/thread.js';
import type { PriorThreads } from '../prior/keeper.js';
import type { AlignMode } from '../align/homography.js';
import { MotionStack } from './motion.js';
import { peakRssMB } from '../memory.js';
import { ScratchArena } from '../alloc.js';
import { AlphaStabiliser, BoxSmoother, medianColour, smoothedHomography } from './temporal.js';
import { buildPlate, type PlateReport } from '../plate/source.js';

export interface VideoOutputs {
  /** H.264 composite onto the new background, with the input's audio. Needs `background` or `color`. */
  composite?: string;
  /** Grey H.264 alpha. */
  alpha?: string;
  /** Foreground with straight alpha: VP9 WebM, or ProRes 4444 with the input's audio when the name ends in `.mov`. */
  foreground?: string;
  /** A folder of RGBA PNGs (straight alpha), 000001.png … one per input frame. */
  foregroundSequence?: string;
  /** A folder of lossless 8-bit alpha PNGs, 000001.png … one per input frame. */
  alphaSequence?: string;
  /** A JSON report: options, per-stage time, alignment and colour statistics. */
  report?: string;
}

export interface VideoProgress { frame: number; frames: number; fps: number; etaSeconds: number }

export interface VideoRequest {
  input: string;
  /** A plate image, or `'auto'`: built from the input itself (see src/plate/). */
  plate?: string | ImageF32;
  output: VideoOutputs;
  /** A new background: an image (scaled to cover) or a video (looped or trimmed to the input's length). */
  background?: string | ImageF32;
  color?: string;
  /** Temporal smoothing, median colour, motion stack and stabiliser (default on); off = each frame as an image. */
  temporal?: boolean;
  /** T of the motion stack, in frames (the paper: 20). */
  motionStride?: number;
  /**
   * What the colour pass would compute, computed beforehand (`analyseVideo`): the pass is skipped
   * and this is used, so that every segment of a video split across machines uses the same.
   */
  state?: VideoState;
  /** Only part of the video: its frames' outputs are written, the rest is decoded only as far as the temporal cues need. */
  segment?: VideoSegment;
  signal?: AbortSignal;
  onProgress?: (p: VideoProgress) => void;
}

/** What a video's colour pass decides once for the whole video, from frames sampled across it. JSON as it is. */
export interface VideoState {
  /** The median gain/bias over the sampled frames (the paper's video recipe); absent without a plate or without temporal cues. */
  colour?: ColourReport & { sampledFrames: number };
  /** `static` (tripod: the plate is used as it is) or `moving` (aligned every frame); absent when not decided. */
  camera?: 'static' | 'moving';
  /** The plate check over the sampled frames. */
  plate: MatteReport['plate'];
}

/**
 * A part of a video, matted so that its frames equal those of a run over the whole video. Decoding
 * starts at the keyframe at or before the warm-up and drops the frames before it by their
 * timestamps (`index`); the `warmup` frames before `start` are matted and thrown away so that the
 * recurrent cues (the stabiliser's previous α, the crop box, the plate tracker, the prior's state)
 * have run into the segment as they would have in the whole run; WINDOW frames after `end` are
 * analysed (not matted) for the smoothing windows, and the motion stack decodes 2T frames either side.
 */
export interface VideoSegment {
  /** First and one-past-last frame (0-based, presentation order) whose outputs are written. */
  start: number;
  end: number;
  /** The input's frame index (probeFrames). */
  index: FrameIndex;
  /** Frames matted before `start` for the recurrent cues only (default SEGMENT_WARMUP; at least WINDOW with temporal cues). */
  warmup?: number;
  /**
   * The input as probed once for the whole video (its `file` is ignored): spares each segment
   * ffprobe's count of every packet, a read of the whole input per segment.
   */
  info?: VideoInfo;
}

export interface VideoReport {
  input: { file: string; width: number; height: number; frames: number; rate: string; rotation: number; pixelFormat: string; audio: string | null };
  engine: string;
  prior: PriorName;
  temporal: boolean;
  frames: number;
  outputs: string[];
  colour?: ColourReport & { sampledFrames: number };
  /** The plate check over the sampled frames: the median confidence, every distinct warning. */
  plate: MatteReport['plate'];
  /** With `plate: 'auto'`: how the plate was built from the input (frames, coverage, camera). */
  autoPlate?: PlateReport;
  /** From the sampled frames: `static` (tripod, plate used as it is) or `moving` (aligned every frame). */
  camera?: 'static' | 'moving';
  alignment?: { methods: Record<string, number>; medianInliers: number; tracked: number };
  /** Seconds per stage over the whole video; `decodeWait`/`encodeWait` are time the matting waited on ffmpeg. */
  seconds: Record<string, number>;
  fps: number;
  /**
   * Seconds from the start to the first frame written (probing, the plate, the colour pass, the
   * models' start-up), and the frame rate after it: what a long video runs at. Absent from a
   * split video's joined report (its segments ran side by side).
   */
  firstFrameSeconds?: number;
  steadyFps?: number;
  /** Share of the wall time spent waiting on decoding and encoding rather than matting. */
  ioShare: number;
  /** Peak resident memory of this process so far, in MB. */
  peakRssMB: number;
  /** A segment's frames, and the frames matted before them only to warm the temporal cues up. */
  segment?: { start: number; end: number; warmup: number };
}

export interface VideoParts {
  engine: MatteEngine;
  prior: Prior;
  priorName: PriorName;
  /** Where the prior's model files are, for the prior thread (default: the package's). */
  priorDir?: string;
  align: AlignMode;
  maxPixels: number;
  /** Prior threads kept across videos (a service worker's): a video borrows one instead of starting its own. */
  priorThreads?: PriorThreads;
}

const VIDEO_EXTENSIONS = new Set(['.mp4', '.m4v', '.mov', '.mkv', '.webm', '.avi', '.mpg', '.mpeg', '.ts', '.mts', '.gif', '.ogv']);
const AUDIO_COPYABLE_TO_MP4 = new Set(['aac', 'mp3', 'ac3', 'eac3', 'alac', 'opus']);
const AUDIO_COPYABLE_TO_MOV = new Set(['aac', 'mp3', 'ac3', 'eac3', 'alac', 'pcm_s16le', 'pcm_s24le', 'pcm_s32le', 'pcm_f32le']);
/** Frames looked at on each side when smoothing the homography and the crop box. */
export const WINDOW = 2;
/**
 * Frames a segment mattes before its first frame and throws away. The stabiliser keeps at most
 * 0.6 of the previous α, so a different start fades to 0.6^16 ≈ 3e-4 of a difference (under a
 * tenth of an 8-bit step) by the segment's first frame: with the classic engine and a prior without
 * memory a segment equals the whole run but where that residue tips a value over an 8-bit rounding
 * boundary (one level, at a handful of pixels in millions at most). A hand-held plate's tracker would remember further
 * back, but it is re-acquired on a grid (REACQUIRE_EVERY) and such a segment's warm-up starts on
 * the grid (up to REACQUIRE_EVERY - 1 frames more), so it equals the whole run too but for the
 * stabiliser's rounding (test/video.test.ts: a few dozen of 5.5M pixels one level apart, MAD ~2e-8;
 * 9.1e-4 before). RVM's recurrent state and the network's held crop box
 * remember further back than any warm-up; there a segment differs a little (README, Service:
 * measured MAD 3.0e-4 and 6.5e-4 on the test video).
 */
export const SEGMENT_WARMUP = 16;
/**
 * A hand-held plate is tracked from the previous frame's fit, and re-acquired (ORB from scratch,
 * as on a video's first frame) on every frame whose number is a multiple of this, in every run:
 * from such a frame on, the tracker's state depends on nothing before it, so a segment whose
 * warm-up starts there tracks exactly as the whole run. Cost: acquiring ≈ 560 ms (~100 ms less since its check samples the plate: trackPlate) against tracking
 * ≈ 170 ms on a 720p frame (measured on a loaded machine), i.e. ~25 ms a frame on average, and a
 * split hand-held segment mattes 7.5 warm-up frames more on average. 16 about minimises the two
 * together for a split video (a grid of 8 costs it as much, a whole run twice as much).
 */
export const REACQUIRE_EVERY = 16;

/** Refits (PriorThread.refit) queued on the prior thread at once: it works through them one by one. */
const REFITS_AHEAD = 2;
/**
 * Frames sampled for the colour correction and the tripod test: one in thirty (the paper's MATLAB
 * version: the median over every 30th frame), at least 3, at most 10 (each costs ~0.5 s at 720p).
 */
const COLOUR_SAMPLES = 10;
const COLOUR_SAMPLES_MIN = 3;
const COLOUR_SAMPLE_EVERY = 30;
/** Frames the prior thread works on ahead of the matting. */
const PRIOR_AHEAD = 2;
/**
 * During a whole run's colour pass the prior thread works on the first frames: at most this many,
 * and at most PREFEED_BYTES of frames as floats (which the thread hands back with their priors).
 */
const PREFEED_FRAMES = 12;
const PREFEED_BYTES = 160 * 2 ** 20;
/**
 * Frames decided late (PriorThread.decideStill) on the prior thread at a time. Each holds a copy of
 * its frame there; with two, the next one waits there while one is decided, so the thread does not
 * start a queued frame between them (1, 2, 4 and all ~10 at once measured alike at 720p within this
 * VM's noise; all at once held ~80 MB more at 1080p).
 */
const LATE_AHEAD = 2;

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new InterruptedError();
}

/** A frame handed to the prior thread (or, without one, its bytes), and its refit where it has one. */
interface Sent { index: number; bytes?: Uint8Array; prior?: Promise<FrameEstimate>; refit?: Promise<Refit | undefined> }

interface Entry {
  index: number;
  image: ImageF32;
  prior: Plane;
  /** The frame's difference from the still plate, computed on the prior thread (MatteInput.difference). */
  difference?: PlateDifference;
  /** The frame on the engine's working grid, shrunk on the prior thread (MatteInput.working). */
  working?: ImageF32;
  /** The classic engine's decisions for the frame with the still plate, made on the prior thread (MatteInput.coarse). */
  coarse?: CoarseDecision;
  alignment?: AlignmentReport;
  /** The fit being tracked on the prior thread for a frame sent before the camera was known to move (PriorThread.refit). */
  refit?: Promise<Refit | undefined>;
  box?: Box;
}

/** Arguments that mux the input's audio (given as ffmpeg's second input) into an mp4 or mov, copied where the container can hold it. */
export function audioMux(info: VideoInfo, container: 'mp4' | 'mov'): string[] {
  if (!info.audio) return [];
  // MOV takes PCM where it cannot hold the codec, MP4 takes AAC.
  const copyable = container === 'mov' ? AUDIO_COPYABLE_TO_MOV : AUDIO_COPYABLE_TO_MP4;
  return ['-map', '1:a:0', '-c:a', copyable.has(info.audio.codec) ? 'copy' : container === 'mov' ? 'pcm_s16le' : 'aac'];
}

/** Whether a foreground output is ProRes 4444 in a MOV (by its name), else VP9 WebM. */
export function isMov(file: string): boolean {
  return extname(file).toLowerCase() === '.mov';
}

/**
 * The encoder of one video output. `withAudio`: mux the input's audio (false for a segment's part:
 * the whole video's audio is muxed once over the joined parts).
 */
export function writerOptions(kind: 'composite' | 'alpha' | 'foreground', info: VideoInfo, file = '', withAudio = true): WriterOptions {
  const { width, height, rate } = info;
  const audioInput = withAudio && info.audio ? ['-i', info.file] : [];
  // 4:2:0 needs even sides; odd-sized video keeps its exact size in 4:4:4 instead.
  const chroma = width % 2 || height % 2 ? 'yuv444p' : 'yuv420p';
  const h264 = (preset: string) => ['-c:v', 'libx264', '-preset', preset, '-pix_fmt', chroma, '-movflags', '+faststart'];
  // Alpha is flat 0/1 with a thin band of edges: x264's ultrafast at CRF 13 keeps it closer to the
  // matte than veryfast at CRF 10 (a 720p speed clip: mean error 6.3e-4 against 8.1e-4, largest 11
  // levels against 19) for 40% of the CPU (~13 against ~31 ms a frame, user + system), in files
  // ~1.6 times as large (no CABAC): on two cores the encoder's CPU is taken from the matting.
  if (kind === 'alpha') return { width, height, rate, pixelFormat: 'gray', output: [...h264('ultrafast'), '-crf', '13'] };
  if (kind === 'foreground' && isMov(file)) {
    // ProRes 4444 with 16-bit alpha, straight (unpremultiplied) as editors expect, BT.709 tagged; audio copied (PCM where MOV cannot hold it).
    return { width, height, rate, pixelFormat: 'rgba', extraInputs: audioInput, output: ['-map', '0:v:0', ...(audioInput.length ? audioMux(info, 'mov') : []),
      '-vf', 'scale=out_color_matrix=bt709:out_range=tv,format=yuva444p10le', '-c:v', 'prores_ks', '-profile:v', '4444', '-pix_fmt', 'yuva444p10le', '-alpha_bits', '16',
      '-vendor', 'apl0', '-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-f', 'mov'] };
  }
  if (kind === 'foreground') {
    return { width, height, rate, pixelFormat: 'rgba', output: ['-c:v', 'libvpx-vp9', '-pix_fmt', 'yuva420p', '-deadline', 'realtime', '-cpu-used', '8', '-row-mt', '1', '-crf', '30', '-b:v', '0', '-auto-alt-ref', '0', '-lag-in-frames', '0', '-f', 'webm'] };
  }
  return { width, height, rate, pixelFormat: 'rgb24', extraInputs: audioInput, output: ['-map', '0:v:0', ...(audioInput.length ? audioMux(info, 'mp4') : []), ...h264('veryfast'), '-crf', '18'] };
}

/** The sampled frames' plate checks as one entry: the median confidence, every distinct warning once. */
function summarisePlate(given: boolean, assessments: PlateAssessment[]): MatteReport['plate'] {
  if (!given || !assessments.length) return { given, warnings: [] };
  const sorted = [...assessments].sort((a, b) => a.confidence - b.confidence);
  const median = sorted[sorted.length >> 1]!;
  const warnings = [...new Set(assessments.flatMap((a) => a.warnings))];
  return { ...plateReport(median), warnings };
}

type Timed = <T>(stage: string, fn: () => T | Promise<T>) => Promise<T>;

function readPlate(parts: VideoParts, plate: string | ImageF32): Promise<ImageF32> {
  return loadImage(plate, parts.maxPixels, 'plate');
}

/** The plate as the frames will see it: loaded (or built from the input), with the video's coarse colour planes. */
async function loadVideoPlate(parts: VideoParts, request: Pick<VideoRequest, 'input' | 'plate' | 'signal'>, info: VideoInfo, reading?: Promise<ImageF32>): Promise<{ plateRaw?: ImageF32; autoPlate?: PlateReport }> {
  let plateRaw = request.plate === undefined || request.plate === 'auto' ? undefined : await (reading ?? readPlate(parts, request.plate));
  let autoPlate: PlateReport | undefined;
  if (request.plate === 'auto') {
    const built = await buildPlate({ sources: [request.input], prior: parts.prior, priorName: parts.priorName, align: parts.align, maxPixels: parts.maxPixels, signal: request.signal });
    if (built.insufficient) throw new CleanplateError(built.insufficient, request.input);
    plateRaw = built.plate;
    autoPlate = built.report;
  }
  const subsampled = /^(yuvj?420p|nv12|nv21|yuvj?422p|yuv420p10le|yuv422p10le)$/.exec(info.pixelFormat)?.[1];
  // A plate built from the decoded frames already has their colour planes.
  if (plateRaw && subsampled && !autoPlate) {
    const plateName = typeof request.plate === 'string' ? request.plate : 'plate';
    const bytes = await throughPixelFormat(toBytes(plateRaw), plateRaw.width, plateRaw.height, subsampled.replace('10le', '').replace('nv21', 'nv12'), plateName);
    plateRaw = fromBytes(plateRaw.width, plateRaw.height, 3, bytes);
  }
  return { plateRaw, ...(autoPlate ? { autoPlate } : {}) };
}

/**
 * Frames 0, step, 2·step, … of the video. Without an index one decoder runs through the whole video
 * and ffmpeg keeps those; with one, each is decoded from the keyframe before it (a few GOPs read
 * instead of the whole input: the same frames, what a split video's plan needs on one machine).
 */
async function* sampleFrames(info: VideoInfo, step: number, index?: FrameIndex): AsyncGenerator<Uint8Array> {
  const size = { width: info.width, height: info.height, pixelFormat: 'rgb24' as const };
  if (!index) {
    const sampler = new FrameReader(info.file, { ...size, filter: `select='not(mod(n\\,${step}))'` });
    try {
      for (let frame = await sampler.next(); frame; frame = await sampler.next()) yield frame;
    } finally {
      sampler.close();
    }
    return;
  }
  for (let n = 0; n < info.frames; n += step) {
    const seek = seekTo(index, n);
    const reader = new FrameReader(info.file, { ...size, queue: 1, ...(seek ? { seek } : {}) });
    try {
      const frame = await reader.next();
      if (!frame) throw new CleanplateError(`frame ${n + 1} could not be decoded`, info.file);
      yield frame;
    } finally {
      reader.close();
    }
  }
}

/** Resolves after the event loop's next turn (pending I/O callbacks run first). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Every how many frames the colour pass samples one. */
function colourStep(info: VideoInfo): number {
  const samples = Math.min(COLOUR_SAMPLES, Math.max(COLOUR_SAMPLES_MIN, Math.round(info.frames / COLOUR_SAMPLE_EVERY)));
  return Math.max(1, Math.floor(info.frames / samples));
}

/**
 * The colour pass's sampled frames, their decoder started now: a whole run starts it as soon as
 * the video is probed, so that ffmpeg's start and the first sample's decoding (~0.3-0.8 s under
 * the start-up's load) overlap the plate's reading instead of following it.
 */
function startSampling(info: VideoInfo, index?: FrameIndex): Sampling {
  const decoded = sampleFrames(info, colourStep(info), index);
  const first = decoded.next();
  first.catch(() => undefined); // awaited by the colour pass; a run failing before it closes the sampler
  return { decoded, first };
}

interface Sampling { decoded: AsyncGenerator<Uint8Array>; first: Promise<IteratorResult<Uint8Array>> }

/** Stops a sampler that the colour pass never ran (no plate, or a failure before it). */
async function stopSampling(sampling: Sampling | undefined): Promise<void> {
  if (!sampling) return;
  await sampling.first.catch(() => undefined);
  await sampling.decoded.return(undefined).catch(() => undefined);
}

/**
 * The colour pass: frames sampled across the video (one in thirty, 3 to 10) give the paper's median
 * gain/bias, the plate check, and whether the camera stood still (every sampled frame lines up with
 * the plate as it is: fitting a homography to each frame would only add noise).
 */
async function colourPass(parts: VideoParts, info: VideoInfo, plateRaw: ImageF32 | undefined, temporal: boolean, timed: Timed, signal?: AbortSignal, index?: FrameIndex, thread?: PriorThread, sampling?: Sampling): Promise<VideoState> {
  if (!plateRaw) { await stopSampling(sampling); return { plate: summarisePlate(false, []) }; }
  const subjectOf = (prior: Plane) => (parts.priorName === 'none' ? undefined : prior);
  const assessments: PlateAssessment[] = [];
  const reports: ColourReport[] = [];
  const sampledShifts: number[] = [];
  const refusals: CleanplateError[] = [];
  // The priors on the video's coarser grid (its frames' priors are refined by the plate too): a
  // mask for the features, the colour fit and the plate check, at about half the photo's cost.
  // On the video's prior thread when it has one (this thread then never loads the model: ~2 s of
  // start-up, and its memory), the next sample's prior computed there while this one is aligned here.
  const options = { longSide: RVM_VIDEO_LONG_SIDE };
  const estimate = (image: ImageF32) => (thread ? estimateOnThread(thread, parts.priorName, image, options) : parts.prior.estimate(image, options));
  const { decoded, first } = sampling ?? startSampling(info, index);
  let pending: Promise<IteratorResult<Uint8Array>> | undefined = first;
  const nextBytes = async () => {
    const next = pending ?? decoded.next();
    pending = undefined;
    const { value, done } = await next;
    return done ? undefined : value;
  };
  const start = (bytes: Uint8Array, index: number) => {
    const image = fromBytes(info.width, info.height, 3, bytes);
    const prior = estimate(image);
    prior.catch(() => undefined); // awaited below; a failure after another error is not left unhandled
    return { index, image, prior };
  };
  /** A sample done on this thread. */
  const here = async (sample: { image: ImageF32; prior: Promise<Plane> }): Promise<SampleOutcome> => {
    const { image } = sample;
    const subject = subjectOf(await timed('prior', () => sample.prior));
    // The pass's alignments are long synchronous stretches: the event loop gets a turn before
    // each part, so that the first frames' decoded bytes reach the prior thread meanwhile.
    await nextTurn();
    const fit = await timed('align', () => sampleFit(image, plateRaw, subject, parts.align));
    if (!fit) return {};
    await nextTurn();
    return timed('align', () => sampleCheck(image, fit, subject));
  };
  // Each sample's outcome, in sample order (the median colour and the plate's summary see them so).
  // With a prior thread every other sample is done there whole (its prior, fit, colour fit and
  // check: PriorThread.colourSample) while this thread does the others: the pass's alignments,
  // its longest part, on both cores.
  const outcomes: Promise<SampleOutcome>[] = [];
  /** A sample sent to the prior thread; done here after all where the thread cannot. */
  const there = (on: PriorThread, bytes: Uint8Array, index: number) => {
    outcomes[index] = on.colourSample(bytes, info.width, info.height, plateRaw, parts.align, options.longSide, parts.priorName !== 'none')
      .then((outcome) => outcome ?? here(start(bytes, index)));
    outcomes[index]!.catch(() => undefined); // awaited below, after this thread's samples
  };
  try {
    const opening = await nextBytes();
    let sample = opening ? start(opening, 0) : undefined;
    while (sample) {
      checkAborted(signal);
      const current = sample;
      sample = undefined;
      if (thread) {
        // Before this sample's alignment, the next two: the thread's own, and this thread's next,
        // whose prior is asked for first (the thread works in order: behind the thread's whole
        // sample, ~1 s, that prior left this thread idle).
        const theirs = await nextBytes();
        const mine = theirs && await nextBytes();
        if (mine) sample = start(mine, current.index + 2);
        if (theirs) there(thread, theirs, current.index + 1);
      }
      outcomes[current.index] = here(current);
      await outcomes[current.index];
      if (!thread) { const bytes = await nextBytes(); sample = bytes ? start(bytes, current.index + 1) : undefined; }
    }
  } finally {
    await decoded.return(undefined);
  }
  for (const outcome of await timed('align', () => Promise.all(outcomes))) {
    if (!outcome.alignment) continue;
    sampledShifts.push(sameSize(info, plateRaw) ? cornerShift(outcome.alignment.homography, info.width, info.height) : Infinity);
    if (outcome.assessment) assessments.push(outcome.assessment);
    if (outcome.refusal) refusals.push(outcome.refusal);
    if (outcome.colour) reports.push(outcome.colour);
  }
  if (refusals.length && !assessments.length) throw refusals[0]!;
  const state: VideoState = { plate: summarisePlate(true, assessments) };
  if (temporal) { const c = medianColour(reports); if (c) state.colour = { ...c, sampledFrames: reports.length }; }
  if (parts.align !== 'none' && temporal && sampledShifts.length >= Math.min(3, info.frames)) {
    state.camera = sampledShifts.every((d) => d <= STILL_SHIFT_PX) ? 'static' : 'moving';
  }
  return state;
}

function checkRequest(parts: VideoParts, request: Pick<VideoRequest, 'plate'>, info: VideoInfo): void {
  if (request.plate === undefined && parts.priorName === 'none') throw new CleanplateError('nothing to matte from: give a plate, or a prior (rvm or selfie) to matte without one');
  if (info.width * info.height > parts.maxPixels) throw new CleanplateError(`video is ${info.width}x${info.height}, over the limit of ${(parts.maxPixels / 1e6).toFixed(1)} MP`, info.file);
}

/**
 * The per-video decisions of `matteVideo` (the colour pass) on their own, to be computed once and
 * handed to every segment of a video split across machines as `VideoRequest.state`. With the
 * video's frame index the sampled frames are decoded from their keyframes (the same frames, without
 * reading the whole input).
 */
export async function analyseVideo(parts: VideoParts, request: Pick<VideoRequest, 'input' | 'plate' | 'temporal' | 'signal'> & { index?: FrameIndex }): Promise<VideoState> {
  tool('ffmpeg');
  if (request.plate === 'auto') throw new CleanplateError('a plate built from the input (auto) is made by the whole run; give a plate file', request.input);
  const info = await probeVideo(request.input);
  checkRequest(parts, request, info);
  const { plateRaw } = await loadVideoPlate(parts, request, info);
  return colourPass(parts, info, plateRaw, request.temporal ?? true, (_stage, fn) => Promise.resolve(fn()), request.signal, request.index);
}

export async function matteVideo(parts: VideoParts, request: VideoRequest): Promise<VideoReport> {
  const started = performance.now();
  const seconds: Record<string, number> = { decodeWait: 0, prior: 0, align: 0, matte: 0, temporal: 0, composite: 0, encodeWait: 0 };
  const timed: Timed = async <T>(stage: string, fn: () => T | Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try { return await fn(); } finally { seconds[stage] = seconds[stage]! + (performance.now() - t0) / 1000; }
  };
  const { output, segment } = request;
  const temporal = request.temporal ?? true;
  if (!output.composite && !output.alpha && !output.foreground && !output.alphaSequence && !output.foregroundSequence) throw new CleanplateError('no video output requested (composite, alpha, foreground, alphaSequence or foregroundSequence)');
  if (output.composite && request.background === undefined && request.color === undefined) throw new CleanplateError('a composite needs a background or a colour');
  if (request.background !== undefined && request.color !== undefined) throw new CleanplateError('give either a background or a colour, not both');
  tool('ffmpeg');
  // The plate is decoded while the video is probed (sharp works on libuv's threads); a failure
  // of the probe is still the one reported first.
  const reading = request.plate === undefined || request.plate === 'auto' ? undefined : readPlate(parts, request.plate);
  reading?.catch(() => undefined);
  const info = segment?.info ? { ...segment.info, file: request.input } : await probeVideo(request.input);
  checkRequest(parts, request, info);
  // The frames written: [start, end). Decoding begins `lead` frames earlier (matted, not written:
  // `warmup`, or back to the grid for a tracked plate, see below) and,
  // with temporal cues, goes on WINDOW frames past the end (analysed for the smoothing windows only).
  const start = segment?.start ?? 0, end = segment?.end ?? info.frames;
  if (segment) {
    if (request.plate === 'auto') throw new CleanplateError('a plate built from the input (auto) is made by the whole run; a segment needs a plate file', request.input);
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start < end && end <= info.frames)) throw new CleanplateError(`segment ${start}..${end} is not within the video's ${info.frames} frames`, request.input);
    if (segment.index.pts.length !== info.frames) throw new CleanplateError(`the frame index lists ${segment.index.pts.length} frames, the video has ${info.frames}`, request.input);
  }
  const warmup = segment && temporal ? Math.min(start, Math.max(WINDOW, Math.round(segment.warmup ?? SEGMENT_WARMUP))) : 0;
  // A whole run reads to the end of the stream (and calls fewer frames than probed a truncation).
  const stop = !segment ? Infinity : temporal ? Math.min(info.frames, end + WINDOW) : end;
  const beyond = segment ? end : Infinity;
  const finals = [output.composite, output.alpha, output.foreground, output.alphaSequence, output.foregroundSequence, output.report].filter((f): f is string => Boolean(f));
  const inputs = [request.input, request.plate, request.background].filter((f): f is string => typeof f === 'string' && f !== 'auto').map((f) => resolve(f));
  for (const f of finals) {
    // Outputs replace files by renaming: an output named like an input would destroy that input.
    if (inputs.includes(resolve(f))) throw new CleanplateError('an output would overwrite this input; choose another output folder', f);
    await ensureWritableDir(dirname(f));
  }

  const readers: { close(): void }[] = [];
  // With temporal cues the prior follows the video with its memory (RVM's recurrent state) on a
  // coarser grid, in a thread of its own (the second core) that runs PRIOR_AHEAD frames ahead of
  // the matting; without them every frame is matted exactly as the image path would.
  const wantThread = temporal && parts.priorName !== 'none';
  let priorThread: PriorThread | undefined;
  const takeThread = () => {
    // A thread kept across videos is borrowed and handed back (the lease's close), not stopped.
    const lease = parts.priorThreads?.lend(parts.priorName, parts.priorDir);
    priorThread = lease?.thread ?? new PriorThread(parts.priorName, parts.priorDir);
    readers.push(lease ?? priorThread);
    // Its first inference at the frames' size (several times a later one's cost) while the plate is read.
    priorThread.warm(info.width, info.height);
    // Its alignment code too, where the colour pass will send it a sample (or a moving camera's frames).
    if (request.plate !== undefined && !request.state) priorThread.preloadOpenCv();
  };
  // Taken before the plate is read, but for a plate built from the input: that build's prior would
  // find the thread lent out and load a model of its own.
  if (wantThread && request.plate !== 'auto') takeThread();
  // The colour pass's decoder, started while the plate is read (closed by the pass, or below on a failure before it).
  let sampling = reading && !request.state ? startSampling(info) : undefined;
  // The encoders, started while the plate is read: spawning them later (the process grown by the
  // models) held the first frame back by ~70 ms, and their own start-up overlaps the colour pass.
  // A segment's parts carry no audio: the whole video's is muxed once over the joined parts.
  const audio = !segment;
  const writers: { final: string; writer: FrameWriter }[] = [];
  if (output.composite) writers.push({ final: output.composite, writer: new FrameWriter(tempPath(output.composite), 'composite video', writerOptions('composite', info, '', audio)) });
  if (output.alpha) writers.push({ final: output.alpha, writer: new FrameWriter(tempPath(output.alpha), 'alpha video', writerOptions('alpha', info, '', audio)) });
  if (output.foreground) writers.push({ final: output.foreground, writer: new FrameWriter(tempPath(output.foreground), 'foreground video', writerOptions('foreground', info, output.foreground, audio)) });
  let plateRaw: ImageF32 | undefined, autoPlate: PlateReport | undefined, backgroundStill: ImageF32 | undefined, backgroundVideo: FrameReader | undefined;
  let colourFlat: ImageF32 | undefined;
  try {
    if (request.color !== undefined) colourFlat = solidColour(info.width, info.height, parseColour(request.color));
    ({ plateRaw, autoPlate } = await loadVideoPlate(parts, request, info, reading));
    if (typeof request.background === 'string' && VIDEO_EXTENSIONS.has(extname(request.background).toLowerCase())) {
      const bg = await probeVideo(request.background);
      const { width: w, height: h } = info;
      // A segment's composite starts at background frame `start` (of the looped, re-timed background).
      const skip = start ? `,select='gte(n\\,${start})'` : '';
      backgroundVideo = new FrameReader(bg.file, { width: w, height: h, pixelFormat: 'rgb24', loop: true, filter: `fps=${info.rate}${skip},scale=${w}:${h}:force_original_aspect_ratio=increase,crop=${w}:${h}` });
      readers.push(backgroundVideo);
    } else if (request.background !== undefined) {
      backgroundStill = resizeCover(await loadImage(request.background, parts.maxPixels, 'background'), info.width, info.height);
    }
  } catch (err) {
    for (const r of readers) r.close();
    await stopSampling(sampling);
    await Promise.all(writers.map((w) => w.writer.abort()));
    throw err;
  }
  const subjectOf = (prior: Plane) => (parts.priorName === 'none' ? undefined : prior);
  const network = parts.engine instanceof NetworkEngine ? parts.engine : undefined;
  const stride = Math.max(1, Math.round(request.motionStride ?? 20));

  const sequenceTemp = output.alphaSequence ? tempPath(output.alphaSequence.replace(/\/+$/, '')) : undefined;
  const fgSequenceTemp = output.foregroundSequence ? tempPath(output.foregroundSequence.replace(/\/+$/, '')) : undefined;

  try {
    if (wantThread && !priorThread) takeThread();
    // Frames decoded and handed to the prior thread, not yet analysed: the thread works on them
    // while the main thread mattes the frames before (or runs the colour pass, below).
    const inFlight: Sent[] = [];
    // A whole run starts at frame 0 whatever the colour pass decides: its decoder starts now and the
    // prior thread, which would idle, works on the first frames meanwhile (up to PREFEED_BYTES of them).
    let reader: FrameReader | undefined;
    let prefeed: Promise<boolean> | undefined;
    let colourDone = false;
    if (priorThread && !segment && !request.state) {
      const early = new FrameReader(info.file, { width: info.width, height: info.height, pixelFormat: 'rgb24' });
      reader = early;
      readers.push(early);
      const limit = Math.max(PRIOR_AHEAD, Math.min(PREFEED_FRAMES, Math.floor(PREFEED_BYTES / (info.width * info.height * 3 * 4))));
      prefeed = (async () => {
        while (!colourDone && inFlight.length < limit) {
          const bytes = await early.next();
          if (!bytes) return true;
          inFlight.push({ index: inFlight.length, prior: priorThread.estimateFrame(bytes, info.width, info.height, inFlight.length) });
        }
        return false;
      })();
      // Awaited after the colour pass; if that fails first, the decoder is closed and this ends quietly.
      prefeed.catch(() => undefined);
    }
    // Colour: the paper's video recipe, a median gain/bias over frames sampled across the video
    // (computed here, or once for the whole video by whoever split it into segments).
    const passing = sampling;
    sampling = undefined; // the pass closes it from here on
    const state = request.state ?? await colourPass(parts, info, plateRaw, temporal, timed, request.signal, undefined, priorThread, passing);
    colourDone = true;
    const decodedAll = prefeed ? await prefeed : false;
    const fixedColour = temporal ? state.colour : undefined;
    const camera = plateRaw && parts.align !== 'none' && temporal ? state.camera : undefined;
    // A tripod: the plate stays put.
    const useAlignment = Boolean(plateRaw) && parts.align !== 'none' && camera !== 'static';
    // A tracked plate: the warm-up goes back to the re-acquisition before it (REACQUIRE_EVERY).
    const tracking = useAlignment && temporal;
    const lead = tracking ? start - Math.floor((start - warmup) / REACQUIRE_EVERY) * REACQUIRE_EVERY : warmup;
    const first = start - lead;
    // A tracked plate is tracked on the prior thread, beside the model, from the first frame on the
    // re-acquisition grid that it has not been sent yet: from such a frame on the fits depend on
    // nothing before it, so they are the ones this thread would find. This thread's busiest part for
    // a moving camera, off it. The frames before that (the colour pass's, up to the grid) are
    // refitted there too, from the grid frame `first` on, in a chain of their own (PriorThread.refit):
    // at 720p ~190 ms a frame that this thread spent on the first second of a hand-held video.
    const trackedFrom = Math.ceil((first + inFlight.length) / REACQUIRE_EVERY) * REACQUIRE_EVERY;
    // With the video's fixed colour, the thread places each frame's plate too (warped, corrected
    // and filled, and re-aligned on the engine's working grid: ~150 ms of a 720p frame on this
    // thread), once it has the fits of the frame's window: two frames later, while this thread
    // still mattes earlier ones.
    if (tracking && priorThread) priorThread.trackFrom(plateRaw!, parts.align, trackedFrom, REACQUIRE_EVERY, parts.priorName !== 'none', fixedColour ? { window: WINDOW, colour: fixedColour } : undefined);
    // Each is sent once the thread has handed back the frame's prior (the fit needs it) and the
    // refit REFITS_AHEAD before it is done: well before the frame's window needs the fit, and
    // without a copy of every colour-pass frame queued on the thread at once (+250 MB at 1080p).
    const refitsDone: Promise<unknown>[] = [];
    let refitsUnavailable = false;
    const refitWhenBack = (s: Sent) => {
      if (!tracking || !priorThread || !s.prior || s.index >= trackedFrom) return;
      const gate = refitsDone[refitsDone.length - REFITS_AHEAD];
      s.refit = Promise.all([s.prior, gate]).then(([estimate]) => priorThread!.refit(s.index, estimate.image, subjectOf(estimate.prior)));
      refitsDone.push(s.refit.catch(() => undefined)); // the frame's own failure is reported where its prior is awaited
    };
    for (const s of inFlight) refitWhenBack(s);
    // From here on the prior thread shrinks the frames itself (to the model's size and, with a
    // plate, to the engine's working grid): ~20 ms a 720p frame off this thread, the busier one.
    // The frames already sent (the colour pass's) were shrunk here: they were needed soonest.
    priorThread?.prepare(plateRaw ? parts.engine.differenceGrid?.(info.width, info.height) : undefined);

    if (sequenceTemp) await mkdir(sequenceTemp);
    if (fgSequenceTemp) await mkdir(fgSequenceTemp);
    const pending = new Map<FrameWriter, Promise<void>>();
    // Each encoder's frame buffers, handed back once the pipe has taken them: a fresh 3.7 MB array
    // per 720p frame and encoder costs ~10 ms of first-touched pages on a VM.
    const spare = new Map<FrameWriter, Uint8Array[]>();
    const bufferFor = (writer: FrameWriter) => spare.get(writer)?.pop();
    const send = async (writer: FrameWriter, bytes: Uint8Array) => {
      // One frame in flight per encoder: it encodes frame n while we matte frame n+1.
      await timed('encodeWait', () => pending.get(writer));
      const written = writer.write(bytes);
      // Awaited with the next frame or at the end; a failure after another error (the catch below) is not left unhandled.
      written.then(() => { const free = spare.get(writer) ?? []; free.push(bytes); spare.set(writer, free); }, () => undefined);
      pending.set(writer, written);
    };

    if (!reader) {
      const seek = segment ? seekTo(segment.index, first) : undefined;
      reader = new FrameReader(info.file, { width: info.width, height: info.height, pixelFormat: 'rgb24', ...(seek ? { seek } : {}) });
      readers.push(reader);
    }
    const frames = reader;
    const motion = network && temporal ? new MotionStack(info, stride, first, segment?.index) : undefined;
    if (motion) readers.push(motion);
    let stillPlate: ReturnType<typeof matchPlate> | undefined;
    const boxes = new BoxSmoother();
    const stabiliser = temporal ? new AlphaStabiliser() : undefined;
    const history: Entry[] = [];
    const queue: Entry[] = [];
    const methods: Record<string, number> = {};
    const inliers: number[] = [];
    let trackedFrames = 0;
    let written = 0;
    let firstWritten = 0;
    const total = end - start;

    const chain: TrackChain = {};
    const arena = new ScratchArena();
    /**
     * The still plate's work for the frames sent to the prior thread before it (the colour pass's
     * first frames, and those queued ahead): done there afterwards (PriorThread.decideStill),
     * LATE_AHEAD at a time, by frame. Without it the matting thread decided those ~10 frames itself
     * (~115 ms each at 720p).
     */
    const decidedLate = new Map<number, Promise<StillDecision | undefined>>();
    const decideLate = (frames: { index: number; estimate: Promise<Pick<Entry, 'image' | 'prior' | 'coarse'>> }[]) => {
      const done: Promise<unknown>[] = [];
      for (const { index, estimate } of frames) {
        const decided = Promise.all([estimate, done[done.length - LATE_AHEAD]]).then(([{ image, prior, coarse }]) => (coarse ? undefined : priorThread!.decideStill(image, prior)));
        // A frame whose prior failed is reported where its prior is awaited; the matting thread then decides alone.
        const settled = decided.catch(() => undefined);
        decidedLate.set(index, settled);
        done.push(settled);
      }
    };
    /** Frames' plates placed on the prior thread (PlaceAhead), by frame: used where the homography smoothed here is theirs. */
    const placedAhead = new Map<number, PlacedAhead>();
    /** The frame's plate fit, tracked on this thread. */
    const trackHere = (entry: Entry): void => {
      try {
        // Hand-held: tracked from the previous frame's fit; ORB only to (re)acquire, and on the
        // grid, so that a segment starting there tracks as the whole run does.
        const subject = subjectOf(entry.prior);
        entry.alignment = temporal ? trackInChain(chain, entry.index, REACQUIRE_EVERY, entry.image, plateRaw!, subject, parts.align) : alignPlate(entry.image, plateRaw!, subject, parts.align).alignment;
      } catch (err) {
        // One frame without a reliable fit is bridged by its neighbours' fits.
        if (!(err instanceof CleanplateError) || !temporal) throw err;
      }
    };
    /**
     * A refitted frame's fit, once the thread has it. Where the thread cannot track (its alignment
     * code did not load), this thread tracks the refit frames itself, in order, as it would have.
     */
    const settle = async (entry: Entry): Promise<void> => {
      if (!entry.refit) return;
      const refit = await timed('align', () => entry.refit!);
      entry.refit = undefined;
      if (refit) { if (refit.alignment) entry.alignment = refit.alignment; return; }
      refitsUnavailable = true;
      await timed('align', () => trackHere(entry));
      for (const later of queue) await settle(later);
    };
    const analyse = async ({ index, bytes, prior: threaded, refit }: Sent): Promise<Entry> => {
      // With a prior thread the frame's floats come from it (converted there, off this thread).
      const fromThread = threaded ? await timed('prior', () => threaded) : undefined;
      const image = fromThread?.image ?? fromBytes(info.width, info.height, 3, bytes!);
      // The decoder's bytes, converted: a later frame is read into them.
      const read = fromThread ? fromThread.bytes : bytes;
      if (read) frames.recycle(read);
      const prior = fromThread?.prior ?? await timed('prior', () => parts.prior.estimate(image));
      const entry: Entry = { index, image, prior, ...(fromThread?.difference ? { difference: fromThread.difference } : {}), ...(fromThread?.working ? { working: fromThread.working } : {}), ...(fromThread?.coarse ? { coarse: fromThread.coarse } : {}) };
      if (useAlignment && fromThread?.tracked) {
        if (fromThread.tracked.alignment) entry.alignment = fromThread.tracked.alignment;
      } else if (useAlignment && refit && !refitsUnavailable) {
        // Awaited when a frame's window needs it (settle): the thread tracks while this one mattes.
        entry.refit = refit;
      } else if (useAlignment) {
        await timed('align', () => trackHere(entry));
      }
      if (network && plateRaw && temporal) entry.box = network.cropBox(image, sameSize(plateRaw, image) ? plateRaw : image, prior);
      if (fromThread?.placed) placedAhead.set(fromThread.placed.index, fromThread.placed);
      return entry;
    };

    const finish = async (entry: Entry): Promise<void> => {
      checkAborted(request.signal);
      // A segment's warm-up frame is matted for the recurrent cues only: nothing of it is written or counted.
      const own = entry.index >= start;
      const window = temporal ? [...history.slice(-WINDOW), entry, ...queue.slice(0, WINDOW)] : [entry];
      for (const e of window) await settle(e);
      const { image, prior } = entry;
      const subject = subjectOf(prior);
      // This frame's planes, its placed plate included, come from the scratch arena (see below).
      arena.reset();
      let plate: ImageF32 | undefined, plateValid: Plane | undefined, stillFrame = false;
      /** The plate placed on the prior thread that this frame uses, handed back once the frame is matted. */
      let ahead: PlacedAhead | undefined;
      if (plateRaw) {
        await timed('align', () => {
          let homography = [...IDENTITY];
          if (useAlignment) {
            const smoothed = smoothedHomography(window.map((e) => e.alignment), entry.alignment, plateRaw.width, plateRaw.height, image.width, image.height);
            if (smoothed) homography = smoothed;
            else if (!sameSize(image, plateRaw)) throw new CleanplateError(`no reliable alignment of the plate around frame ${entry.index + 1}`, typeof request.plate === 'string' ? request.plate : 'plate');
            if (own) {
              const method = entry.alignment?.method ?? 'failed';
              methods[method] = (methods[method] ?? 0) + 1;
              if (entry.alignment) inliers.push(entry.alignment.inliers);
              if (entry.alignment?.tracked) trackedFrames++;
            }
          }
          // A still camera with the median colour gives every frame the same plate: correct it once.
          const still = fixedColour && sameSize(image, plateRaw) && cornerShift(homography, image.width, image.height) === 0;
          // A moving camera's plate is warped and corrected anew every frame: on the prior thread
          // (below), else here into the arena's pages (fresh ones cost ~25 MB of first touches a
          // 720p frame). A still one is kept.
          const place = () => matchPlate(image, placePlate(image, plateRaw, homography), subject, fixedColour);
          const fresh = still && !stillPlate;
          // Placed on the prior thread with this very homography: what matchPlate would give.
          const given = placedAhead.get(entry.index);
          for (const k of placedAhead.keys()) if (k <= entry.index) placedAhead.delete(k);
          ahead = !still && given && given.homography.every((v, i) => v === homography[i]) ? given : undefined;
          const matched = still ? stillPlate ?? place()
            : ahead ? { plate: { width: image.width, height: image.height, channels: 3, data: ahead.warped }, plateValid: { width: image.width, height: image.height, channels: 1, data: ahead.valid } as Plane, colour: fixedColour! }
            : arena.run(place);
          if (still) stillPlate = matched;
          plate = matched.plate;
          plateValid = matched.plateValid;
          // The still plate goes to the prior thread once: the frames it has not done yet come back
          // with their difference from it and the decisions, computed there (the matting thread
          // skips them), and those it had done go back to it for the same (decideLate).
          const grid = fresh && priorThread && parts.engine.differenceGrid?.(image.width, image.height);
          if (grid && matched.plateValid.data.every((v) => v >= 0.5)) {
            priorThread!.stillPlate(matched.plate, grid, parts.engine.decidesStill === true);
            if (parts.engine.decidesStill) decideLate([...queue.map((e) => ({ index: e.index, estimate: Promise.resolve(e) })), ...inFlight.map((s) => ({ index: s.index, estimate: s.prior! }))]);
          }
          stillFrame = Boolean(still);
        });
      }
      const late = stillFrame ? decidedLate.get(entry.index) : undefined;
      if (late) {
        decidedLate.delete(entry.index);
        const decided = await timed('prior', () => late);
        if (decided) Object.assign(entry, decided);
      }
      const difference = stillFrame ? entry.difference : ahead?.difference, coarse = stillFrame ? entry.coarse : undefined;
      const box = network && temporal && plateRaw ? boxes.next(window.map((e) => e.box!), info.width, info.height) : undefined;
      const motionStack = motion ? await timed('decodeWait', () => motion.at(entry.index)) : undefined;
      // The engine's and the stabiliser's planes come from a scratch arena that every frame reuses
      // (nothing of a frame's is read after it is written: the stabiliser copies the α and F it
      // keeps). Hundreds of MB per second of fresh typed arrays would otherwise keep the garbage
      // collector busy (~50 ms a 720p frame). Reset above, before the plate is placed.
      const out = await timed('matte', () => arena.run(() => parts.engine.matte({ image, plate, plateValid, prior, realign: camera !== 'static', ...(motionStack ? { motion: motionStack } : {}), ...(box ? { box } : {}), ...(difference ? { difference } : {}), ...(coarse ? { coarse } : {}), ...(entry.working ? { working: entry.working } : {}), ...(ahead?.grid ? { gridPlate: ahead.grid } : {}) })));
      // Nothing reads the plate any more (the engine keeps none of it): a later frame's is placed into it.
      if (ahead) priorThread?.recyclePlaced(ahead);
      if (stabiliser) await timed('temporal', () => arena.run(() => stabiliser.apply(image, out.alpha, out.foreground, out.support)));
      history.push(entry);
      // The frame leaving the windows is read by nothing any more (the stabiliser keeps the newest
      // frame only, and copies the α it keeps, which is the prior itself without a plate): its floats
      // and its prior go back to the prior thread's side, and later frames and priors are written into them.
      if (history.length > WINDOW) { const gone = history.shift()!; priorThread?.recycle(gone.image.data, gone.prior.data); }
      if (!own) return;
      let background: ImageF32 | undefined = backgroundStill ?? colourFlat;
      if (backgroundVideo) {
        const bytes = await timed('decodeWait', () => backgroundVideo!.next());
        if (!bytes) throw new CleanplateError('background video yielded no frames', request.background as string);
        background = fromBytes(info.width, info.height, 3, bytes);
        backgroundVideo.recycle(bytes);
      }
      // α is 0 outside this rectangle (the stabiliser's, else the engine's): the bytes there are zeros, not converted.
      const support = stabiliser ? stabiliser.support ?? [0, 0, 0, 0] as const : out.support;
      for (const { final, writer } of writers) {
        if (final === output.composite) await send(writer, await timed('composite', () => toBytes(composite(out.foreground, out.alpha, background!), bufferFor(writer))));
        else if (final === output.alpha) await send(writer, toBytes(out.alpha, bufferFor(writer), support));
        // Every engine leaves F 0 where α is 0: such pixels are written as zeros without reading F.
        else await send(writer, rgbaBytes(out.foreground, out.alpha, bufferFor(writer), true, support));
      }
      if (sequenceTemp) {
        const png = await timed('encodeWait', () => encodePng(out.alpha));
        await writeFile(join(sequenceTemp, `${String(entry.index + 1).padStart(6, '0')}.png`), png);
      }
      if (fgSequenceTemp) {
        const png = await timed('encodeWait', () => encodeRgbaPng(out.foreground, out.alpha));
        await writeFile(join(fgSequenceTemp, `${String(entry.index + 1).padStart(6, '0')}.png`), png);
      }
      written++;
      if (written === 1) firstWritten = performance.now();
      const elapsed = (performance.now() - started) / 1000;
      request.onProgress?.({ frame: written, frames: total, fps: written / elapsed, etaSeconds: (elapsed / written) * Math.max(0, total - written) });
    };

    // A segment stops decoding at `stop`; the frames from `end` on are analysed for the windows of
    // the last frames, never matted. One frame is taken from inFlight per frame decoded: frames
    // handed over during the colour pass keep the prior thread that far ahead.
    for (let index = first + inFlight.length; ; index++) {
      checkAborted(request.signal);
      const bytes = index < stop && !decodedAll ? await timed('decodeWait', () => frames.next()) : null;
      // The decoder's bytes go to the prior thread (transferred, not copied), which returns the prior and the frame as floats.
      if (bytes) {
        const sent: Sent = priorThread ? { index, prior: priorThread.estimateFrame(bytes, info.width, info.height, index) } : { index, bytes };
        refitWhenBack(sent);
        inFlight.push(sent);
      }
      while (inFlight.length && (!bytes || inFlight.length > (priorThread ? PRIOR_AHEAD : 0))) {
        const s = inFlight.shift()!;
        queue.push(await analyse(s));
        while (queue.length > (temporal ? WINDOW : 0) && queue[0]!.index < beyond) await finish(queue.shift()!);
        if (bytes) break;
      }
      if (!bytes) {
        while (queue.length) { const e = queue.shift()!; if (e.index < beyond) await finish(e); }
        break;
      }
    }
    if (written < total) throw new CleanplateError(`video is truncated: decoded ${written} of ${total} frames`, request.input);
    frames.close();
    await timed('encodeWait', async () => {
      await Promise.all(pending.values());
      await Promise.all(writers.map((w) => w.writer.finish()));
    });
    for (const r of readers) r.close();

    const wall = (performance.now() - started) / 1000;
    const report: VideoReport = {
      input: { file: info.file, width: info.width, height: info.height, frames: info.frames, rate: info.rate, rotation: info.rotation, pixelFormat: info.pixelFormat, audio: info.audio?.codec ?? null },
      engine: parts.engine.name, prior: parts.priorName, temporal, frames: written,
      outputs: finals,
      ...(fixedColour ? { colour: fixedColour } : {}),
      plate: state.plate,
      ...(autoPlate ? { autoPlate } : {}),
      ...(camera ? { camera } : {}),
      ...(useAlignment ? { alignment: { methods, medianInliers: inliers.length ? inliers.sort((a, b) => a - b)[inliers.length >> 1]! : 0, tracked: trackedFrames } } : {}),
      seconds: Object.fromEntries(Object.entries({ ...seconds, total: wall }).map(([k, v]) => [k, +v.toFixed(3)])),
      fps: +(written / wall).toFixed(3),
      firstFrameSeconds: +((firstWritten - started) / 1000).toFixed(3),
      steadyFps: written > 1 ? +((written - 1) / ((performance.now() - firstWritten) / 1000)).toFixed(3) : 0,
      ioShare: +((seconds.decodeWait! + seconds.encodeWait!) / wall).toFixed(4),
      peakRssMB: peakRssMB(),
      ...(segment ? { segment: { start, end, warmup: lead } } : {}),
    };
    // Publish: every output renamed into place only now that all of them are complete.
    for (const { final, writer } of writers) await rename(writer.temp, final);
    for (const [temp, final] of [[sequenceTemp, output.alphaSequence], [fgSequenceTemp, output.foregroundSequence]]) {
      if (!temp || !final) continue;
      const old = tempPath(`${final.replace(/\/+$/, '')}-old`);
      const hadOld = await rename(final, old).then(() => true, () => false);
      await rename(temp, final);
      if (hadOld) await rm(old, { recursive: true, force: true });
    }
    if (output.report) {
      const t = tempPath(output.report);
      await writeFile(t, JSON.stringify(report, null, 2) + '\n');
      await rename(t, output.report);
    }
    return report;
  } catch (err) {
    for (const r of readers) r.close();
    await stopSampling(sampling);
    await Promise.all(writers.map((w) => w.writer.abort()));
    if (sequenceTemp) await rm(sequenceTemp, { recursive: true, force: true });
    if (fgSequenceTemp) await rm(fgSequenceTemp, { recursive: true, force: true });
    // Ctrl-C on a terminal also stops the ffmpeg children; their failure is the interruption's.
    throw request.signal?.aborted ? new InterruptedError() : err;
  }
}
