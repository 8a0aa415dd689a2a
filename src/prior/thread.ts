/**
 * The prior's side of a prior thread (see worker.ts): loads the model once (and OpenCV only when
 * asked to shrink frames itself, or to track a plate: until then frames come already shrunk to the
 * model's size), then turns each video frame it is sent into the
 * prior's alpha with the model's memory carried across frames, strictly in the order the frames
 * arrive, and each photo into its alpha on its own (photos first).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ColourReport } from '../align/colour.js';
import { realignPart, type BandPart } from '../align/residue.js';
import type { CheckGrid } from '../align/plate-check.js';
import type { CoarseDecision, GridPlate } from '../matte/engine.js';
import type { AlignMode, AlignmentReport, FlowJob } from '../align/homography.js';
import { CleanplateError } from '../errors.js';
import { fromBytes, type ImageF32, type Plane } from '../image.js';
import { plateDifference, type PlateDifference } from '../matte/difference.js';
import type { TrackChain } from '../photo.js';
import { createPrior, type PriorName, type PriorStreamOptions } from './index.js';

interface Setup { name: PriorName; modelsDir?: string; stream?: PriorStreamOptions }
/** A video frame: the decoder's bytes, and the same shrunk to the model's input size (`small`; shrunk here once `prepare`d). */
interface FrameMessage { id: number; width: number; height: number; bytes: Uint8Array; small?: { width: number; height: number; bytes: Uint8Array }; into?: Float32Array; index?: number; placedBack?: PlacedBuffers }
/** Shrink the frames from now on here (OpenCV loaded for it): to the model's size, and with `grid` the frame itself (MatteInput.working). */
interface PrepareMessage { prepare: { grid?: { width: number; height: number } } }
/** The size of the video about to come (its frames' size). */
interface WarmMessage { warm: { width: number; height: number } }
/**
 * A still plate for the frames after it (a tripod video's plate, colour-corrected, covering the
 * whole frame): each of them also gets |I − plate| on the engine's grid (matte/difference.ts).
 */
interface StillMessage { still: { width: number; height: number; data: Float32Array; grid: { width: number; height: number }; decide?: boolean } }
/**
 * A frame sent before the still plate (a tripod video's first frames, sent while the colour pass
 * ran), decided here after all: its difference from the plate, the frame on the working grid and
 * the engine's decisions there, as a frame sent after the plate gets them. The frame's floats and
 * its prior (enlarged to the frame, as the matting thread enlarged it) are copies.
 */
interface DecideMessage { decide: { id: number; width: number; height: number; image: Float32Array; prior: Float32Array } }
/**
 * A moving camera's plate: the frames from `from` on (a frame where the tracker re-acquires, so that
 * nothing before it counts) are tracked here as the matting thread would (photo.ts trackPlate,
 * re-acquired every `every` frames), with the frame's prior as the subject when `subject`.
 */
interface TrackMessage { track: { width: number; height: number; data: Float32Array; align: AlignMode; from: number; every: number; subject: boolean; video: number; place?: PlaceAhead } }
/**
 * With `trackFrom`'s `place`: each frame's plate placed here too, warped by the homography the
 * matting thread will smooth from the fits `window` frames either side (temporal.ts
 * smoothedHomography), corrected by the video's fixed `colour` and filled from the frame where
 * it does not cover it (photo.ts matchPlate's two halves), and with a working grid (`prepare`)
 * shrunk and re-aligned there too (classic.ts realignOnGrid). It goes back with the message of
 * the frame `window` after it, the first that has all those fits; the frame is kept here till then.
 */
export interface PlaceAhead { window: number; colour: Pick<ColourReport, 'applied' | 'gain' | 'bias'> }
/**
 * A frame's placed plate (see PlaceAhead): the homography it was warped by, the plate (what
 * matchPlate gives) and where it covers the frame, and what the engine would compute from it: the
 * plate on the working grid (MatteInput.gridPlate) and the frame's full-resolution difference from
 * it (MatteInput.difference: ~18 ms of a 720p frame off the matting thread).
 */
