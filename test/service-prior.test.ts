/**
 * A service worker keeps its video prior's thread across the videos and segments it runs
 * (src/prior/keeper.ts): the prior's model loads once per job thread, not once per video
 * or segment, and each video still starts the model's memory (RVM's recurrent state) from zero,
 * so every output is what a thread started for that video gives.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { loadCv } from '../src/cv.js';
import { buildClip } from '../src/demo/scene.js';
import { toBytes } from '../src/image.js';
import { encodePng } from '../src/io/encode.js';
import { probeFrames, probeVideo, type FrameIndex, type VideoInfo } from '../src/io/video-probe.js';
import { createMatter } from '../src/pipeline.js';
import { priorThreads, runTask, type JobRecord } from '../src/service/jobs.js';
import { PriorThreadKeeper } from '../src/prior/keeper.js';
import { DirStore, newJobId } from '../src/service/store.js';
import type { VideoState } from '../src/video/matte-video.js';
import { tempDir } from './helpers.js';

const HAS_FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0;
const skip = HAS_FFMPEG ? false : 'ffmpeg is not installed (apt install ffmpeg)';
/** 12 frames, a keyframe every 6: the service cuts it in two at frame 6 with 0.24 s segments. */
const W = 256, H = 192, N = 12, FPS = 25, CUT = 6;

let dir: string, video: string, plate: string;
/** Alpha PNGs (as grey bytes) of each segment, matted on a prior thread of its own. */
const ownThread: Buffer[][] = [];

async function alphas(folder: string): Promise<Buffer[]> {
  const names = (await readdir(folder)).sort();
  return Promise.all(names.map((n) => sharp(join(folder, n)).toColourspace('b-w').raw().toBuffer()));
}

function assertSame(got: Buffer[], want: Buffer[], what: string): void {
  assert.equal(got.length, want.length, `${what}: frames`);
  for (const [i, g] of got.entries()) assert.ok(g.equals(want[i]!), `${what}: frame ${i + 1} differs`);
}

before(async () => {
  if (!HAS_FFMPEG) return;
  await loadCv();
  dir = await tempDir('cleanplate-prior-threads-');
  const clip = buildClip(N, W, H, 2);
  video = join(dir, 'clip.mp4'); plate = join(dir, 'plate.png');
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${W}x${H}`, '-framerate', String(FPS), '-i', 'pipe:0',
    '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-crf', '16', '-g', String(CUT), '-keyint_min', String(CUT), '-sc_threshold', '0', video], { input: Buffer.concat(clip.frames.map((f) => Buffer.from(toBytes(f)))) });
  assert.equal(r.status, 0, String(r.stderr));
  await writeFile(plate, await encodePng(clip.plate));
});

after(() => priorThreads.close());

test('a kept prior thread: started once for two segments, each from zero memory (outputs as on a thread each)', { skip }, async () => {
  const keeper = new PriorThreadKeeper();
  // As the CLI does: the thread starts loading before the video, which then borrows it.
  keeper.warm('rvm');
  const kept = await createMatter({ prior: 'rvm', priorThreads: keeper });
  const own = await createMatter({ prior: 'rvm' });
  const info: VideoInfo = await probeVideo(video);
  const index = await probeFrames(video, info.frames) as FrameIndex;
  const state: VideoState = await own.analyseVideo({ input: video, plate, index });
  // The later segment first: the earlier one, run next on the kept thread, must not inherit its memory.
  const runs = [{ start: CUT, end: N }, { start: 0, end: CUT }];
  try {
    for (const [k, segment] of runs.entries()) {
      const out: Buffer[][] = [];
      for (const [name, m] of [['kept', kept], ['own', own]] as const) {
        const folder = join(dir, `${name}-${k}`);
        await m.matteVideo({ input: video, plate, state, segment: { ...segment, index, info }, output: { alphaSequence: folder } });
        out.push(await alphas(folder));
      }
      assertSame(out[0]!, out[1]!, `segment ${segment.start}..${segment.end} on the kept thread`);
      ownThread[segment.start === 0 ? 0 : 1] = out[1]!;
    }
  } finally {
    keeper.close();
  }
  assert.equal(keeper.started, 1, 'one prior thread, warmed beforehand, for both segments');
});

test('a service job thread runs a split video\'s segments on one prior thread; the joined alpha is the segments\' own', { skip }, async () => {
  assert.equal(ownThread.length, 2, 'needs the test before');
  const store = new DirStore(join(dir, 'store'));
  await store.init();
  const id = newJobId();
  const bytes = await store.saveInput(id, 'input.mp4', createReadStream(video));
  const plateBytes = await store.saveInput(id, 'plate.img', createReadStream(plate));
  const t = new Date().toISOString();
  const record: JobRecord = {
    id, kind: 'video', owner: 'anonymous', state: 'queued',
    options: { prior: 'rvm', engine: 'classic', align: 'auto', maxPixels: 1e8, temporal: true, alphaSequence: true },
    inputs: { input: { file: 'input.mp4', bytes, kind: 'video', width: W, height: H, frames: N, fps: FPS }, plate: { file: 'plate.img', bytes: plateBytes, kind: 'image', width: W, height: H } },
    progress: { framesDone: 0, framesTotal: N, fps: 0, etaSeconds: null }, error: null, outputs: [], attempts: 0, createdAt: t, updatedAt: t,
  };
  await store.writeRecord(record);
  // The steps a worker runs (here in this thread, whose jobs module keeps the prior thread).
  const before = priorThreads.started;
  const plan = await runTask(store, id, { kind: 'plan', segmentSeconds: CUT / FPS });
  assert.deepEqual(plan.segments, [CUT, N - CUT], 'split in two');
  await runTask(store, id, { kind: 'segment', segment: 1 });
  await runTask(store, id, { kind: 'segment', segment: 0 });
  // The plan's colour pass runs its priors on the thread too (free then), and the segments borrow it.
  assert.equal(priorThreads.started - before, 1, 'the plan and both segments used one prior thread');
  const joined = await runTask(store, id, { kind: 'join' });
  assert.ok(joined.outputs?.includes('alpha/'), JSON.stringify(joined));
  assertSame(await alphas(join(store.root, 'jobs', id, 'outputs', 'alpha')), [...ownThread[0]!, ...ownThread[1]!], 'the joined alpha PNGs');
});
