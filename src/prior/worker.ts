/**
 * The prior on the second core: a worker thread runs the model (RVM on ONNX Runtime with one
 * thread, the selfie model on TensorFlow.js's single-threaded WebAssembly backend) while the main
 * thread mattes a video's earlier frames, or tracks a photo's plate. Video frames go over as the decoder's bytes (transferred: the thread
 * hands them back as floats), with a copy shrunk here to the model's size until the thread is
 * `prepare`d to shrink them itself; a photo goes over already shrunk to it. The alpha comes back at the model's size as a transferred buffer. Node
 * edge: the browser runs the same stream in a Web Worker.
 */
import { Worker } from 'node:worker_threads';
import { CleanplateError } from '../errors.js';
import type { ImageF32, Plane } from '../image.js';
import type { AlignMode, AlignmentReport } from '../align/homography.js';
import type { PlateDifference } from '../matte/difference.js';
import type { CoarseDecision } from '../matte/engine.js';
import type { SampleOutcome } from '../photo.js';
import type { BandMoves, BandPart } from '../align/residue.js';
import type { CheckGrid, PlateAssessment } from '../align/plate-check.js';
import type { Flow, FlowJob } from '../align/homography.js';
import { loadCv } from '../cv.js';
import { disableOrtTelemetry } from '../platform/telemetry.js';
import { resize, resizeBytes } from '../ops.js';
import { priorInputSize, RVM_VIDEO_LONG_SIDE } from './spec.js';
import type { PriorName, PriorStreamOptions } from './index.js';
import type { PlaceAhead, PlacedAhead, PlacedBuffers } from './thread.js';

type RefitReply = { replyTo: number; alignment?: AlignmentReport; unavailable?: boolean; error?: string };
type SampleReply = { replyTo: number; outcome?: Omit<SampleOutcome, 'refusal'>; refusal?: { message: string; file?: string }; unavailable?: boolean; error?: string; file?: string; cleanplate?: boolean };
/** The photo of a process from which its prior thread loads OpenCV for photo work (`withOpenCv`). */
const HELP_FROM_PHOTO = 3;
type RealignReply = { replyTo: number; moves?: BandMoves; error?: string };
type AssessReply = { replyTo: number; assessment?: PlateAssessment; error?: string };
type FlowReply = { replyTo: number; flow?: Flow; error?: string };
type DecideReply = { replyTo: number; difference?: PlateDifference; working?: ImageF32; coarse?: CoarseDecision; unavailable?: boolean; error?: string };
/** A frame's difference from the still plate, the frame on the working grid and the engine's decisions there (PriorThread.decideStill). */
export interface StillDecision { difference: PlateDifference; working: ImageF32; coarse: CoarseDecision }
/** What the thread answers a call with (`call`). */
type CallReply = RefitReply | SampleReply | RealignReply | AssessReply | FlowReply | DecideReply;
type Reply = CallReply | { id: number; data?: Float32Array; width?: number; height?: number; frame?: Float32Array; bytes?: Uint8Array; difference?: PlateDifference; tracked?: { alignment?: AlignmentReport }; working?: ImageF32; coarse?: CoarseDecision; placed?: PlacedAhead; error?: string } | { ready: boolean; error?: string } | { shrinks: boolean } | { openCv: true };
interface Job { resolve: (r: FrameResult) => void; reject: (e: Error) => void; width: number; height: number; wantsFrame: boolean }

interface FrameResult { prior: Plane; frame?: Float32Array; bytes?: Uint8Array; difference?: PlateDifference; tracked?: { alignment?: AlignmentReport }; working?: ImageF32; coarse?: CoarseDecision; placed?: PlacedAhead }

