/**
 * The video speed matrix of the README: fps of `cleanplate video` (default outputs: alpha.mp4 and
 * foreground.webm) at 720p and 1080p, on a tripod clip (classic, network, prior only) and a
 * hand-held one (classic), with the share of time waiting on ffmpeg, peak memory and the
 * per-frame milliseconds of each stage. One CLI process per run, like a user's.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IDENTITY, warpPlate } from '../src/align/homography.js';
import { buildClip } from '../src/demo/scene.js';
import { toBytes, type ImageF32 } from '../src/image.js';
import { encodePng } from '../src/io/encode.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { median } from './speed.js';

export interface SpeedRow {
  size: string; camera: 'tripod' | 'hand-held'; method: string; frames: number; fps: number; ioShare: number; peakRssMB: number;
  /** Seconds to the first frame written, and the frame rate after it (report.json). */
  firstFrameSeconds: number; steadyFps: number;
  /** Milliseconds per frame of each stage (prior: time the matting waited for it). */
  msPerFrame: Record<string, number>;
  tracked?: number;
  /** The prior-only run's fps over this one's: the median of the rounds' ratios, each against the prior-only run of the same round. */
  vsPriorOnly?: number;
  /** Runs this row's figures are the median of (the run with the median fps). */
  runs?: number;
}

/** A hand-held camera: every frame moved by a few pixels and a fraction of a degree, smoothly (also the split test's clip in test/video.test.ts). */
export function handHeld(frames: ImageF32[]): ImageF32[] {
  return frames.map((f, t) => {
    const angle = (0.25 * Math.sin(t / 5) * Math.PI) / 180, dx = 5 * Math.sin(t / 7), dy = 3 * Math.cos(t / 6);
    const cx = f.width / 2, cy = f.height / 2, c = Math.cos(angle), s = Math.sin(angle);
    const h = [...IDENTITY];
    h[0] = c; h[1] = -s; h[2] = cx - c * cx + s * cy + dx; h[3] = s; h[4] = c; h[5] = cy - s * cx - c * cy + dy;
    return warpPlate(f, h, f.width, f.height).warped;
  });
}

export interface EncodeOptions {
  /** A keyframe every this many frames exactly (else x264's own choice). */
  keyframeEvery?: number;
  /** A sine tone as the audio track (AAC), as long as the video. */
  audio?: boolean;
  fps?: number;
}

/**
 * Encodes frames to H.264 (medium, CRF 18, 4:2:0), as a phone would, streaming them into ffmpeg
 * one at a time: a generator of frames never holds the clip in memory.
 */