export interface PlacedAhead extends PlacedBuffers { index: number; homography: number[]; grid?: GridPlate; difference?: PlateDifference }
/** A placed plate's buffers: handed back with a frame once read (`placedBack`), a later plate is placed into them. */
export interface PlacedBuffers { warped: Float32Array; valid: Float32Array }
/**
 * A frame sent before the plate was known to move (the colour pass's), tracked here after all:
 * a chain of its own from the re-acquisition grid, as the matting thread would track it, with the
 * prior it enlarged as the subject. Handled ahead of queued frames once the `track` message is in.
 */
interface RefitMessage { refit: { id: number; video: number; index: number; width: number; height: number; image: Float32Array; subject?: Float32Array } }
/**
 * One of a video's colour-pass samples done here whole (photo.ts sampleFit and sampleCheck, with
 * the prior computed as for an image on its own at `longSide`, enlarged to the frame): the matting
 * thread does every other sample meanwhile. The plate comes with the first sample of its `plateKey`.
 */
interface SampleMessage { sample: { id: number; width: number; height: number; bytes: Uint8Array; longSide: number; align: AlignMode; subject: boolean; plateKey: number; plate?: Float32Array } }
/** A part of a photo's band to re-align (align/residue.ts realignPart) while the matting thread does the rest. */
interface RealignMessage { realign: { id: number; part: BandPart } }
/** A part of a photo's corners to track (align/homography.ts flowOfJob) while the matting thread tracks the rest. */
interface FlowMessage { flow: { id: number; job: FlowJob } }
/** A photo's plate check to judge (align/plate-check.ts assessOnGrid) while the matting thread runs the engine. */
interface AssessMessage { assess: { id: number; grid: CheckGrid } }
/** One image on its own (a photo), already at the model's input size, without the video's memory. */
interface ImageMessage { id: number; image: { width: number; height: number; data: Float32Array }; longSide?: number }

/** The arrays of the decisions made here (MatteInput.coarse), to transfer with the reply. */
function coarseBuffers(c: CoarseDecision): (Float32Array | Uint8Array)[] {
  return [c.region.data, c.sure.data, c.fallback.data, c.fHat.data, c.opaque.data, c.clear.data];
}