/** A frame's prior, the frame as floats, the decoder's buffer handed back, with a still plate the frame's difference from it, with a tracked one its fit. */
export interface FrameEstimate {
  prior: Plane; image: ImageF32; bytes?: Uint8Array; difference?: PlateDifference;
  /** The frame's plate fit, tracked on the thread (`trackFrom`); `alignment` absent where the fit failed. */
  tracked?: { alignment?: AlignmentReport };
  /** The frame on the working grid given to `prepare` (MatteInput.working), shrunk on the thread. */
  working?: ImageF32;
  /** With a still plate sent with `decide`, the classic engine's decisions on that grid (MatteInput.coarse), made on the thread. */
  coarse?: CoarseDecision;
  /** With `trackFrom`'s `place`: an earlier frame's plate, placed on the thread (PlaceAhead). */
  placed?: PlacedAhead;
}

/** A CleanplateError's reason, without the `file: ` its message starts with. */
function unprefixed(message: string, file: string | undefined): string {
  return file !== undefined && message.startsWith(`${file}: `) ? message.slice(file.length + 2) : message;
}

/** A refitted frame's plate fit; `alignment` absent where the fit failed. */
export interface Refit { alignment?: AlignmentReport }

/** Float buffers kept for reuse: a video's frames leave the matting one by one. */
const SPARE_FRAMES = 4;

/** The prior threads of this (JS) thread that have not ended: `PriorThread.closeAll`. */
const live = new Set<PriorThread>();