export async function encodeClip(frames: Iterable<ImageF32>, file: string, o: EncodeOptions = {}): Promise<void> {
  const it = frames[Symbol.iterator]();
  let next = it.next();
  if (next.done) throw new Error('no frames to encode');
  const { width, height } = next.value;
  const fps = o.fps ?? 30;
  const keys = o.keyframeEvery ? ['-g', String(o.keyframeEvery), '-keyint_min', String(o.keyframeEvery), '-sc_threshold', '0'] : [];
  const audio = o.audio ? ['-f', 'lavfi', '-i', 'sine=frequency=440'] : [];
  const child = spawn('ffmpeg', ['-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-framerate', String(fps), '-i', 'pipe:0', ...audio,
    '-c:v', 'libx264', '-preset', 'medium', '-crf', '18', '-pix_fmt', 'yuv420p', ...keys, ...(o.audio ? ['-c:a', 'aac', '-shortest'] : []), file], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  child.stdin.on('error', () => undefined); // ffmpeg failed: its exit code and stderr say why
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  for (; !next.done; next = it.next()) {
    if (!child.stdin.write(Buffer.from(toBytes(next.value)))) await new Promise((resolve) => child.stdin.once('drain', resolve));
  }
  child.stdin.end();
  if ((await closed) !== 0) throw new Error(`encoding ${file}: ${stderr}`);
}

/**
 * The VM this runs on drifts by 10-40% within minutes, so one run per case says little about a
 * ratio between two cases: every case but the slow network engine runs in `rounds` rounds, each
 * round running the cases in turn; a row is the run with the median fps, and `× prior only` the
 * median of the rounds' ratios against the same round's prior-only run.
 */
export async function videoSpeed(dir: string, frames: number, prior: string, engines: string[], rounds = 3): Promise<SpeedRow[]> {
  const rows: SpeedRow[] = [];
  for (const [width, height] of [[1280, 720], [1920, 1080]] as const) {
    const clip = buildClip(frames, width, height, 4, 21, 150);
    const tripod = join(dir, `speed-${height}-tripod.mp4`), moving = join(dir, `speed-${height}-handheld.mp4`), plate = join(dir, `speed-${height}-plate.png`);
    await encodeClip(clip.frames, tripod);
    await encodeClip(handHeld(clip.frames), moving);
    await writeFile(plate, await encodePng(clip.plate));
    const cases: [SpeedRow['camera'], string, string, string[]][] = [
      ...engines.map((e): [SpeedRow['camera'], string, string, string[]] => ['tripod', e, tripod, ['--plate', plate, '--engine', e]]),
      ['tripod', 'prior only', tripod, []],
      ['hand-held', 'classic', moving, ['--plate', plate, '--engine', 'classic']],
    ];
    const runs = new Map<string, { row: SpeedRow; round: number }[]>();
    for (let round = 0; round < rounds; round++) {
      for (const [camera, method, input, args] of cases) {
        if (method === 'network' && round > 0) continue;
        const r = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'bin', 'cleanplate.js'), 'video', input, ...args, '--prior', prior, '--out', join(dir, `speed-out-${height}-${camera}-${method.replace(/ /g, '')}`), '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
        if (r.status !== 0) throw new Error(`${method} ${camera} ${height}p: ${r.stderr}`);
        const report = JSON.parse(r.stdout);
        const msPerFrame = Object.fromEntries(Object.entries(report.seconds as Record<string, number>).map(([k, v]) => [k, +((v * 1000) / report.frames).toFixed(1)]));
        const row: SpeedRow = { size: `${width}x${height}`, camera, method, frames: report.frames, fps: report.fps, firstFrameSeconds: report.firstFrameSeconds, steadyFps: report.steadyFps, ioShare: report.ioShare, peakRssMB: report.peakRssMB, msPerFrame, ...(report.alignment ? { tracked: report.alignment.tracked } : {}) };
        const key = `${camera} ${method}`;
        runs.set(key, [...(runs.get(key) ?? []), { row, round }]);
        console.error(`${width}x${height} ${camera} ${method} (round ${round + 1}): ${report.fps.toFixed(2)} fps (first frame at ${report.firstFrameSeconds.toFixed(1)} s, ${report.steadyFps.toFixed(2)} fps after it), waiting on ffmpeg ${(report.ioShare * 100).toFixed(1)}%, peak ${report.peakRssMB} MB`);
      }
    }
    const base = runs.get('tripod prior only')!;
    for (const [camera, method] of cases) {
      const mine = runs.get(`${camera} ${method}`)!;
      const byFps = [...mine].sort((a, b) => a.row.fps - b.row.fps);
      const chosen = byFps[(byFps.length - 1) >> 1]!.row;
      const ratios = mine.map(({ row, round }) => base.find((b) => b.round === round)!.row.fps / row.fps);
      rows.push({ ...chosen, vsPriorOnly: +median(ratios).toFixed(2), runs: mine.length });
    }
  }
  return rows;
}

export function speedMatrix(rows: SpeedRow[]): string {
  const stages = ['decodeWait', 'prior', 'align', 'matte', 'temporal', 'composite', 'encodeWait'];
  return ['| size | camera | method | runs | video fps | × prior only | first frame | fps after it | waiting on ffmpeg | peak RSS | ms/frame: ' + stages.join(' / ') + ' |', '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const base = rows.find((b) => b.size === r.size && b.method === 'prior only');
      const ratio = r.vsPriorOnly !== undefined ? r.vsPriorOnly.toFixed(2) : base ? (base.fps / r.fps).toFixed(2) : '';
      return `| ${r.size} | ${r.camera} | ${r.method} | ${r.runs ?? 1} | ${r.fps.toFixed(2)} | ${ratio} | ${r.firstFrameSeconds.toFixed(1)} s | ${r.steadyFps.toFixed(2)} | ${(r.ioShare * 100).toFixed(1)}% | ${r.peakRssMB} MB | ${stages.map((s) => r.msPerFrame[s] ?? 0).join(' / ')} |`;
    })].join('\n');
}