const port = parentPort!;
const setup = workerData as Setup;
try {
  const prior = await createPrior(setup.name, setup.modelsDir);
  let stream = prior.stream(setup.stream);
  /**
   * Work waits in two queues: photos (their priors on their own) go before the video's frames and
   * resets, which keep their order (the recurrent state must see the frames in order). A video's
   * colour pass asks for its sampled frames' priors while the first frames are already queued, and
   * it is what the video waits for.
   */
  const photos: (ImageMessage | SampleMessage | RealignMessage | AssessMessage | FlowMessage | StillMessage | DecideMessage)[] = [];
  const video: (FrameMessage | WarmMessage | TrackMessage | PrepareMessage | { reset: true; video: number })[] = [];
  /** With `decide`, the classic engine's working-grid decisions too (MatteInput.coarse), from the plate shrunk to the grid. */
  let still: { plate: ImageF32; grid: { width: number; height: number }; decide?: { plateSmall: ImageF32; decideStill: typeof import('../matte/classic.js').decideStill; resize: typeof import('../ops.js').resize } } | undefined;
  let tracker: (Omit<TrackMessage['track'], 'width' | 'height' | 'data' | 'video'> & {
    plate: ImageF32; chain: TrackChain; trackInChain: typeof import('../photo.js').trackInChain; resize: typeof import('../ops.js').resize;
    /** With `place`: the code that places a plate, and every fit found so far for this video by frame (undefined: the fit failed). */
    placing?: {
      fits: Map<number, AlignmentReport | undefined>; spare: PlacedBuffers[];
      /** Frames kept till their plate is placed (copies of the floats sent on and of the frame on the working grid), and the copies' buffers to reuse. */
      frames: Map<number, { image: Float32Array; working?: ImageF32 }>; free: Float32Array[];
      placePlate: typeof import('../photo.js').placePlate; correctPlate: typeof import('../photo.js').correctPlate; fillUncovered: typeof import('../photo.js').fillUncovered;
      smoothedHomography: typeof import('../video/temporal.js').smoothedHomography; realignOnGrid: typeof import('../matte/classic.js').realignOnGrid;
    };
  }) | undefined;
  /**
   * Frames to refit, and the video (its number, counted by the sender's resets) whose `track`
   * message has been handled: a refit waits for its own video's, never uses another's tracker.
   */
  const refits: RefitMessage[] = [];
  let trackVideo = -1;
  /** The refits' chain (apart from the tracker's own: the two cover different frames). */
  let refitChain: TrackChain = {};
  /** The frame's fit in `chain` with the tracker's plate: `{}` where the fit failed (its neighbours' fits bridge it). */
  const fitIn = (t: NonNullable<typeof tracker>, chain: TrackChain, index: number, image: ImageF32, subject: Plane | undefined): { alignment?: AlignmentReport } => {
    try {
      return { alignment: t.trackInChain(chain, index, t.every, image, t.plate, subject, t.align) };
    } catch (err) {
      if (!(err instanceof CleanplateError)) throw err;
      return {};
    }
  };
  /**
   * The frame's plate fit in the tracker's chain, as the matting thread's loop does it: nothing
   * where this frame is not the tracker's. OpenCV and the alignment code were loaded with the plate.
   */
  const track = (msg: FrameMessage, image: ImageF32, alpha: Plane): { alignment?: AlignmentReport } | undefined => {
    if (!tracker || msg.index === undefined || msg.index < tracker.from) return undefined;
    // The prior at the frame's size, enlarged as the matting thread enlarges it (the same resize).
    const subject = tracker.subject ? tracker.resize(alpha, msg.width, msg.height) : undefined;
    const fit = fitIn(tracker, tracker.chain, msg.index, image, subject);
    tracker.placing?.fits.set(msg.index, fit.alignment);
    return fit;
  };
  /**
   * With `place` (PlaceAhead): the plate of the frame `window` before this one, placed, corrected,
   * filled and put on the working grid, once this thread has the fits of every frame in its window;
   * undefined where it has not (a frame before the first one sent, a refit not done yet), where it
   * did not keep the frame (a refitted one) or where the plate needs no warp (the matting thread
   * then places it itself). Fits and frames no later window will read are dropped.
   */
  const placeAhead = (index: number, width: number, height: number): PlacedAhead | undefined => {
    const placing = tracker?.placing, ahead = tracker?.place;
    if (!tracker || !placing || !ahead) return undefined;
    const { fits, frames } = placing, n = index - ahead.window;
    for (const k of fits.keys()) if (k < n - ahead.window) fits.delete(k);
    const release = (f: { image: Float32Array; working?: ImageF32 }) => placing.free.push(f.image, ...(f.working ? [f.working.data] : []));
    for (const [k, f] of frames) if (k < n) { frames.delete(k); release(f); }
    const kept = frames.get(n);
    if (n < 0 || !kept) return undefined;
    frames.delete(n);
    try {
      return placeKept(tracker, placing, ahead, n, index, kept, width, height);
    } finally {
      release(kept);
    }
  };
  /** placeAhead's placing proper, for frame n of the kept ones, once frame `index` (the window's last) has its fit. */
  const placeKept = (t: NonNullable<typeof tracker>, placing: NonNullable<NonNullable<typeof tracker>['placing']>, ahead: PlaceAhead, n: number, index: number,
    { image, working }: { image: Float32Array; working?: ImageF32 }, width: number, height: number): PlacedAhead | undefined => {
    const fits = placing.fits;
    const window: (AlignmentReport | undefined)[] = [];
    for (let k = n - ahead.window; k <= index; k++) {
      if (k < 0) continue;
      if (!fits.has(k)) return undefined;
      window.push(fits.get(k));
    }
    const homography = placing.smoothedHomography(window, fits.get(n), t.plate.width, t.plate.height, width, height);
    if (!homography) return undefined;
    // Into buffers handed back (fresh ones cost their pages' first touches: 33 MB a 1080p frame).
    const at = placing.spare.findIndex((b) => b.valid.length === width * height && b.warped.length === width * height * 3);
    const placed = placing.placePlate({ width, height }, t.plate, homography, at >= 0 ? placing.spare.splice(at, 1)[0] : undefined);
    if (!placed.owned) return undefined;
    const { plate, plateValid } = placing.fillUncovered({ width, height, channels: 3, data: image }, placing.correctPlate(placed, ahead.colour));
    const grid = working && placing.realignOnGrid(working, plate, plateValid);
    const difference = working && plateDifference({ width, height, channels: 3, data: image }, plate, working, plateValid);
    return { index: n, homography, warped: plate.data, valid: plateValid.data, ...(grid ? { grid } : {}), ...(difference ? { difference } : {}) };
  };
  /** With `place`: frame `index` kept till its plate is placed (copied, into buffers of earlier kept frames: the frame's own go on). */
  const keep = (index: number, image: ImageF32, working: ImageF32 | undefined) => {
    const placing = tracker?.placing;
    if (!placing) return;
    const copy = (data: Float32Array) => {
      const at = placing.free.findIndex((b) => b.length === data.length);
      const into = at >= 0 ? placing.free.splice(at, 1)[0]! : new Float32Array(data.length);
      into.set(data);
      return into;
    };
    placing.frames.set(index, { image: copy(image.data), ...(working ? { working: { ...working, data: copy(working.data) } } : {}) });
  };
  /**
   * A refit: the frame's fit in the refits' chain. `unavailable` where the alignment code did not
   * load here (the matting thread then tracks the frames itself).
   */
  const refit = ({ refit: msg }: RefitMessage) => {
    if (!tracker) { port.postMessage({ replyTo: msg.id, unavailable: true }); return; }
    const image: ImageF32 = { width: msg.width, height: msg.height, channels: 3, data: msg.image };
    const subject = tracker.subject && msg.subject ? { width: msg.width, height: msg.height, channels: 1, data: msg.subject } as Plane : undefined;
    try {
      const fit = fitIn(tracker, refitChain, msg.index, image, subject);
      // Kept for the windows of the tracked frames after them. Not placed here: the refits are a
      // video's first frames, when the matting thread waits on this one, and places them itself.
      tracker.placing?.fits.set(msg.index, fit.alignment);
      port.postMessage({ replyTo: msg.id, ...fit });
    } catch (err) {
      port.postMessage({ replyTo: msg.id, error: (err as Error).message });
    }
  };
  /**
   * OpenCV and the operations on it, loaded on first need, once (tracking a moving camera's plate,
   * or `prepare`): a tripod's or a photo's thread that is never prepared does without them.
   */
  let opsLoaded: Promise<typeof import('../ops.js')> | undefined;
  const openCv = () => (opsLoaded ??= Promise.all([import('../ops.js'), import('../cv.js')]).then(async ([ops, { loadCv }]) => { await loadCv(); port.postMessage({ openCv: true }); return ops; }));
  /** OpenCV's resizes, once `prepare` loaded them; the working grid of this video's engine. */
  let shrinker: typeof import('../ops.js') | undefined;
  let workGrid: { width: number; height: number } | undefined;
  let busy = false;
  let closing = false;
  /** Model input sizes that have run once: the first inference at a size costs ~3x a later one. */
  const warmed = new Set<string>();

  const photo = async (msg: ImageMessage) => {
    try {
      warmed.add(`${msg.image.width}x${msg.image.height}`);
      const alpha = await prior.estimate({ ...msg.image, channels: 3 }, { prepared: true, ...(msg.longSide ? { longSide: msg.longSide } : {}) });
      port.postMessage({ id: msg.id, data: alpha.data, width: alpha.width, height: alpha.height }, [alpha.data.buffer as ArrayBuffer]);
    } catch (err) {
      port.postMessage({ id: msg.id, error: (err as Error).message });
    }
  };
  /** The colour-pass samples' plate, by its key (SampleMessage). */
  let samplePlate: { key: number; plate: ImageF32 } | undefined;
  const sample = async ({ sample: msg }: SampleMessage) => {
    try {
      const { width, height } = msg;
      if (msg.plate) samplePlate = { key: msg.plateKey, plate: { width, height, channels: 3, data: msg.plate } };
      if (samplePlate?.key !== msg.plateKey) throw new Error('a colour-pass sample came without its plate');
      // OpenCV and the alignment code, loaded with the first sample: a thread without a plate never needs them.
      let photoCode: typeof import('../photo.js');
      try {
        [, photoCode] = await Promise.all([openCv(), import('../photo.js')]);
      } catch {
        port.postMessage({ replyTo: msg.id, unavailable: true });
        return;
      }
      const image = fromBytes(width, height, 3, msg.bytes);
      // The prior as estimateOnThread gives it: the model's own shrink to its grid and enlargement back.
      const subject = msg.subject ? await prior.estimate(image, { longSide: msg.longSide }) : undefined;
      const fit = photoCode.sampleFit(image, samplePlate.plate, subject, msg.align);
      const outcome = fit ? photoCode.sampleCheck(image, fit, subject) : {};
      const { refusal, ...rest } = outcome;
      port.postMessage({ replyTo: msg.id, outcome: rest, ...(refusal ? { refusal: { message: refusal.message, ...(refusal.file !== undefined ? { file: refusal.file } : {}) } } : {}) });
    } catch (err) {
      port.postMessage({ replyTo: msg.id, error: (err as Error).message, ...(err instanceof CleanplateError && err.file !== undefined ? { file: err.file, cleanplate: true } : {}) });
    }
  };
  const realignBand = ({ realign: msg }: RealignMessage) => {
    try {
      // Plain arithmetic on the part's copies: no OpenCV, no model.
      const moves = realignPart(msg.part);
      port.postMessage({ replyTo: msg.id, moves }, [moves.at.buffer as ArrayBuffer, moves.rgb.buffer as ArrayBuffer]);
    } catch (err) {
      port.postMessage({ replyTo: msg.id, error: (err as Error).message });
    }
  };
  const flow = async ({ flow: msg }: FlowMessage) => {
    try {
      const [, { flowOfJob }] = await Promise.all([openCv(), import('../align/homography.js')]);
      const result = flowOfJob(msg.job);
      port.postMessage({ replyTo: msg.id, flow: result }, [result.tracked.buffer as ArrayBuffer, result.status.buffer as ArrayBuffer, result.back.buffer as ArrayBuffer, result.backStatus.buffer as ArrayBuffer]);
    } catch (err) {
      port.postMessage({ replyTo: msg.id, error: (err as Error).message });
    }
  };
  const assess = async ({ assess: msg }: AssessMessage) => {
    try {
      // OpenCV (the check's morphology), loaded with the first check.
      const [, { assessOnGrid }] = await Promise.all([openCv(), import('../align/plate-check.js')]);
      port.postMessage({ replyTo: msg.id, assessment: assessOnGrid(msg.grid) });
    } catch (err) {
      port.postMessage({ replyTo: msg.id, error: (err as Error).message });
    }
  };
  const decideLate = ({ decide: msg }: DecideMessage) => {
    try {
      const { width, height } = msg;
      if (!still?.decide || still.plate.width !== width || still.plate.height !== height) { port.postMessage({ replyTo: msg.id, unavailable: true }); return; }
      // What `frame` computes for a frame sent after the plate, from the same numbers.
      const image: ImageF32 = { width, height, channels: 3, data: msg.image };
      const difference = plateDifference(image, still.plate, still.grid);
      const working = still.decide.resize(image, still.grid.width, still.grid.height);
      const coarse = still.decide.decideStill(working, still.decide.plateSmall, { width, height, channels: 1, data: msg.prior } as Plane, difference);
      const transfer = [difference.samples, difference.weak.data, working.data, ...coarseBuffers(coarse)].map((a) => a.buffer as ArrayBuffer);
      port.postMessage({ replyTo: msg.id, difference, working, coarse }, [...new Set(transfer)]);
    } catch (err) {
      port.postMessage({ replyTo: msg.id, error: (err as Error).message });
    }
  };
  /** A frame sent unshrunk (after `prepare`), shrunk to the model's size here. */
  const shrinkHere = (msg: FrameMessage) => {
    if (!shrinker) throw new Error('a frame came unshrunk before the thread was prepared');
    const size = stream.inputSize(msg.width, msg.height);
    return { ...size, bytes: shrinker.resizeBytes(msg.bytes, msg.width, msg.height, size.width, size.height) };
  };
  const frame = async (msg: FrameMessage) => {
    try {
      // Shrunk (as bytes, by the sender or once prepared here) to the size the model sees, then
      // converted; the alpha goes back at the model's size.
      const { width, height, bytes } = msg.small ?? shrinkHere(msg);
      warmed.add(`${width}x${height}`);
      const alpha = await stream.estimate(fromBytes(width, height, 3, bytes), true);
      // The frame as floats too: converted here, on this thread's core, and transferred; into an
      // earlier frame's buffer when one came back with the message.
      const image = fromBytes(msg.width, msg.height, 3, msg.bytes, msg.into);
      const floats = image.data;
      // With a still plate, the frame's difference from it too: work the matting thread then skips.
      const difference = still && still.plate.width === msg.width && still.plate.height === msg.height ? plateDifference(image, still.plate, still.grid) : undefined;
      // With a moving camera's plate, the frame's fit: the matting thread's busiest part for such a video.
      const tracked = track(msg, image, alpha);
      // The frame on the engine's working grid: the resize the engine would do (MatteInput.working).
      const working = shrinker && workGrid ? shrinker.resize(image, workGrid.width, workGrid.height) : undefined;
      // With a moving camera's plate to place, this frame kept and an earlier frame's plate placed (PlaceAhead).
      if (msg.placedBack && tracker?.placing) tracker.placing.spare.push(msg.placedBack);
      if (tracked && msg.index !== undefined) keep(msg.index, image, working);
      const placed = tracked && msg.index !== undefined ? placeAhead(msg.index, msg.width, msg.height) : undefined;
      // With a still plate, the engine's decisions on that grid too (MatteInput.coarse): the prior
      // enlarged to the frame as the sender enlarges it, then what the engine would do with it.
      const coarse = still?.decide && difference && working && shrinker && working.width === still.grid.width && working.height === still.grid.height
        ? still.decide.decideStill(working, still.decide.plateSmall, shrinker.resize(alpha, msg.width, msg.height), difference) : undefined;
      // The decoder's bytes go back too, for the decoder to read a later frame into.
      const transfer = [alpha.data, floats, msg.bytes, ...(difference ? [difference.samples, difference.weak.data] : []), ...(working ? [working.data] : []),
        ...(coarse ? coarseBuffers(coarse) : []),
        ...(placed ? [placed.warped, placed.valid, ...(placed.grid ? [placed.grid.plate.data, ...(placed.grid.shifts ? [placed.grid.shifts.dx, placed.grid.shifts.dy] : [])] : []),
          ...(placed.difference ? [placed.difference.samples, placed.difference.weak.data] : [])] : [])].map((a) => a.buffer as ArrayBuffer);
      port.postMessage({ id: msg.id, data: alpha.data, width: alpha.width, height: alpha.height, frame: floats, bytes: msg.bytes, ...(difference ? { difference } : {}), ...(tracked ? { tracked } : {}), ...(working ? { working } : {}), ...(coarse ? { coarse } : {}), ...(placed ? { placed } : {}) },
        [...new Set(transfer)]);
    } catch (err) {
      port.postMessage({ id: msg.id, error: (err as Error).message });
    }
  };
  /**
   * A video's first frames wait on this thread's first inference at their size (several times a
   * later one: the model's buffers for that size are made then): run when the video's
   * size is known, while the main thread still reads the plate. A mid-grey frame goes through a
   * stream of its own, so the video's memory stays as a new thread's. Skipped where a frame or
   * photo of that size ran.
   */
  const warm = async (msg: WarmMessage) => {
    try {
      const { width, height } = stream.inputSize(msg.warm.width, msg.warm.height);
      if (warmed.has(`${width}x${height}`)) return;
      warmed.add(`${width}x${height}`);
      const scratch = prior.stream(setup.stream);
      try {
        await scratch.estimate({ width, height, channels: 3, data: new Float32Array(width * height * 3).fill(0.5) }, true);
      } finally {
        scratch.close();
      }
    } catch {
      // A warm-up only saves time: whatever failed here fails again, and is reported, on the first frame.
    }
  };
  const pump = async () => {
    if (busy) return;
    busy = true;
    try {
      for (;;) {
        // Messages are events: without a turn of the event loop here, a photo sent while frames are
        // queued would only be seen once they are all done (the model's promises resolve as microtasks).
        await new Promise((r) => setImmediate(r));
        if (closing) break;
        const next = photos.shift() ?? (refits[0]?.refit.video === trackVideo ? refits.shift() : undefined) ?? video.shift();
        if (!next) break;
        if ('image' in next) await photo(next);
        else if ('sample' in next) await sample(next);
        else if ('realign' in next) realignBand(next);
        else if ('assess' in next) await assess(next);
        else if ('flow' in next) await flow(next);
        else if ('decide' in next) decideLate(next);
        else if ('refit' in next) refit(next);
        else if ('reset' in next) {
          // A new video: its memory zero; refits still waiting were the last video's.
          stream.close(); stream = prior.stream(setup.stream); still = undefined; tracker = undefined; workGrid = undefined;
          trackVideo = -1; refitChain = {};
          const waiting = refits.splice(0);
          for (const r of waiting) {
            if (r.refit.video < next.video) port.postMessage({ replyTo: r.refit.id, unavailable: true });
            else refits.push(r);
          }
        }
        else if ('track' in next) {
          // The alignment code, loaded only now: a tripod's or a photo's thread never needs it.
          tracker = undefined;
          try {
            const [{ trackInChain, placePlate, correctPlate, fillUncovered }, { resize }, { smoothedHomography }, { realignOnGrid }] = await Promise.all([import('../photo.js'), openCv(), import('../video/temporal.js'), import('../matte/classic.js')]);
            const { width, height, data, video: _video, ...rest } = next.track;
            tracker = { ...rest, plate: { width, height, channels: 3, data }, chain: {}, trackInChain, resize, ...(rest.place ? { placing: { fits: new Map(), spare: [], frames: new Map(), free: [], placePlate, correctPlate, fillUncovered, smoothedHomography, realignOnGrid } } : {}) };
          } catch {
            // Frames then come back without a fit, and the matting thread tracks them as before.
          }
          trackVideo = next.track.video;
        }
        else if ('prepare' in next) {
          try {
            shrinker = await openCv();
            workGrid = next.prepare.grid;
            port.postMessage({ shrinks: true });
          } catch {
            // The sender goes on shrinking the frames itself.
          }
        }
        else if ('still' in next) {
          const { width, height, data, grid } = next.still;
          const plate: ImageF32 = { width, height, channels: 3, data };
          still = { plate, grid };
          // The engine's code, loaded only now: the thread of a video without a still plate never needs it.
          if (next.still.decide) {
            try {
              const [{ decideStill }, { resize }] = await Promise.all([import('../matte/classic.js'), openCv()]);
              still.decide = { plateSmall: resize(plate, grid.width, grid.height), decideStill, resize };
            } catch {
              // The matting thread then decides on the working grid itself, as before.
            }
          }
        }
        else if ('warm' in next) await warm(next);
        else await frame(next);
      }
    } finally {
      busy = false;
      if (closing) process.exit(0);
    }
  };
  port.on('message', (msg: FrameMessage | ImageMessage | SampleMessage | RealignMessage | AssessMessage | FlowMessage | { loadCv: true } | WarmMessage | StillMessage | DecideMessage | TrackMessage | PrepareMessage | RefitMessage | { reset: true; video: number } | { close: true }) => {
    if ('close' in msg) {
      // The thread ends itself, between two pieces of work: ONNX Runtime's addon aborts the whole
      // process when a thread is terminated while a model loads or runs on it.
      closing = true;
      photos.length = 0; video.length = 0; refits.length = 0;
      if (!busy) process.exit(0);
      return;
    }
    // OpenCV loaded in the background, between pieces of work (a photo's plate check asks for it ahead).
    if ('loadCv' in msg) { void openCv().catch(() => undefined); return; }
    // A still plate goes ahead of queued frames too: the frames still queued get their difference,
    // and the frames decided late (`decide`, which come right after it) find it.
    if ('image' in msg || 'sample' in msg || 'realign' in msg || 'assess' in msg || 'flow' in msg || 'still' in msg || 'decide' in msg) photos.push(msg);
    else if ('refit' in msg) refits.push(msg);
    else video.push(msg);
    void pump();
  });
  port.postMessage({ ready: true });
} catch (err) {
  port.postMessage({ ready: false, error: (err as Error).message });
}
