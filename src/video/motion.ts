/**
 * The paper's motion stack M = grey {I-2T, I-T, I+T, I+2T}. A second ffmpeg decoder runs 2T frames
 * ahead of the main one and hands over small grey frames only, so looking 2T frames into the future
 * costs a ring of small grey frames instead of 2T full-resolution colour frames.
 */
import type { Plane } from '../image.js';
import { FrameReader, seekTo } from '../io/video-stream.js';
import type { FrameIndex, VideoInfo } from '../io/video-probe.js';

/** The motion stack is only a cue; this resolution holds far more detail than the network's crop uses. */
const MOTION_LONG_SIDE = 640;

export class MotionStack {
  private readonly reader: FrameReader;
  private readonly frames = new Map<number, Uint8Array>();
  private decoded: number;
  private ended = false;
  readonly width: number;
  readonly height: number;

  /**
   * `first`: the first frame this stack will be asked about (a segment of the video); decoding
   * starts 2T frames before it, at the keyframe at or before that (`index` says where it is).
   */
  constructor(info: VideoInfo, readonly stride: number, first = 0, index?: FrameIndex) {
    const scale = Math.min(1, MOTION_LONG_SIDE / Math.max(info.width, info.height));
    this.width = Math.max(2, Math.round(info.width * scale));
    this.height = Math.max(2, Math.round(info.height * scale));
    this.decoded = index ? Math.max(0, first - 2 * stride) : 0;
    const seek = index ? seekTo(index, this.decoded) : undefined;
    this.reader = new FrameReader(info.file, { width: this.width, height: this.height, pixelFormat: 'gray', filter: `scale=${this.width}:${this.height}:flags=area`, queue: 8, ...(seek ? { seek } : {}) });
  }

  /** The four neighbours of frame t, clamped to the video's first and last frame. */
  async at(t: number): Promise<Plane[]> {
    const reach = t + 2 * this.stride;
    while (!this.ended && this.decoded <= reach) {
      const frame = await this.reader.next();
      if (frame) this.frames.set(this.decoded++, frame);
      else this.ended = true;
    }
    for (const k of this.frames.keys()) if (k < t - 2 * this.stride) this.frames.delete(k);
    const last = this.decoded - 1;
    return [-2, -1, 1, 2].map((d) => {
      const bytes = this.frames.get(Math.min(last, Math.max(0, t + d * this.stride)))!;
      const data = new Float32Array(bytes.length);
      for (let i = 0; i < bytes.length; i++) data[i] = bytes[i]! / 255;
      return { width: this.width, height: this.height, channels: 1, data };
    });
  }

  close(): void {
    this.reader.close();
  }
}
