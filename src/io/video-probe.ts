/** What a video file holds, from ffprobe: display size (rotation applied), frame rate, frames, audio. */
import { stat } from 'node:fs/promises';
import { CleanplateError } from '../errors.js';
import { runTool } from './ffmpeg.js';

export interface VideoInfo {
  file: string;
  /** Size of the frames as ffmpeg hands them over: rotation metadata already applied. */
  width: number;
  height: number;
  /** The frame rate as ffmpeg writes it ("30000/1001") and as a number. */
  rate: string;
  fps: number;
  /** Frames in the stream, counted packet by packet (exact, not estimated from the duration). */
  frames: number;
  rotation: number;
  codec: string;
  /** The decoder's pixel format, e.g. yuv420p: tells how coarse the colour planes are. */
  pixelFormat: string;
  audio?: { codec: string };
}

interface ProbeStream {
  codec_type?: string; codec_name?: string; pix_fmt?: string; width?: number; height?: number;
  avg_frame_rate?: string; r_frame_rate?: string; nb_frames?: string; nb_read_packets?: string;
  side_data_list?: { rotation?: number }[]; tags?: { rotate?: string };
}

function rational(text: string | undefined): number {
  if (!text) return NaN;
  const [n, d] = text.split('/').map(Number);
  return d === undefined ? n! : d ? n! / d : NaN;
}

export async function probeVideo(file: string): Promise<VideoInfo> {
  const info = await stat(file).catch(() => null);
  if (!info) throw new CleanplateError('video not found', file);
  if (!info.isFile()) throw new CleanplateError('not a file', file);
  if (info.size === 0) throw new CleanplateError('video file is empty', file);
  const json = await runTool('ffprobe', ['-v', 'error', '-count_packets', '-show_entries',
    'stream=codec_type,codec_name,pix_fmt,width,height,avg_frame_rate,r_frame_rate,nb_frames,nb_read_packets:stream_side_data=rotation:stream_tags=rotate',
    '-of', 'json', file], file, 'cannot read video (not a video, or damaged or truncated)');
  const streams = (JSON.parse(json) as { streams?: ProbeStream[] }).streams ?? [];
  const video = streams.find((s) => s.codec_type === 'video' && s.width && s.height);
  if (!video) {
    // A file cut inside its index can still list a stream, of type 'data' or without a size.
    const audioOnly = streams.length > 0 && streams.every((s) => s.codec_type === 'audio');
    throw new CleanplateError(audioOnly ? 'no video stream found: the file holds only audio' : 'no usable video stream found: not a video, or damaged or truncated', file);
  }
  const audio = streams.find((s) => s.codec_type === 'audio');
  const packets = Number(video.nb_read_packets ?? 0);
  const declared = Number(video.nb_frames ?? 0);
  if (!packets) throw new CleanplateError('video stream holds no frames', file);
  // A container whose index lists more frames than the file holds was cut short.
  if (declared > packets) throw new CleanplateError(`video is truncated: the container lists ${declared} frames but only ${packets} are present`, file);
  let rate = video.avg_frame_rate && rational(video.avg_frame_rate) > 0 ? video.avg_frame_rate : video.r_frame_rate ?? '';
  if (!(rational(rate) > 0)) rate = '25/1';
  const rotation = Number(video.side_data_list?.find((d) => d.rotation !== undefined)?.rotation ?? video.tags?.rotate ?? 0);
  const quarter = Math.abs(Math.round(rotation / 90)) % 2 === 1;
  return {
    file,
    width: quarter ? video.height! : video.width!,
    height: quarter ? video.width! : video.height!,
    rate, fps: rational(rate), frames: packets, rotation, codec: video.codec_name ?? 'unknown', pixelFormat: video.pix_fmt ?? 'unknown',
    ...(audio ? { audio: { codec: audio.codec_name ?? 'unknown' } } : {}),
  };
}

/**
 * Where each frame of a video is, for starting to decode part-way: presentation timestamps frame by
 * frame and the keyframes a decoder can start at. ffprobe reads the packets (no decoding).
 */
export interface FrameIndex {
  /** Presentation timestamp of each frame in the stream's time base, in presentation order (index = frame). */
  pts: number[];
  /** Seconds per timestamp unit. */
  timeBase: number;
  /** Frames a decoder can start at (ascending). */
  keyframes: number[];
}

/**
 * The frame index of a video, or a reason why it has none that allows exact seeking (packets
 * without timestamps, timestamps that repeat, a packet count other than `frames`).
 */
export async function probeFrames(file: string, frames: number): Promise<FrameIndex | { unusable: string }> {
  const out = await runTool('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=time_base:packet=pts,flags', '-of', 'compact=p=0:nk=1', file],
    file, 'cannot read the video\'s packets');
  let timeBase = NaN;
  const packets: { pts: number; key: boolean }[] = [];
  for (const line of out.split('\n')) {
    const fields = line.trim().split('|');
    if (fields.length === 1 && fields[0]!.includes('/')) { timeBase = rational(fields[0]); continue; }
    if (fields.length !== 2) continue;
    const pts = Number(fields[0]);
    if (!Number.isSafeInteger(pts)) return { unusable: 'a packet has no timestamp' };
    packets.push({ pts, key: fields[1]!.startsWith('K') });
  }
  if (!(timeBase > 0)) return { unusable: 'no time base' };
  if (packets.length !== frames) return { unusable: `${packets.length} packets for ${frames} frames` };
  const order = packets.map((p, i) => i).sort((a, b) => packets[a]!.pts - packets[b]!.pts);
  const pts = order.map((i) => packets[i]!.pts);
  for (let i = 1; i < pts.length; i++) if (pts[i] === pts[i - 1]) return { unusable: 'two frames share a timestamp' };
  const keyframes = order.flatMap((p, frame) => (packets[p]!.key ? [frame] : []));
  if (keyframes[0] !== 0) return { unusable: 'the first frame is not a keyframe' };
  return { pts, timeBase, keyframes };
}
