/**
 * How a long video is split across workers (distributed mode): the plan a video job's first step
 * writes to the store, and where its segments are cut. Segments start at keyframes, so a worker
 * decodes from the keyframe before its warm-up and not from the start of the video.
 */
import type { FrameIndex, VideoInfo } from '../io/video-probe.js';
import type { VideoState } from '../video/matte-video.js';

export interface SegmentPlan {
  frames: number;
  fps: number;
  /** Frames [start, end) of each segment, in order, covering the video. */
  segments: { start: number; end: number }[];
  /** Frames each segment mattes before its start and throws away (the same for all). */
  warmup: number;
  /** Where each frame and keyframe is, for the segments' decoders. */
  index: FrameIndex;
  /** The input as probed (size, rate, frames, audio), so that segments and the join need not read all of it again. */
  info: VideoInfo;
  /** The colour pass, computed once for the whole video. */
  state: VideoState;
  /** When the plan was made (the flow's wall time is measured from it) and what the colour pass took. */
  createdAt: string;
  analyseSeconds: number;
}

/** Default length of a segment (`cleanplate worker --segment-seconds`). */
export const SEGMENT_SECONDS = 5;

/**
 * Frames cut into floor(frames / target) segments (so a video shorter than two segments stays
 * whole); each ideal cut (i·frames/n) moves to the nearest keyframe, earlier on a tie.
 */
export function splitAtKeyframes(frames: number, keyframes: number[], target: number): { start: number; end: number }[] {
  const n = target > 0 ? Math.floor(frames / target) : 1;
  const cuts = new Set<number>();
  for (let i = 1; i < n; i++) {
    const ideal = (i * frames) / n;
    let best = -1;
    for (const k of keyframes) if (k > 0 && k < frames && (best < 0 || Math.abs(k - ideal) < Math.abs(best - ideal))) best = k;
    if (best > 0) cuts.add(best);
  }
  const bounds = [0, ...[...cuts].sort((a, b) => a - b), frames];
  return bounds.slice(1).map((end, i) => ({ start: bounds[i]!, end }));
}

/** A segment's BullMQ job id: the job's id and the segment's number (BullMQ ids may not hold ':'). */
export function segmentJobId(id: string, k: number): string {
  return `${id}.s${k}`;
}

export function isSegmentJobId(jobId: string): boolean {
  return /\.s\d+$/.test(jobId);
}