export class PriorThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Job>();
  private readonly ready: Promise<void>;
  /** Settles once the thread has ended (closed, failed or crashed). */
  private readonly ended: Promise<void>;
  private next = 0;
  private failure: Error | undefined;
  /** Whether `ready` has resolved. */
  private started = false;
  /** Frames' float buffers and their priors' planes handed back for reuse (`recycle`). */
  private readonly spare: Float32Array[] = [];
  private readonly sparePriors: Float32Array[] = [];
  /** Placed plates' buffers handed back (`recyclePlaced`), sent back to the thread with the next frames. */
  private readonly sparePlaced: PlacedBuffers[] = [];
  /** The thread has OpenCV (`prepare`) and shrinks the frames sent from now on itself. */
  private threadShrinks = false;
  /** Whether the thread has OpenCV (photo work that needs it goes there only once it has: withOpenCv). */
  private threadCv: 'no' | 'loading' | 'loaded' = 'no';
  /** Photos that asked for OpenCV on the thread (withOpenCv). */
  private photosAsked = 0;
  /** Calls awaiting the thread's reply (`refit`, `colourSample`, a photo's pieces, `decideStill`), by id: each turns its reply into its result. */
  private readonly calls = new Map<number, { reply: (msg: CallReply) => void; reject: (e: Error) => void }>();
  /** Plates sent for colour-pass samples, counted: a sample names its plate by this key. */
  private plateKeys = 0;
  /** The plate the thread holds for colour-pass samples, and its key. */
  private samplePlate: { plate: ImageF32; key: number } | undefined;
  /** Videos begun on this thread (`reset`): the thread matches refits to their video's plate by it. */
  private video = 0;
  private exited = false;
  /** `close` was called: the thread is kept (ref'd) until it has ended itself. */
  private closing = false;

  constructor(private readonly name: PriorName, modelsDir?: string, private readonly stream?: PriorStreamOptions) {
    // Before the thread loads ONNX Runtime, which reads this process's environment, not its copy.
    disableOrtTelemetry();
    this.worker = new Worker(new URL('./thread.js', import.meta.url), { workerData: { name, modelsDir, stream } });
    live.add(this);
    this.ended = new Promise((resolve) => this.worker.once('exit', () => { live.delete(this); resolve(); }));
    this.ready = new Promise((resolve, reject) => {
      this.worker.on('message', (msg: Reply) => {
        if ('ready' in msg) { if (msg.ready) { this.started = true; this.unrefIfIdle(); resolve(); } else reject(new CleanplateError(`prior thread could not start: ${msg.error}`)); return; }
        if ('shrinks' in msg) { this.threadShrinks = msg.shrinks; return; }
        if ('openCv' in msg) { this.threadCv = 'loaded'; return; }
        // A call's reply (`call`): every kind names its call by `replyTo`.
        if ('replyTo' in msg) {
          const call = this.calls.get(msg.replyTo);
          if (!call) return;
          this.calls.delete(msg.replyTo);
          this.unrefIfIdle();
          call.reply(msg);
          return;
        }
        const job = this.pending.get(msg.id);
        if (!job) return;
        this.pending.delete(msg.id);
        this.unrefIfIdle();
        if (msg.error !== undefined || !msg.data || (job.wantsFrame && !msg.frame)) job.reject(new CleanplateError(`prior failed on ${job.wantsFrame ? 'a frame' : 'an image'}: ${msg.error}`));
        // The alpha comes at the model's size; enlarged here (bilinear, a few ms) to the frame's.
        else {
          // Into a frame's prior handed back (recycle), when there is one of this size.
          const at = job.wantsFrame ? this.sparePriors.findIndex((b) => b.length === job.width * job.height) : -1;
          const into = at >= 0 ? this.sparePriors.splice(at, 1)[0] : undefined;
          job.resolve({ prior: resize({ width: msg.width ?? job.width, height: msg.height ?? job.height, channels: 1, data: msg.data } as Plane, job.width, job.height, into), frame: msg.frame, ...(msg.bytes ? { bytes: msg.bytes } : {}), ...(msg.difference ? { difference: msg.difference } : {}), ...(msg.tracked ? { tracked: msg.tracked } : {}), ...(msg.working ? { working: msg.working } : {}), ...(msg.coarse ? { coarse: msg.coarse } : {}), ...(msg.placed ? { placed: msg.placed } : {}) });
        }
      });
      this.worker.on('error', (err: unknown) => this.fail(err as Error, reject));
      this.worker.on('exit', (code) => {
        this.exited = true;
        if (code !== 0) this.fail(new Error(`exited with code ${code}`), reject);
        else this.fail(new Error('closed'), reject);
      });
    });
    this.ready.catch(() => {});
    // Kept alive until the model is loaded (then unref'd while idle: a warmed thread that a command
    // which failed on its input never used does not keep the process alive): ONNX Runtime's addon
    // aborts the process when it exits while a model loads or runs on a thread.
  }

  private fail(err: Error, reject: (e: Error) => void): void {
    this.failure ??= new CleanplateError(`prior thread failed: ${err.message}`);
    reject(this.failure);
    for (const job of this.pending.values()) job.reject(this.failure);
    this.pending.clear();
    for (const call of this.calls.values()) call.reject(this.failure);
    this.calls.clear();
    this.worker.unref();
  }

  /** The thread keeps the process alive while a job or a refit is pending. */
  private unrefIfIdle(): void {
    if (this.started && !this.closing && !this.pending.size && !this.calls.size) this.worker.unref();
  }

  /**
   * The prior of one RGB frame (decoder bytes, handed over: the buffer is transferred to the
   * thread), in submission order, and the frame itself as floats, converted in the thread: the
   * main thread, which mattes, never spends its time on the conversion (11 MB per 720p frame).
   * `bytes` in the result is the decoder's buffer handed back, free to read a later frame into.
   * A frame sent ahead whose result is never awaited (the run interrupted or failed meanwhile, the
   * thread closed) does not count as an unhandled rejection.
   */
  estimateFrame(bytes: Uint8Array, width: number, height: number, index?: number): Promise<FrameEstimate> {
    const result = this.frame(bytes, width, height, index);
    result.catch(() => undefined);
    return result;
  }

  private async frame(bytes: Uint8Array, width: number, height: number, index?: number): Promise<FrameEstimate> {
    // Shrunk to the model's size here until the thread has OpenCV (`prepare`): loading it there
    // first (~0.4 s) would be on the way to the video's first prior. Then shrunk there, off the
    // matting thread (~7-12 ms a 720p frame).
    let small: { width: number; height: number; bytes: Uint8Array } | undefined;
    if (!this.threadShrinks) {
      await loadCv();
      const size = priorInputSize(this.name, width, height, { longSide: this.stream?.longSide ?? RVM_VIDEO_LONG_SIDE });
      small = { ...size, bytes: resizeBytes(bytes, width, height, size.width, size.height) };
    }
    const into = this.spare.findIndex((b) => b.length === bytes.length);
    const reused = into >= 0 ? this.spare.splice(into, 1)[0] : undefined;
    const placedBack = this.sparePlaced.pop();
    const transfer = [bytes.buffer as ArrayBuffer, ...(small && small.bytes !== bytes ? [small.bytes.buffer as ArrayBuffer] : []), ...(reused ? [reused.buffer as ArrayBuffer] : []),
      ...(placedBack ? [placedBack.warped.buffer as ArrayBuffer, placedBack.valid.buffer as ArrayBuffer] : [])];
    const { prior, frame, bytes: back, difference, tracked, working, coarse, placed } = await this.submit({ width, height, wantsFrame: true }, (id) => this.worker.postMessage({ id, width, height, bytes, ...(small ? { small } : {}), ...(reused ? { into: reused } : {}), ...(index !== undefined ? { index } : {}), ...(placedBack ? { placedBack } : {}) }, transfer));
    return { prior, image: { width, height, channels: 3, data: frame! }, ...(back ? { bytes: back } : {}), ...(difference ? { difference } : {}), ...(tracked ? { tracked } : {}), ...(working ? { working } : {}), ...(coarse ? { coarse } : {}), ...(placed ? { placed } : {}) };
  }

  /**
   * Moves the frames' shrinking to the thread, for the frames sent once it has loaded OpenCV (it
   * loads it now, in order with the frames: a video's first ones are shrunk here meanwhile, as
   * they are needed soonest): to the model's size, and with `grid` (the engine's working grid,
   * MatteInput.working) the frame too. Until `reset`, which forgets the grid (not OpenCV).
   */
  prepare(grid?: { width: number; height: number }): void {
    if (this.failure) return;
    this.inOrder(() => this.worker.postMessage({ prepare: { ...(grid ? { grid } : {}) } }));
  }

  /**
   * A still plate (colour-corrected, covering the whole frame) for the frames the thread has not
   * done yet (it goes ahead of queued frames): the thread also computes each one's difference from
   * it on `grid` (MatteInput.difference), and with `decide` and the frame on the working grid
   * (`prepare`) the classic engine's decisions on that grid (MatteInput.coarse): work the matting
   * thread then skips. Frames done before it: `decideStill`. Copied. Until `reset`.
   */
  stillPlate(plate: ImageF32, grid: { width: number; height: number }, decide = false): void {
    if (this.failure) return;
    const data = plate.data.slice();
    this.inOrder(() => this.worker.postMessage({ still: { width: plate.width, height: plate.height, data, grid, decide } }, [data.buffer]));
  }

  /**
   * The still plate's work (see `stillPlate` with `decide`) for a frame sent before the plate: its
   * difference from it, the frame on the working grid and the engine's decisions there, what a
   * frame sent after the plate comes back with (`FrameEstimate`). `prior` at the frame's size, as
   * `estimateFrame` gave it. Both are copied. Ahead of queued frames. Undefined where the thread
   * cannot (no still plate to decide with, or it failed there): the caller decides itself then.
   */
  decideStill(image: ImageF32, prior: Plane): Promise<StillDecision | undefined> {
    const { width, height } = image;
    const data = image.data.slice(), alpha = prior.data.slice();
    return this.call((id) => this.worker.postMessage({ decide: { id, width, height, image: data, prior: alpha } }, [data.buffer, alpha.buffer]), (msg) => {
      const r = msg as DecideReply;
      return r.difference && r.working && r.coarse ? { difference: r.difference, working: r.working, coarse: r.coarse } : undefined;
    });
  }

  /**
   * Hands back a frame's floats (an `estimateFrame` image's data) and its prior's plane that nothing
   * reads any more: the thread converts a later frame into the one, a later prior is enlarged into
   * the other. A fresh 11 MB array per 720p frame costs the thread 40-120 ms of first-touched pages
   * in a video's first seconds; a kept one ~6 ms. A new video (`reset`) drops what is kept.
   */
  recycle(data: Float32Array, prior?: Float32Array): void {
    if (this.spare.length < SPARE_FRAMES && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) this.spare.push(data);
    // The frame's prior too (3.7 MB at 720p, enlarged here from the model's size): the next one is enlarged into it.
    if (prior && this.sparePriors.length < SPARE_FRAMES) this.sparePriors.push(prior);
  }

  /**
   * Hands back a placed plate's buffers (a `placed` result's) that nothing reads any more: they go
   * back to the thread with a later frame, and a later frame's plate is placed into them.
   */
  recyclePlaced(placed: PlacedBuffers): void {
    if (this.sparePlaced.length < SPARE_FRAMES) this.sparePlaced.push({ warped: placed.warped, valid: placed.valid });
  }

  /**
   * The prior of one image on its own (a photo: not part of the video's memory), `prepared` at the
   * model's input size (Prior.inputSize), its alpha at that size. The image is copied, not taken.
   */
  async estimateImage(prepared: ImageF32, longSide?: number): Promise<Plane> {
    const { width, height, data } = prepared;
    const copy = data.slice();
    const { prior } = await this.submit({ width, height, wantsFrame: false }, (id) => this.worker.postMessage({ id, image: { width, height, data: copy }, longSide }, [copy.buffer]));
    return prior;
  }

  /** A job for the thread (frames in submission order, photos ahead of queued frames); the thread keeps the process alive while any is pending (it is unref'd when idle). */
  private async submit(job: Pick<Job, 'width' | 'height' | 'wantsFrame'>, post: (id: number) => void): Promise<FrameResult> {
    if (this.failure) throw this.failure;
    const id = this.next++;
    const result = new Promise<FrameResult>((resolve, reject) => this.pending.set(id, { ...job, resolve, reject }));
    result.catch(() => {}); // a failure before it is awaited below is the caller's, not unhandled
    this.worker.ref();
    // Posted now when the thread is up, not after an await: a caller that goes on computing
    // (a photo tracking its plate) would otherwise hold the message back until it is done.
    if (this.started) { post(id); return result; }
    try {
      await this.ready;
    } catch (err) {
      this.pending.delete(id);
      this.unrefIfIdle();
      throw err;
    }
    post(id);
    return result;
  }

  /**
   * A moving camera's plate: the frames sent with an `index` of `from` or later (a frame where the
   * tracker re-acquires: `from` and `every` on the matting's REACQUIRE_EVERY grid) come back with
   * their fit (`tracked`), tracked on the thread from the previous frame's as the matting thread
   * would (photo.ts trackPlate), with the frame's prior as the subject when `subject`. The thread
   * loads OpenCV for it. With `place`, each frame's plate is placed there too, and comes back with
   * a later frame (`placed`: PlaceAhead). Copied. Until `reset`.
   */
  trackFrom(plate: ImageF32, align: AlignMode, from: number, every: number, subject: boolean, place?: PlaceAhead): void {
    if (this.failure) return;
    const data = plate.data.slice();
    const video = this.video;
    this.inOrder(() => this.worker.postMessage({ track: { width: plate.width, height: plate.height, data, align, from, every, subject, video, ...(place ? { place } : {}) } }, [data.buffer]));
  }

  /**
   * The fit of a frame sent before `trackFrom` (so not tracked with it: a frame of the colour
   * pass's, when it was not yet known that the camera moves), tracked on the thread after all: in a
   * chain of their own, from the previous refit's fit and re-acquired where `index` is on the
   * `every` grid, as the matting thread would track them, `subject` (the frame's prior, at its
   * size) as the subject when `trackFrom` said so. Send them in frame order, after `trackFrom`,
   * from a frame on the grid. Ahead of the queued frames. The frame and subject are copied.
   * Resolves to `{}` where the fit failed, and to undefined where the thread cannot track
   * (its alignment code did not load): the caller tracks the frames itself then.
   */
  refit(index: number, image: ImageF32, subject: Plane | undefined): Promise<Refit | undefined> {
    const { width, height, data } = image;
    const video = this.video;
    return this.call((id) => this.worker.postMessage({ refit: { id, video, index, width, height, image: data, ...(subject ? { subject: subject.data } : {}) } }), (msg) => {
      const r = msg as RefitReply;
      if (r.error !== undefined) throw new CleanplateError(`plate tracking failed on the prior thread: ${r.error}`);
      return r.unavailable ? undefined : r.alignment ? { alignment: r.alignment } : {};
    });
  }

  /**
   * A call to the thread answered by one reply (the thread keeps the process alive meanwhile):
   * `post` sends it with its id, in order with the frames; `result` turns the reply into the result
   * (throwing rejects it).
   */
  private call<T>(post: (id: number) => void, result: (msg: CallReply) => T): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.next++;
    const out = new Promise<T>((resolve, reject) => this.calls.set(id, { reply: (msg) => { try { resolve(result(msg)); } catch (err) { reject(err as Error); } }, reject }));
    out.catch(() => undefined); // awaited by the caller; a run failing first drops it
    this.worker.ref();
    this.inOrder(() => post(id));
    return out;
  }

  /**
   * A photo's band part re-aligned on the thread (`realignPart`, align/residue.ts) while the
   * matting thread does the rest of the band: ahead of queued frames; the part's copies are
   * transferred. Undefined where the thread failed at it (the caller then does the part itself).
   */
  realignBand(part: BandPart): Promise<BandMoves | undefined> {
    const transfer = [part.image.data.buffer, part.plate.data.buffer, part.pixels.list.buffer, ...(part.valid ? [part.valid.data.buffer] : [])] as ArrayBuffer[];
    return this.call((id) => this.worker.postMessage({ realign: { id, part } }, transfer), (msg) => (msg as RealignReply).moves);
  }

  /**
   * Whether the thread has OpenCV for a photo's work that needs it (`flow`, `assess`; asked once
   * per photo), which it loads from a process's third photo on (a batch, a service). A command of
   * one or two photos does without: the compilation (~0.3 s, with V8's compiler threads) would
   * compete with the matting for the two cores (a 512 px photo's 1.27 s took ~1.5 s with it).
   */
  withOpenCv(): boolean {
    if (this.threadCv === 'loaded') return true;
    if (++this.photosAsked >= HELP_FROM_PHOTO && this.started) this.preloadOpenCv();
    return false;
  }

  /**
   * Starts loading OpenCV on the thread now (in the background, between pieces of work), once: for a
   * video with a plate, whose colour-pass sample there needs it (loaded when that sample arrived,
   * ~0.45 s on the thread, it was the colour pass's last part), and for photos (`withOpenCv`).
   */
  preloadOpenCv(): void {
    if (this.failure || this.threadCv !== 'no') return;
    this.threadCv = 'loading';
    this.worker.postMessage({ loadCv: true });
  }

  /**
   * A part of a photo's corners tracked on the thread (homography.ts flowOfJob) while the matting
   * thread tracks the rest: ahead of queued frames (behind the photo's prior), the two 8-bit
   * working images copied. Undefined where the thread failed at it.
   */
  flow(job: FlowJob): Promise<Flow | undefined> {
    return this.call((id) => this.worker.postMessage({ flow: { id, job } }, [job.from.buffer as ArrayBuffer, job.to.buffer as ArrayBuffer, job.points.buffer as ArrayBuffer]), (msg) => (msg as FlowReply).flow);
  }

  /**
   * A photo's plate check judged on the thread (plate-check.ts assessOnGrid) while the matting
   * thread runs the engine: ahead of queued frames, the check's small images copied. Undefined
   * where the thread failed at it: the caller then judges it itself.
   */
  assess(grid: CheckGrid): Promise<PlateAssessment | undefined> {
    const copy = <T extends ImageF32>(x: T): T => ({ ...x, data: x.data.slice() });
    const sent: CheckGrid = { image: copy(grid.image), plate: copy(grid.plate), valid: copy(grid.valid), ...(grid.subject ? { subject: copy(grid.subject) } : {}), featureSupport: grid.featureSupport };
    const transfer = [sent.image, sent.plate, sent.valid, ...(sent.subject ? [sent.subject] : [])].map((x) => x.data.buffer as ArrayBuffer);
    return this.call((id) => this.worker.postMessage({ assess: { id, grid: sent } }, transfer), (msg) => (msg as AssessReply).assessment);
  }

  /**
   * A video's colour-pass sample done on the thread whole: its prior (at `longSide`, as
   * `estimateOnThread` gives it), the plate's fit, the colour fit and the plate check (photo.ts
   * sampleFit, sampleCheck), ahead of queued frames, while the caller does another sample. The
   * frame's bytes are copied; the plate is copied with the first sample of each plate. Undefined
   * where the thread cannot (its alignment code did not load): the caller does the sample itself.
   */
  colourSample(bytes: Uint8Array, width: number, height: number, plate: ImageF32, align: AlignMode, longSide: number, subject: boolean): Promise<SampleOutcome | undefined> {
    const fresh = this.samplePlate?.plate !== plate;
    if (fresh) this.samplePlate = { plate, key: ++this.plateKeys };
    const plateKey = this.samplePlate!.key;
    const copy = bytes.slice();
    const plateData = fresh ? plate.data.slice() : undefined;
    const post = (id: number) => this.worker.postMessage({ sample: { id, width, height, bytes: copy, longSide, align, subject, plateKey, ...(plateData ? { plate: plateData } : {}) } },
      [copy.buffer as ArrayBuffer, ...(plateData ? [plateData.buffer as ArrayBuffer] : [])]);
    return this.call(post, (msg) => {
      const r = msg as SampleReply;
      const error = (message: string, file: string | undefined) => new CleanplateError(unprefixed(message, file), file);
      if (r.error !== undefined) throw r.cleanplate ? error(r.error, r.file) : new CleanplateError(`colour-pass sample failed on the prior thread: ${r.error}`);
      return r.unavailable ? undefined : { ...r.outcome, ...(r.refusal ? { refusal: error(r.refusal.message, r.refusal.file) } : {}) };
    });
  }

  /**
   * Posts a message in order with the frames': now when the thread is up, else once it is (after
   * `ready`, where every frame's message waits too).
   */
  private inOrder(post: () => void): void {
    if (this.started) post();
    else void this.ready.then(post, () => undefined);
  }

  /**
   * Forgets the model's memory (RVM's recurrent state), in order with the frames sent before: the
   * next frame is the first of a new video, as on a new thread. For a thread kept across videos.
   */
  reset(): void {
    // Buffers kept for the last video's frames: the next may have another size (a thread kept
    // across a service's videos would otherwise hold them for good).
    this.spare.length = 0;
    this.sparePriors.length = 0;
    this.sparePlaced.length = 0;
    if (this.failure) return;
    const video = ++this.video;
    this.inOrder(() => this.worker.postMessage({ reset: true, video }));
  }

  /**
   * Readies the thread for a video of this frame size (the model run once at the size its frames
   * will have), in order with the frames: call it before the first frame.
   */
  warm(width: number, height: number): void {
    if (this.failure) return;
    this.inOrder(() => this.worker.postMessage({ warm: { width, height } }));
  }

  /** Whether frames sent now are shrunk on the thread (`prepare` done there). */
  get shrinksFrames(): boolean {
    return this.threadShrinks;
  }

  /** False once the thread failed or was closed: it takes no more frames. */
  get usable(): boolean {
    return !this.failure;
  }

  /**
   * The thread takes no more work and ends itself once its current piece of work is done (see the
   * constructor); the process waits for that. Resolves once it has ended.
   */
  close(): Promise<void> {
    this.failure ??= new CleanplateError('prior thread closed');
    if (this.exited || this.closing) return this.ended;
    this.closing = true;
    this.worker.ref();
    this.worker.postMessage({ close: true });
    return this.ended;
  }

  /**
   * Closes every prior thread this thread started and resolves once all have ended: a worker
   * thread that owns prior threads calls it before it exits, since its exit would terminate them,
   * and ONNX Runtime aborts the whole process when a thread is terminated while a model loads or
   * runs on it (the service's job threads: service/thread.ts).
   */
  static async closeAll(): Promise<void> {
    await Promise.all([...live].map((t) => t.close()));
  }
}
