/**
 * Live mode on the page's thread: the camera, the frame pump that feeds the two workers, the plate
 * capture with its countdown, the background choice, the speed display, the plate-fit hint and the
 * recording. The pixels themselves are only moved here (VideoFrames out, composites in).
 */
import type { Engine } from './engine.js';
import type { Params } from './params.js';
import type { BackgroundSpec, FrameStats, FromMatte, FromPrior, LiveSettings, PriorSettings } from './protocol.js';
import type { Status } from './status.js';

/**
 * Plate-fit hint, from the core's plate check (the share of the visible background the plate does not
 * explain, tolerating a pixel of shift at 256 px; one check a second): shown after two checks in a row
 * above SHOW, hidden after two below HIDE. A subject the person model misses counts as unexplained
 * background. Measured on the test clip (its subject is not a person the model knows): 0.11 with the
 * subject standing, 0.30 once as it walks in, 0.56 after a pan of 3% of the frame.
 */
const HINT_SHOW = 0.4, HINT_HIDE = 0.2, HINT_SHOW_RUN = 2, HINT_HIDE_RUN = 2;
/** Frames sent to the matte worker and not yet back: one being matted, one waiting (no idle gap). */
const MAX_IN_FLIGHT = 2;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** The stages shown on the page (the matte's own steps are in the stats for the benchmark). */
const STAGE_NAMES: Record<string, string> = {
  frame: 'camera frame in', prior: 'prior to frame size', colour: 'plate colour fit', matte: 'matte (classic engine)',
  composite: 'composite', check: 'plate check', 'draw (page)': 'draw', 'prior (worker)': 'person model (its own worker)',
};

/** The plain message for a camera that would not start. */
export function cameraMessage(err: unknown): string {
  const name = (err as DOMException)?.name ?? '';
  if (['NotFoundError', 'DevicesNotFoundError', 'OverconstrainedError'].includes(name)) return 'No camera found. Connect one and press “Retry camera”, or use Photo mode.';
  if (['NotAllowedError', 'PermissionDeniedError', 'SecurityError'].includes(name)) return 'Camera permission denied. Allow the camera for this page (the camera icon in the address bar), then press “Retry camera”.';
  if (['NotReadableError', 'TrackStartError', 'AbortError'].includes(name)) return 'The camera is busy: another application or tab is using it. Close that, then press “Retry camera”.';
  return `The camera could not start (${(err as Error)?.message ?? String(err)}).`;
}

/** The matte worker's live settings from the URL's parameters. */
export function liveSettings(params: Params): LiveSettings {
  return { width: params.width, height: params.height, plateFrames: params.plateFrames, work: params.work, refine: params.refine, colourMs: 2000, checkMs: 1000 };
}

export function priorSettings(params: Params): PriorSettings {
  return { prior: params.prior, side: params.priorSide, threads: params.threads };
}

export interface LiveStats {
  fps: number;
  frames: number;
  /** Milliseconds per stage (matte worker, prior worker, page), averaged over the recent frames. */
  ms: Record<string, number>;
  /** [sum of ms, frames] per stage since the plate was captured: means over any window by difference. */
  sums: Record<string, [number, number]>;
  priorFps: number;
  priorLag: number | undefined;
  plateMismatch: number | undefined;
  band: number | undefined;
  /** Megabytes the matte worker keeps for the frames' temporary planes. */
  scratchMb: number | undefined;
  plate: boolean;
  width: number;
  height: number;
  dropped: number;
}

export class LiveMode {
  private readonly video = $<HTMLVideoElement>('camera');
  private readonly output = $<HTMLCanvasElement>('output');
  private readonly ctx: CanvasRenderingContext2D;
  private stream: MediaStream | undefined;
  /** The camera's stream while it runs. */
  get camera(): MediaStream | undefined { return this.stream; }
  private settings: LiveSettings;
  private priorSettings: PriorSettings;
  private deviceId = '';
  private running = false;
  private inFlight = 0;
  private priorBusy = false;
  private nextId = 0;
  private buffers: ArrayBuffer[] = [];
  private plateReady = false;
  private counting = false;
  private drawn: number[] = [];
  private priorDone: number[] = [];
  private ms = new Map<string, number>();
  /** Sum and count of every stage's milliseconds since the plate was captured (for measurements over a window). */
  private sums = new Map<string, [number, number]>();
  private frames = 0;
  private dropped = 0;
  private last: FrameStats | undefined;
  private mismatch: number | undefined;
  private mismatchRun = { high: 0, low: 0 };
  private recorder: MediaRecorder | undefined;
  private recordingUrl: string | undefined;
  private composite: MediaStream | undefined;
  private lastPaint = 0;
  active = true;

  private engine: Engine | undefined;

  /** The camera may start before the models are loaded (`attach` then brings the workers). */
  constructor(private readonly params: Params, private readonly status: Status) {
    this.ctx = this.output.getContext('2d', { alpha: false })!;
    this.settings = liveSettings(params);
    this.priorSettings = priorSettings(params);
    this.output.width = params.width; this.output.height = params.height;
    this.wire();
  }

  /**
   * The composite as a MediaStream (canvas.captureStream): the source of the recording and the
   * picture-in-picture window, and a camera for other code on this page. Made when first asked for:
   * a captured canvas costs a copy of every frame.
   */
  get compositeStream(): MediaStream {
    this.composite ??= this.output.captureStream(30);
    return this.composite;
  }

  /** The workers are ready: frames flow from now on. */
  attach(engine: Engine): void {
    this.engine = engine;
    engine.matte.addEventListener('message', (e: MessageEvent<FromMatte>) => this.fromMatte(e.data));
    engine.prior.addEventListener('message', (e: MessageEvent<FromPrior>) => this.fromPrior(e.data));
    if (this.params.background) this.setBackground(this.params.background.kind === 'colour' ? { kind: 'colour', hex: this.params.background.hex } : { kind: 'blur' });
    else void this.backgroundFromControls();
    if (this.running) this.cameraReady();
  }

  private cameraReady(): void {
    ($('capture') as HTMLButtonElement).disabled = false;
    ($('record') as HTMLButtonElement).disabled = false;
    ($('popout') as HTMLButtonElement).disabled = false;
    if (!this.plateReady) this.status.set('ready', 'Camera on. Step out of view, then capture the plate (C).');
    else this.status.set('live', 'Live.');
  }

  private wire(): void {
    $<HTMLSelectElement>('resolution').value = `${this.settings.width}x${this.settings.height}`;
    $<HTMLSelectElement>('resolution').addEventListener('change', (e) => {
      const [w, h] = (e.target as HTMLSelectElement).value.split('x').map(Number);
      void this.resize(w!, h!);
    });
    $<HTMLSelectElement>('camera-select').addEventListener('change', (e) => {
      this.deviceId = (e.target as HTMLSelectElement).value;
      this.engine?.toMatte({ type: 'reset' });
      this.plateReady = false;
      void this.startCamera();
    });
    $('camera-retry').addEventListener('click', () => void this.startCamera());
    $<HTMLSelectElement>('live-prior').value = this.priorSettings.prior;
    $<HTMLSelectElement>('live-prior').addEventListener('change', (e) => {
      this.priorSettings = { ...this.priorSettings, prior: (e.target as HTMLSelectElement).value as PriorSettings['prior'] };
      this.engine?.toPrior({ type: 'settings', settings: this.priorSettings });
    });
    $('capture').addEventListener('click', () => void this.capturePlate());
    $('hint-recapture').addEventListener('click', () => void this.capturePlate());
    $('record').addEventListener('click', () => this.toggleRecording());
    $('popout').addEventListener('click', () => void this.popOut());
    for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="bg"]')) radio.addEventListener('change', () => this.backgroundFromControls());
    $('bg-colour').addEventListener('input', () => { this.check('colour'); this.backgroundFromControls(); });
    $('bg-picture').addEventListener('change', () => { this.check('picture'); this.backgroundFromControls(); });
  }

  private check(value: string): void {
    const radio = document.querySelector<HTMLInputElement>(`input[name="bg"][value="${value}"]`);
    if (radio) radio.checked = true;
  }

  private async backgroundFromControls(): Promise<void> {
    const kind = document.querySelector<HTMLInputElement>('input[name="bg"]:checked')?.value;
    if (kind === 'colour') return this.setBackground({ kind: 'colour', hex: $<HTMLInputElement>('bg-colour').value });
    if (kind === 'blur') return this.setBackground({ kind: 'blur' });
    const file = $<HTMLInputElement>('bg-picture').files?.[0];
    if (!file) { $<HTMLInputElement>('bg-picture').click(); return; }
    try {
      const bitmap = await createImageBitmap(file);
      this.setBackground({ kind: 'picture', bitmap });
    } catch {
      this.status.set('error', `${file.name}: not a readable image (PNG, JPEG or WebP).`);
    }
  }

  /** Sets the live background; a URL's ?background= is applied to the controls too. */
  setBackground(spec: BackgroundSpec): void {
    if (spec.kind === 'colour') { $<HTMLInputElement>('bg-colour').value = spec.hex; this.check('colour'); }
    if (spec.kind === 'blur') this.check('blur');
    this.engine?.toMatte({ type: 'background', background: spec }, spec.kind === 'picture' ? [spec.bitmap] : []);
  }

  async startCamera(): Promise<void> {
    this.stopCamera();
    if (!navigator.mediaDevices?.getUserMedia) {
      this.status.set('error', 'The camera needs a secure page: open this app over https, or on localhost.');
      return;
    }
    if (this.engine) this.status.set('starting', 'Starting the camera…');
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: {
          ...(this.deviceId ? { deviceId: { exact: this.deviceId } } : {}),
          width: { ideal: this.settings.width }, height: { ideal: this.settings.height }, frameRate: { ideal: 30 },
        },
      });
    } catch (err) {
      this.status.set('error', cameraMessage(err));
      $('camera-retry').hidden = false;
      return;
    }
    $('camera-retry').hidden = true;
    const track = this.stream.getVideoTracks()[0]!;
    track.addEventListener('ended', () => { if (this.stream) this.status.set('error', 'The camera stopped (unplugged, or taken by another application). Press “Retry camera”.'); $('camera-retry').hidden = false; });
    this.video.srcObject = this.stream;
    await this.video.play().catch(() => {});
    void this.listCameras(track.getSettings().deviceId);
    this.running = true;
    void this.pump(track);
    this.showPreview(!this.plateReady);
    if (this.engine) this.cameraReady();
  }

  /**
   * Camera frames as VideoFrames: straight from the track where the browser can (Chromium's
   * MediaStreamTrackProcessor: no video element has to be drawn), else from the preview video at
   * each frame it presents.
   */
  private async pump(track: MediaStreamTrack): Promise<void> {
    const Processor = (self as unknown as { MediaStreamTrackProcessor?: new (init: { track: MediaStreamTrack }) => { readable: ReadableStream<VideoFrame> } }).MediaStreamTrackProcessor;
    if (!Processor) { this.schedule(); return; }
    const reader = new Processor({ track }).readable.getReader();
    // Stopped by ending the track (stopCamera), not by cancelling the stream: a cancelled stream
    // drops the frames it has queued without closing them, and Chromium then warns that VideoFrames
    // were garbage collected unclosed. The track's end closes the stream after its queued frames,
    // which are read and closed here.
    let stopped = false;
    this.stopPump = () => { stopped = true; };
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
      if (done || !value) break;
      if (stopped) { value.close(); continue; }
      this.onFrame(value);
    }
  }

  private stopPump: (() => void) | undefined;

  /** The preview of the raw camera: shown while there is no plate (and while capturing one), paused when hidden. */
  private showPreview(show: boolean): void {
    // Without a track processor the frames come from the preview video: it stays.
    if (!this.stopPump) return;
    this.video.hidden = !show;
    if (show) void this.video.play().catch(() => {});
    else this.video.pause();
  }

  stopCamera(): void {
    this.running = false;
    this.stopPump?.();
    this.stopPump = undefined;
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = undefined;
    this.video.srcObject = null;
  }

  private async listCameras(current: string | undefined): Promise<void> {
    const select = $<HTMLSelectElement>('camera-select');
    const cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
    select.replaceChildren(...cameras.map((d, i) => new Option(d.label || `Camera ${i + 1}`, d.deviceId, false, d.deviceId === current)));
  }

  private async resize(width: number, height: number): Promise<void> {
    this.settings = { ...this.settings, width, height };
    this.output.width = width; this.output.height = height;
    this.engine?.toMatte({ type: 'settings', settings: this.settings });
    this.engine?.toPrior({ type: 'reset' });
    this.plateReady = false;
    this.buffers = [];
    await this.startCamera();
  }

  /** Without a track processor: a VideoFrame of the preview video at each frame it presents. */
  private schedule(): void {
    if (!this.running) return;
    this.video.requestVideoFrameCallback(() => {
      this.schedule();
      if (this.video.readyState >= 2 && this.video.videoWidth) this.onFrame(new VideoFrame(this.video));
    });
  }

  /** A new camera frame: to the matte worker if it has room, and to the prior worker if it is idle. */
  private onFrame(frame: VideoFrame): void {
    if (!this.engine || !this.active || !this.running || this.inFlight >= MAX_IN_FLIGHT) {
      if (this.engine && this.active) this.dropped++;
      frame.close();
      return;
    }
    const id = this.nextId++;
    if (this.plateReady && !this.priorBusy) {
      this.priorBusy = true;
      const copy = frame.clone();
      const side = this.priorSettings.side;
      const h = Math.round((side * this.settings.height) / this.settings.width / 2) * 2;
      this.engine.toPrior({ type: 'frame', id, frame: copy, width: side, height: h }, [copy]);
    }
    const out = this.buffers.pop();
    this.inFlight++;
    this.engine.toMatte({ type: 'frame', id, frame, ...(out ? { out } : {}) }, out ? [frame, out] : [frame]);
  }

  private fromPrior(m: FromPrior): void {
    if (m.type === 'progress' && this.active && /rvm\.bin$/.test(m.file) && m.loaded < m.total) {
      this.status.set(this.status.state === 'live' ? 'live' : 'ready', `Loading the RVM model… ${Math.round((100 * m.loaded) / m.total)}%`);
    } else if (m.type === 'done') {
      this.priorBusy = false;
      this.average('prior (worker)', m.ms);
      this.priorDone.push(performance.now());
    } else if (m.type === 'error') {
      this.priorBusy = false;
      this.status.set('error', `The person model failed: ${m.message}`);
    }
  }

  private fromMatte(m: FromMatte): void {
    if (m.type === 'frame') {
      this.inFlight--;
      if (m.width !== this.settings.width || m.height !== this.settings.height) return;
      const t0 = performance.now();
      this.ctx.putImageData(new ImageData(new Uint8ClampedArray(m.rgba), m.width, m.height), 0, 0);
      this.buffers.push(m.rgba);
      this.average('draw (page)', performance.now() - t0);
      for (const [k, v] of Object.entries(m.stats.ms)) this.average(k, v);
      if (m.stats.priorLag !== undefined) this.average('prior lag (frames)', m.stats.priorLag);
      if (m.stats.priorCleared !== undefined) this.average('prior cleared (share of frames)', m.stats.priorCleared ? 1 : 0);
      this.frames++;
      this.drawn.push(performance.now());
      this.last = m.stats;
      if (m.stats.plateMismatch !== undefined) this.plateCheck(m.stats.plateMismatch);
      this.paint();
    } else if (m.type === 'plate') {
      this.plateReady = true;
      this.ms.clear();
      this.sums.clear();
      // The composite is the picture now; the preview would only cost drawing.
      this.showPreview(false);
      this.status.set('live', `Live: the plate is the average of ${m.frames} frames. Step back in.`);
    } else if (m.type === 'error' && (m.context === 'frame' || m.context === 'capture' || m.context === 'background')) {
      if (m.context === 'frame') this.inFlight--;
      this.status.set('error', `Live matting failed: ${m.message}`);
    }
  }

  private average(stage: string, ms: number): void {
    const prev = this.ms.get(stage);
    this.ms.set(stage, prev === undefined ? ms : prev + 0.1 * (ms - prev));
    const sum = this.sums.get(stage) ?? [0, 0];
    this.sums.set(stage, [sum[0] + ms, sum[1] + 1]);
  }

  private plateCheck(mismatch: number): void {
    this.mismatch = mismatch;
    this.mismatchRun.high = mismatch > HINT_SHOW ? this.mismatchRun.high + 1 : 0;
    this.mismatchRun.low = mismatch < HINT_HIDE ? this.mismatchRun.low + 1 : 0;
    const hint = $('hint');
    if (hint.hidden && this.mismatchRun.high >= HINT_SHOW_RUN) hint.hidden = false;
    else if (!hint.hidden && this.mismatchRun.low >= HINT_HIDE_RUN) hint.hidden = true;
    $('hint-share').textContent = `${Math.round(mismatch * 100)}%`;
  }

  /** Frames per second over the last two seconds of a list of timestamps. */
  private static rate(times: number[]): number {
    const now = performance.now();
    while (times.length && times[0]! < now - 2000) times.shift();
    if (times.length < 2) return 0;
    return (times.length - 1) / ((times[times.length - 1]! - times[0]!) / 1000);
  }

  stats(): LiveStats {
    return {
      fps: LiveMode.rate(this.drawn), frames: this.frames, ms: Object.fromEntries([...this.ms].map(([k, v]) => [k, +v.toFixed(2)])),
      sums: Object.fromEntries(this.sums),
      priorFps: LiveMode.rate(this.priorDone), priorLag: this.last?.priorLag, plateMismatch: this.mismatch, band: this.last?.band, scratchMb: this.last?.scratchMb,
      plate: this.plateReady, width: this.settings.width, height: this.settings.height, dropped: this.dropped,
    };
  }

  /** The speed display, four times a second. */
  private paint(): void {
    const now = performance.now();
    if (now - this.lastPaint < 250) return;
    this.lastPaint = now;
    const s = this.stats();
    $('fps').textContent = s.fps.toFixed(1);
    const parts = [`${s.width}×${s.height}`, `${this.priorSettings.prior} prior ${s.priorFps.toFixed(1)} fps`];
    const lag = this.ms.get('prior lag (frames)');
    if (lag !== undefined) parts.push(`prior ${lag.toFixed(1)} frames behind`);
    if (s.band !== undefined) parts.push(`uncertain band ${(s.band * 100).toFixed(0)}% of the pixels`);
    $('stats-line').textContent = parts.join(' · ');
    const order = Object.keys(STAGE_NAMES);
    const rows = [...this.ms].filter(([k]) => STAGE_NAMES[k]).sort(([a], [b]) => order.indexOf(a) - order.indexOf(b)).map(([k, v]) => {
      const tr = document.createElement('tr');
      tr.append(Object.assign(document.createElement('td'), { textContent: STAGE_NAMES[k] }), Object.assign(document.createElement('td'), { textContent: v.toFixed(1) }));
      return tr;
    });
    $('stages').querySelector('tbody')!.replaceChildren(...rows);
  }

  /** The 3-2-1 countdown, then the next frames are averaged into the plate. */
  async capturePlate(): Promise<void> {
    if (this.counting || !this.running || !this.engine) return;
    this.counting = true;
    const overlay = $('countdown');
    this.showPreview(true);
    try {
      for (let n = this.params.countdown; n > 0; n--) {
        overlay.hidden = false;
        overlay.textContent = String(n);
        this.status.set('countdown', `Capturing the plate in ${n}… step out of view.`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      overlay.hidden = true;
      this.counting = false;
    }
    this.status.set('capturing', 'Capturing the plate: keep out of view…');
    this.showPreview(true);
    $('hint').hidden = true;
    this.mismatchRun = { high: 0, low: 0 };
    this.plateReady = false;
    this.engine.toPrior({ type: 'reset' });
    this.engine.toMatte({ type: 'capture', frames: this.settings.plateFrames });
  }

  toggleRecording(): void {
    const button = $('record');
    if (this.recorder) { this.recorder.stop(); return; }
    if (button.hasAttribute('disabled')) return;
    const type = ['video/webm;codecs=vp9', 'video/webm;codecs=vp8', 'video/webm'].find((t) => MediaRecorder.isTypeSupported(t));
    const recorder = new MediaRecorder(this.compositeStream, { ...(type ? { mimeType: type } : {}), videoBitsPerSecond: 4_000_000 });
    const chunks: Blob[] = [];
    recorder.addEventListener('dataavailable', (e) => { if (e.data.size) chunks.push(e.data); });
    recorder.addEventListener('stop', () => {
      this.recorder = undefined;
      button.setAttribute('aria-pressed', 'false');
      button.firstChild!.textContent = 'Record ';
      const blob = new Blob(chunks, { type: 'video/webm' });
      if (this.recordingUrl) URL.revokeObjectURL(this.recordingUrl);
      this.recordingUrl = URL.createObjectURL(blob);
      const link = $<HTMLAnchorElement>('recording');
      link.href = this.recordingUrl;
      link.download = `cleanplate-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.webm`;
      link.textContent = `Download the recording (${(blob.size / 1e6).toFixed(1)} MB)`;
      link.hidden = false;
      link.click();
    });
    recorder.start(1000);
    this.recorder = recorder;
    button.setAttribute('aria-pressed', 'true');
    button.firstChild!.textContent = 'Stop recording ';
  }

  /** The composite in a picture-in-picture window, which screen-capture and virtual-camera tools can take. */
  private async popOut(): Promise<void> {
    const video = document.createElement('video');
    video.muted = true;
    video.srcObject = this.compositeStream;
    try {
      await video.play();
      await video.requestPictureInPicture();
    } catch (err) {
      this.status.set(this.plateReady ? 'live' : 'ready', `Picture-in-picture is not available here (${(err as Error).message}).`);
    }
  }
}
