/**
 * Joining a video that was matted in segments (see VideoSegment): each output's encoded parts are
 * concatenated with ffmpeg's concat demuxer (stream copy: every part starts with a keyframe of
 * its own), the input's audio is muxed once over the whole, and the segments' reports become one.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { CleanplateError } from '../errors.js';
import { tempPath } from '../io/folders.js';
import { runTool } from '../io/ffmpeg.js';
import { probeVideo, type VideoInfo } from '../io/video-probe.js';
import { ffmpegThreads } from '../threads.js';
import { audioMux, isMov, writerOptions, type VideoReport, type VideoState } from './matte-video.js';

export type PartKind = 'composite' | 'alpha' | 'foreground';

/** The concat demuxer's list: one `file` line per part, quotes escaped. */
function concatList(parts: string[]): string {
  return parts.map((p) => `file '${p.replace(/'/g, "'\\''")}'`).join('\n') + '\n';
}

/**
 * Concatenates the parts of one output into `out` (written under a temporary name, then renamed),
 * muxing the input's audio into the composite (and into a ProRes foreground) as a whole run does.
 * Stream copy first; should the copy not hold every frame, the parts are re-encoded with the
 * whole run's encoder settings. Returns how it was joined.
 */
export async function joinParts(kind: PartKind, parts: string[], out: string, info: VideoInfo, frames: number): Promise<'copy' | 'encode'> {
  if (!parts.length) throw new CleanplateError('no parts to join', out);
  const list = `${tempPath(out)}.txt`;
  const temp = tempPath(out);
  const mov = kind === 'foreground' && isMov(out);
  const withAudio = kind === 'composite' || mov;
  const audioInput = withAudio && info.audio ? ['-i', info.file] : [];
  const concat = ['-v', 'error', '-y', '-f', 'concat', '-safe', '0', ...ffmpegThreads('input'), '-i', list, ...audioInput];
  const container = kind === 'foreground' ? (mov ? ['-f', 'mov'] : ['-f', 'webm']) : ['-movflags', '+faststart', '-f', 'mp4'];
  const attempts: ['copy' | 'encode', string[]][] = [
    ['copy', [...concat, '-map', '0:v:0', ...(audioInput.length ? audioMux(info, mov ? 'mov' : 'mp4') : []), '-c:v', 'copy', ...container, temp]],
    // writerOptions maps the video (and the audio) itself where there is audio to map.
    ['encode', [...concat, ...writerOptions(kind, info, out, withAudio).output, ...ffmpegThreads('output'), temp]],
  ];
  try {
    await writeFile(list, concatList(parts));
    let why = '';
    for (const [how, args] of attempts) {
      try {
        await runTool('ffmpeg', args, out, `cannot join the segments' ${kind} parts`);
        const got = (await probeVideo(temp)).frames;
        if (got === frames) {
          await rename(temp, out);
          return how;
        }
        why = `the joined ${kind} video has ${got} frames, not ${frames}`;
      } catch (err) {
        why = (err as Error).message;
      }
      await rm(temp, { force: true });
    }
    throw new CleanplateError(why, out);
  } finally {
    await rm(list, { force: true });
    await rm(temp, { force: true });
  }
}

export interface SegmentSummary { start: number; end: number; warmup: number; seconds: number; fps: number }

/** The report of a video matted in segments: the segments' reports summed, with how it was split. */
export type JoinedReport = VideoReport & { split: { segments: SegmentSummary[]; warmupFrames: number; analyseSeconds: number; joinSeconds: number; joined: Record<string, 'copy' | 'encode'> } };

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] ?? 0;

export function joinReports(reports: VideoReport[], o: { state: VideoState; outputs: string[]; wallSeconds: number; analyseSeconds: number; joinSeconds: number; joined: Record<string, 'copy' | 'encode'> }): JoinedReport {
  const first = reports[0]!;
  const frames = reports.reduce((n, r) => n + r.frames, 0);
  const seconds: Record<string, number> = {};
  for (const r of reports) for (const [k, v] of Object.entries(r.seconds)) if (k !== 'total') seconds[k] = (seconds[k] ?? 0) + v;
  const busy = reports.reduce((t, r) => t + (r.seconds.total ?? 0), 0);
  const aligned = reports.filter((r) => r.alignment);
  const methods: Record<string, number> = {};
  for (const r of aligned) for (const [k, v] of Object.entries(r.alignment!.methods)) methods[k] = (methods[k] ?? 0) + v;
  const round = (v: number) => +v.toFixed(3);
  return {
    input: first.input, engine: first.engine, prior: first.prior, temporal: first.temporal, frames,
    outputs: o.outputs,
    ...(o.state.colour && first.temporal ? { colour: o.state.colour } : {}),
    plate: o.state.plate,
    ...(first.camera ? { camera: first.camera } : {}),
    // The median of the segments' medians: close to, not exactly, the whole run's median.
    ...(aligned.length ? { alignment: { methods, medianInliers: median(aligned.map((r) => r.alignment!.medianInliers)), tracked: aligned.reduce((n, r) => n + r.alignment!.tracked, 0) } } : {}),
    // Stages summed over the segments (machine seconds); total is the flow's wall time.
    seconds: Object.fromEntries(Object.entries({ ...seconds, analyse: o.analyseSeconds, join: o.joinSeconds, total: o.wallSeconds }).map(([k, v]) => [k, round(v)])),
    fps: round(frames / o.wallSeconds),
    ioShare: busy ? +(((seconds.decodeWait ?? 0) + (seconds.encodeWait ?? 0)) / busy).toFixed(4) : 0,
    peakRssMB: Math.max(...reports.map((r) => r.peakRssMB)),
    split: {
      segments: reports.map((r) => ({ start: r.segment?.start ?? 0, end: r.segment?.end ?? r.frames, warmup: r.segment?.warmup ?? 0, seconds: r.seconds.total ?? 0, fps: r.fps })),
      warmupFrames: reports.reduce((n, r) => n + (r.segment?.warmup ?? 0), 0),
      analyseSeconds: round(o.analyseSeconds), joinSeconds: round(o.joinSeconds), joined: o.joined,
    },
  };
}
