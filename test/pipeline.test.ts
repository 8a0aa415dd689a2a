import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCv } from '../src/cv.js';
import { CleanplateError } from '../src/errors.js';
import { buildClip, buildScene } from '../src/demo/scene.js';
import { alphaMetrics } from '../src/eval/metrics.js';
import { fromBytes, toBytes, type ImageF32, type Plane } from '../src/image.js';
import { decideStill, realignOnGrid } from '../src/matte/classic.js';
import { plateDifference } from '../src/matte/difference.js';
import { resize } from '../src/ops.js';
import { createMatter } from '../src/pipeline.js';
import { matchPlate, placePlate, sampleCheck, sampleFit, trackPlate } from '../src/photo.js';
import type { ColourReport } from '../src/align/colour.js';
import type { AlignmentReport } from '../src/align/homography.js';
import type { PlacedAhead } from '../src/prior/thread.js';
import { smoothedHomography } from '../src/video/temporal.js';
import { handHeld } from '../bench/video-speed.js';
import { PriorThreadKeeper } from '../src/prior/keeper.js';
import { RVM_VIDEO_LONG_SIDE } from '../src/prior/spec.js';
import { estimateOnThread } from '../src/prior/threaded.js';
import { PriorThread } from '../src/prior/worker.js';
import { DATA, HAS_DATA, plateOffByOneAndAHalf, ROOT, tempDir } from './helpers.js';
import { horizonScene } from './horizon.js';

function patchMean(alpha: Plane, cx: number, cy: number, r = 20): number {
  let s = 0, n = 0;
  for (let y = cy - r; y < cy + r; y++) for (let x = cx - r; x < cx + r; x++) { s += alpha.data[y * alpha.width + x]!; n++; }
  return s / n;
}

test('synthetic hair scene: the plate-guided matte beats the prior alone by a wide margin', async () => {
  await loadCv();
  const scene = buildScene();
  const matter = await createMatter({ prior: 'rvm' });
  const withPlate = await matter.matte({ image: scene.image, plate: scene.plate });
  const priorOnly = await matter.matte({ image: scene.image });
  const a = alphaMetrics(withPlate.alpha, scene.alpha), b = alphaMetrics(priorOnly.alpha, scene.alpha);
  assert.equal(withPlate.report.alignment?.method, 'homography');
  assert.ok(a.mad < 0.6 * b.mad, `MAD with plate ${a.mad.toFixed(1)} vs prior only ${b.mad.toFixed(1)}`);
  assert.ok(a.mse < 0.5 * b.mse, `MSE with plate ${a.mse.toFixed(1)} vs prior only ${b.mse.toFixed(1)}`);
  assert.ok(a.mad < 45, `MAD ${a.mad}`);
  assert.equal(priorOnly.report.plate.given, false);
});

test('the prior on a prior thread (the default) gives the matte bit for bit as on the calling thread', async () => {
  await loadCv();
  const scene = buildScene(320, 240);
  for (const prior of ['rvm', 'selfie'] as const) {
    const threads = new PriorThreadKeeper();
    try {
      const threaded = await (await createMatter({ prior, priorThreads: threads })).matte({ image: scene.image, plate: scene.plate });
      const here = await (await createMatter({ prior, priorThreads: false })).matte({ image: scene.image, plate: scene.plate });
      assert.equal(threads.started, 1, `${prior}: ran on the thread`);
      assert.deepEqual(threaded.prior.data, here.prior.data, `${prior}: prior`);
      assert.deepEqual(threaded.alpha.data, here.alpha.data, `${prior}: alpha`);
      assert.deepEqual(threaded.report.alignment, here.report.alignment, `${prior}: alignment`);
    } finally {
      threads.close();
    }
  }
});

test('a photo\'s corners tracked and band re-aligned in two parts, one on the prior thread, and its plate check judged there give the matte and report bit for bit as on one thread', async () => {
  await loadCv();
  // A plate off by a pixel and a half: residue along its edges, re-aligned in both parts.
  const scene = buildScene(1280, 720, 5, 300);
  const plate = plateOffByOneAndAHalf(scene.plate);
  const threads = new PriorThreadKeeper();
  const parts: number[] = [];
  const realignBand = PriorThread.prototype.realignBand, assess = PriorThread.prototype.assess;
  PriorThread.prototype.realignBand = async function (part) {
    const moves = await realignBand.call(this, part);
    parts.push(moves?.at.length ?? -1);
    return moves;
  };
  let judged = 0, flowed = 0;
  PriorThread.prototype.assess = function (grid) {
    return assess.call(this, grid)?.then((assessment) => { if (assessment) judged++; return assessment; });
  };
  const flow = PriorThread.prototype.flow;
  PriorThread.prototype.flow = function (job) {
    return flow.call(this, job)?.then((tracked) => { if (tracked) flowed++; return tracked; });
  };
  try {
    const input = { image: scene.image, plate };
    const matter = await createMatter({ prior: 'rvm', align: 'none', priorThreads: threads });
    // Part of the band goes to the thread from the first photo; the check from the third (the
    // thread loads OpenCV then).
    let threaded = await matter.matte(input), photos = 1;
    threaded = await matter.matte(input); photos++;
    assert.equal(judged, 0);
    for (let k = 0; k < 20 && !judged; k++, photos++) {
      await new Promise((r) => setTimeout(r, 100));
      threaded = await matter.matte(input);
    }
    const here = await (await createMatter({ prior: 'rvm', align: 'none', priorThreads: false })).matte(input);
    assert.equal(parts.length, photos, 'part of each photo\'s band went to the thread');
    assert.ok(parts.every((n) => n === parts[0]) && parts[0]! > 100, `the thread re-aligned pixels of its part (${parts.join(', ')})`);
    assert.ok(Number(here.report.engineDetails.realignedPixels) > parts[0]!, 'and this thread some of its own');
    assert.equal(threaded.report.engineDetails.realignedPixels, here.report.engineDetails.realignedPixels);
    assert.deepEqual(threaded.alpha.data, here.alpha.data);
    assert.deepEqual(threaded.foreground.data, here.foreground.data);
    assert.equal(judged, 1, 'the plate check was judged on the thread');
    assert.deepEqual(threaded.report.plate, here.report.plate);
    // A plate of another scene: refused from the thread's judgement with the same one line.
    const foreign = { image: buildScene(480, 360, 21).image, plate: horizonScene(480, 360, 22).plate };
    const refusal = async (m: typeof matter) => { try { await m.matte(foreign); } catch (err) { return (err as Error).message; } return 'not refused'; };
    const there = await refusal(await createMatter({ prior: 'rvm', priorThreads: threads }));
    assert.equal(judged, 2);
    assert.match(there, /plate does not show this image's background/);
    assert.equal(there, await refusal(await createMatter({ prior: 'rvm', priorThreads: false })));
    // Tracked from no transform, half the corners on the thread: the same fit and matte.
    const tracked = await (await createMatter({ prior: 'rvm', priorThreads: threads })).matte(input);
    const trackedHere = await (await createMatter({ prior: 'rvm', priorThreads: false })).matte(input);
    assert.ok(flowed >= 1, 'corners were tracked on the thread');
    assert.equal(tracked.report.alignment?.tracked, true);
    assert.deepEqual(tracked.report.alignment, trackedHere.report.alignment);
    assert.deepEqual(tracked.alpha.data, trackedHere.alpha.data);
  } finally {
    PriorThread.prototype.realignBand = realignBand;
    PriorThread.prototype.assess = assess;
    PriorThread.prototype.flow = flow;
    await threads.close();
  }
});

test('a prior thread serves a photo before the video frames queued ahead of it, with the alpha it gives on its own', async () => {
  await loadCv();
  const scene = buildScene(640, 360);
  const thread = new PriorThread('rvm');
  try {
    const order: string[] = [];
    const bytes = toBytes(scene.image);
    // A video's colour pass asks for a sampled frame's prior while the first frames are queued.
    const frames = Array.from({ length: 6 }, (_, i) => thread.estimateFrame(bytes.slice(), 640, 360).then(() => { order.push(`frame ${i}`); }));
    const photo = estimateOnThread(thread, 'rvm', scene.image, { longSide: 384 }).then((alpha) => { order.push('photo'); return alpha; });
    const [alpha] = await Promise.all([photo, ...frames]);
    // At most the frame already running (and the one whose message came with it) go first.
    assert.ok(order.indexOf('photo') <= 2, `served in the order ${order.join(', ')}`);
    const alone = new PriorThread('rvm');
    try {
      assert.deepEqual(alpha.data, (await estimateOnThread(alone, 'rvm', scene.image, { longSide: 384 })).data, 'the same alpha as on an idle thread');
    } finally {
      alone.close();
    }
  } finally {
    thread.close();
  }
});

test('a prior thread warmed for a video gives its frames the priors of an unwarmed thread (the warm-up leaves the video\'s memory alone)', async () => {
  await loadCv();
  const scene = buildScene(640, 360);
  // Three different frames: RVM's recurrent state carries each into the next one's prior.
  const frames = [0, 0.08, 0.16].map((shift) => toBytes({ ...scene.image, data: scene.image.data.map((v) => Math.min(1, v + shift)) }));
  const run = async (warm: boolean) => {
    const thread = new PriorThread('rvm');
    try {
      if (warm) thread.warm(640, 360);
      const out: Float32Array[] = [];
      for (const bytes of frames) out.push((await thread.estimateFrame(bytes.slice(), 640, 360)).prior.data);
      return out;
    } finally {
      thread.close();
    }
  };
  const [warmed, cold] = [await run(true), await run(false)];
  assert.ok(cold[0]!.some((v, i) => Math.abs(v - cold[2]![i]!) > 1e-3), 'the frames differ in prior (else the test shows nothing)');
  for (let k = 0; k < frames.length; k++) assert.deepEqual(warmed[k], cold[k], `frame ${k}`);
});

test('a prior thread converts a frame into a buffer handed back to it: the same floats and prior as into a fresh one', async () => {
  await loadCv();
  const scene = buildScene(320, 240);
  const bytes = toBytes(scene.image);
  const thread = new PriorThread('rvm');
  try {
    const first = await thread.estimateFrame(bytes.slice(), 320, 240);
    // An earlier frame's floats, handed back dirty: the next conversion must overwrite all of them.
    const spare = first.image.data.map(() => 7);
    thread.recycle(spare);
    const sent = bytes.slice();
    const second = await thread.estimateFrame(sent, 320, 240);
    assert.equal(spare.length, 0, 'the spare buffer went to the thread (transferred)');
    // The decoder's bytes come back unchanged, for the decoder to read a later frame into.
    assert.equal(sent.length, 0, 'the bytes went to the thread (transferred)');
    assert.deepEqual(second.bytes, bytes);
    assert.deepEqual(second.image.data, fromBytes(320, 240, 3, bytes).data);
    const fresh = new PriorThread('rvm');
    try {
      await fresh.estimateFrame(bytes.slice(), 320, 240);
      assert.deepEqual(second.prior.data, (await fresh.estimateFrame(bytes.slice(), 320, 240)).prior.data, 'the same prior (second frame of a video)');
    } finally {
      fresh.close();
    }
  } finally {
    thread.close();
  }
});

test('a prepared prior thread shrinks the frames itself: the same priors as frames shrunk here, and each frame on the working grid as resize gives it', async () => {
  await loadCv();
  const clip = buildClip(3, 320, 240, 3, 5);
  const grid = { width: 128, height: 96 };
  const here = new PriorThread('rvm'), there = new PriorThread('rvm');
  try {
    there.prepare(grid);
    for (let k = 0; k < clip.frames.length; k++) {
      const bytes = toBytes(clip.frames[k]!);
      // The first frame is sent before the thread has said it is ready to shrink (shrunk here);
      // its reply comes after that word, so the later ones are shrunk there.
      assert.equal(there.shrinksFrames, k > 0, `frame ${k}: shrunk ${k > 0 ? 'on the thread' : 'here'}`);
      const a = await here.estimateFrame(bytes.slice(), 320, 240, k), b = await there.estimateFrame(bytes.slice(), 320, 240, k);
      assert.deepEqual(b.prior.data, a.prior.data, `frame ${k}: the same prior`);
      assert.equal(a.working, undefined, 'an unprepared thread sends no working image');
      assert.ok(b.working, `frame ${k} comes back on the working grid`);
      assert.deepEqual(b.working, resize(fromBytes(320, 240, 3, bytes), grid.width, grid.height));
    }
    there.reset();
    assert.equal((await there.estimateFrame(toBytes(clip.frames[0]!), 320, 240)).working, undefined, 'a new video has no working grid until prepared');
    assert.ok(there.shrinksFrames, 'OpenCV stays loaded across videos');
  } finally {
    here.close();
    there.close();
  }
});

test('a prior thread given a still plate returns each later frame\'s difference from it, as computed here; a reset drops the plate', async () => {
  await loadCv();
  const scene = buildScene(320, 240);
  const bytes = toBytes(scene.image);
  const grid = { width: 128, height: 96 };
  const thread = new PriorThread('rvm');
  try {
    const before = await thread.estimateFrame(bytes.slice(), 320, 240);
    assert.equal(before.difference, undefined, 'no plate yet: no difference');
    thread.stillPlate(scene.plate, grid);
    const after = await thread.estimateFrame(bytes.slice(), 320, 240);
    const here = plateDifference(fromBytes(320, 240, 3, bytes), scene.plate, grid);
    assert.ok(after.difference, 'a frame sent after the plate comes back with its difference');
    assert.equal(after.difference.step, here.step);
    assert.deepEqual(after.difference.samples, here.samples);
    assert.deepEqual(after.difference.weak, here.weak);
    assert.ok(here.weak.data.some((v) => v > 0.1), 'the scene differs from its plate somewhere');
    thread.reset();
    assert.equal((await thread.estimateFrame(bytes.slice(), 320, 240)).difference, undefined, 'a new video has no still plate');
  } finally {
    thread.close();
  }
});

test('a prior thread given a still plate to decide with returns each later frame\'s working-grid decisions, as made here from what it returns, and decides a frame done before the plate on request', async () => {
  await loadCv();
  const scene = buildScene(640, 360);
  const bytes = toBytes(scene.image);
  const grid = { width: 512, height: 288 };
  const thread = new PriorThread('rvm');
  try {
    thread.prepare(grid);
    const early = await thread.estimateFrame(bytes.slice(), 640, 360);
    assert.equal(early.coarse, undefined, 'no plate yet: no decisions');
    assert.equal(await thread.decideStill(early.image, early.prior), undefined, 'no plate to decide with: the caller decides');
    thread.stillPlate(scene.plate, grid, true);
    const got = await thread.estimateFrame(bytes.slice(), 640, 360);
    assert.ok(got.coarse && got.difference && got.working, 'a frame sent after the plate comes back with the decisions');
    const plateSmall = resize(scene.plate, grid.width, grid.height);
    const here = decideStill(got.working, plateSmall, got.prior, got.difference);
    for (const k of ['region', 'sure', 'fallback', 'fHat', 'opaque', 'clear'] as const) assert.deepEqual(got.coarse[k], here[k], k);
    assert.equal(got.coarse.noise, here.noise);
    assert.ok(here.region.data.some((v) => v === 1) && here.fHat.data.some((v) => v > 0), 'a subject was found');
    // The frame done before the plate, decided there afterwards: what this thread computes for it
    // (its prior is not the later frame's: the model's memory moved on).
    const late = await thread.decideStill(early.image, early.prior);
    assert.ok(late, 'a frame done before the plate is decided late');
    const workingHere = resize(early.image, grid.width, grid.height), differenceHere = plateDifference(early.image, scene.plate, grid);
    assert.deepEqual(late.working, workingHere);
    assert.deepEqual(late.difference, differenceHere);
    const lateHere = decideStill(workingHere, plateSmall, early.prior, differenceHere);
    for (const k of ['region', 'sure', 'fallback', 'fHat', 'opaque', 'clear'] as const) assert.deepEqual(late.coarse[k], lateHere[k], `late ${k}`);
    assert.equal(late.coarse.noise, lateHere.noise);
    assert.ok(early.image.data.length === 640 * 360 * 3 && early.prior.data.length === 640 * 360, 'the frame and its prior are copied, not taken');
    assert.equal(await thread.decideStill({ ...early.image, width: 320, height: 720 }, { ...early.prior, width: 320, height: 720 }), undefined, 'a frame of another size than the plate: the caller decides');
    thread.stillPlate(scene.plate, grid);
    assert.equal((await thread.estimateFrame(bytes.slice(), 640, 360)).coarse, undefined, 'a plate sent without `decide`: the difference only');
    assert.equal(await thread.decideStill(early.image, early.prior), undefined, 'a plate sent without `decide`: nothing decided late');
  } finally {
    thread.close();
  }
});

test('a prior thread does a colour-pass sample whole: the fit, colour fit and plate check the matting thread finds for it, a refusal included', async () => {
  await loadCv();
  const clip = buildClip(6, 320, 240, 3, 5);
  const frames = handHeld(clip.frames);
  // A textured room and a landscape of sky and grass: a plate of another scene (test/plate-check.test.ts).
  const room = buildScene(480, 360, 21), landscape = horizonScene(480, 360, 22);
  const thread = new PriorThread('rvm');
  try {
    const cases: [ImageF32, ImageF32][] = [[frames[2]!, clip.plate], [frames[5]!, clip.plate], [room.image, landscape.plate]];
    let refused = 0;
    for (const [k, [frame, plate]] of cases.entries()) {
      const { width, height } = frame;
      const bytes = toBytes(frame);
      // Sent first (the thread does it while this thread computes the same here).
      const there = thread.colourSample(bytes, width, height, plate, 'auto', RVM_VIDEO_LONG_SIDE, true);
      const image = fromBytes(width, height, 3, bytes);
      const subject = await estimateOnThread(thread, 'rvm', image, { longSide: RVM_VIDEO_LONG_SIDE });
      const fit = sampleFit(image, plate, subject, 'auto');
      const here = fit ? sampleCheck(image, fit, subject) : {};
      const got = await there;
      assert.ok(got, `sample ${k}: the thread did it`);
      assert.deepEqual(got, here, `sample ${k}`);
      if (k < 2) assert.ok(here.alignment && here.alignment.method !== 'identity' && here.assessment, `sample ${k}: a moved camera's fit, and the plate accepted`);
      if (here.refusal) { refused++; assert.ok(got.refusal instanceof CleanplateError && got.refusal.file === here.refusal.file); }
    }
    assert.equal(refused, 1, 'the other scene\'s plate is refused, the refusal handed back as the error it is');
  } finally {
    thread.close();
  }
});

test('a prior thread tracking a moving camera\'s plate finds the fits the matting thread would, from the grid frame it was given, and refits the frames before it', async () => {
  await loadCv();
  const clip = buildClip(10, 320, 240, 3, 5);
  const frames = handHeld(clip.frames);
  const every = 4, from = 4;
  const thread = new PriorThread('rvm');
  try {
    thread.trackFrom(clip.plate, 'auto', from, every, true);
    let lastFit: number[] | undefined;
    let tracked = 0;
    // The frames before `from` are refitted (PriorThread.refit), in a chain of their own from frame 0.
    const refits: Promise<unknown>[] = [];
    let refitLast: number[] | undefined;
    for (let index = 0; index < frames.length; index++) {
      const bytes = toBytes(frames[index]!);
      const got = await thread.estimateFrame(bytes, 320, 240, index);
      if (index < from) {
        assert.equal(got.tracked, undefined, `frame ${index} is before the tracker's first`);
        if (index % every === 0) refitLast = undefined;
        const here = trackPlate(got.image, clip.plate, got.prior, 'auto', refitLast);
        refitLast = here.method !== 'identity' ? here.homography : undefined;
        refits.push(thread.refit(index, got.image, got.prior).then((refit) => assert.deepEqual(refit, { alignment: here }, `refit of frame ${index}`)));
        continue;
      }
      // What the matting thread's loop does with the same frame and prior.
      if (index % every === 0) lastFit = undefined;
      const here = trackPlate(got.image, clip.plate, got.prior, 'auto', lastFit);
      lastFit = here.method !== 'identity' ? here.homography : undefined;
      assert.ok(got.tracked?.alignment, `frame ${index} came back with a fit`);
      assert.deepEqual(got.tracked.alignment, here, `frame ${index}`);
      if (here.method !== 'identity') tracked++;
    }
    assert.ok(tracked >= 4, `the camera moved and was followed (${tracked} fits)`);
    await Promise.all(refits);
    assert.equal(refits.length, from);
    thread.reset();
    assert.equal((await thread.estimateFrame(toBytes(frames[8]!), 320, 240, 8)).tracked, undefined, 'a new video has no tracked plate');
  } finally {
    thread.close();
  }
});

test('a prior thread placing a moving camera\'s plate ahead gives each frame the plate the matting thread would place, from the same smoothed homography', async () => {
  await loadCv();
  const clip = buildClip(10, 320, 240, 3, 5);
  const frames = handHeld(clip.frames);
  const every = 4, from = 4, window = 2;
  const colour: ColourReport = { applied: true, gain: [1.1, 0.92, 1.04], bias: [0.01, -0.02, 0], residualBefore: 0, residualAfter: 0, pixels: 0 };
  const thread = new PriorThread('rvm');
  const grid = { width: 160, height: 120 };
  try {
    // Prepared with a working grid: the frames come back on it too, and each placed plate with its grid plate.
    thread.prepare(grid);
    thread.trackFrom(clip.plate, 'auto', from, every, true, { window, colour });
    const images: ImageF32[] = [], workings: (ImageF32 | undefined)[] = [], fits = new Map<number, AlignmentReport | undefined>(), placed: PlacedAhead[] = [];
    const refits: Promise<unknown>[] = [];
    for (let index = 0; index < frames.length; index++) {
      const got = await thread.estimateFrame(toBytes(frames[index]!), 320, 240, index);
      images.push(got.image);
      workings.push(got.working);
      if (got.placed) placed.push(got.placed);
      if (index < from) {
        // The frames before `from` are refitted (a video's first frames): their fits count in the windows of later frames.
        refits.push(thread.refit(index, got.image, got.prior).then((r) => fits.set(index, r?.alignment)));
        continue;
      }
      fits.set(index, got.tracked?.alignment);
    }
    await Promise.all(refits);
    // Each tracked frame (kept there till then) whose window is tracked too: 4-7, placed with frames 6-9 (the refitted
    // frames are a video's first, when the matting thread waits on the prior thread and places them itself).
    assert.deepEqual(placed.map((p) => p.index), [4, 5, 6, 7]);
    let moved = 0;
    for (const p of placed) {
      const n = p.index, image = images[n]!;
      const around: (AlignmentReport | undefined)[] = [];
      for (let k = Math.max(0, n - window); k <= Math.min(frames.length - 1, n + window); k++) around.push(fits.get(k));
      const homography = smoothedHomography(around, fits.get(n), clip.plate.width, clip.plate.height, 320, 240);
      assert.deepEqual(p.homography, homography, `frame ${n}: the homography smoothed here`);
      const here = matchPlate(image, placePlate(image, clip.plate, homography!), undefined, colour);
      assert.deepEqual(p.valid, here.plateValid.data, `frame ${n}: coverage`);
      assert.deepEqual(p.warped, here.plate.data, `frame ${n}: the plate (corrected and filled), bit for bit`);
      assert.ok(workings[n], `frame ${n} came back on the working grid`);
      const onGrid = realignOnGrid(workings[n]!, here.plate, here.plateValid);
      assert.deepEqual(p.grid?.plate.data, onGrid.plate.data, `frame ${n}: the grid plate`);
      assert.deepEqual(p.grid?.report, onGrid.report);
      assert.deepEqual(p.grid?.shifts, onGrid.shifts);
      if (here.plateValid.data.some((v) => v < 0.5)) moved++;
    }
    assert.ok(moved >= 3, `plates that leave part of the frame uncovered were placed (${moved})`);
  } finally {
    thread.close();
  }
});

test('real hand-held capture: face opaque; sky, trees and rooftops transparent', { skip: !HAS_DATA && 'shared data not found' }, async () => {
  const matter = await createMatter({ prior: 'rvm' });
  const input = join(DATA, 'bgm-samples', 'input');
  const r = await matter.matte({ image: join(input, '0001_img.png'), plate: join(input, '0001_back.png'), background: join(DATA, 'bgm-samples', 'background', '0002.png') });
  assert.equal(r.alpha.width, 1920);
  assert.notEqual(r.report.alignment?.method, 'identity', 'the moved camera must be compensated');
  assert.ok(patchMean(r.alpha, 823, 503) > 0.98, 'face opaque');
  assert.ok(patchMean(r.alpha, 274, 92) < 0.02, 'sky transparent');
  assert.ok(patchMean(r.alpha, 1714, 595) < 0.02, 'tree transparent');
  assert.ok(patchMean(r.alpha, 274, 800) < 0.02, 'rooftops transparent');
  let outside = 0, n = 0;
  for (let y = 0; y < 1080; y++) for (let x = 0; x < 1920; x++) if (x < 450 || x > 1250) { outside += r.alpha.data[y * 1920 + x]!; n++; }
  assert.ok(outside / n < 0.01, `clutter away from the person: mean alpha ${(outside / n).toFixed(4)}`);
  assert.equal(r.composite?.width, 1920);
});

test('a model file whose sha256 does not match its manifest is refused clearly', async () => {
  const dir = await tempDir();
  await cp(join(ROOT, 'models', 'prior'), join(dir, 'prior'), { recursive: true });
  const bin = await readFile(join(dir, 'prior', 'selfie.bin'));
  bin[100] = bin[100]! ^ 0xff;
  await writeFile(join(dir, 'prior', 'selfie.bin'), bin);
  await assert.rejects(createMatter({ prior: 'selfie', modelsDir: dir }), /selfie\.bin: model file sha256 .* does not match the manifest/);
  await writeFile(join(dir, 'prior', 'selfie.bin'), bin.subarray(0, 10));
  await assert.rejects(createMatter({ prior: 'selfie', modelsDir: dir }), /does not match/);
});

test('without a plate the prior\'s own matte is returned', async () => {
  await loadCv();
  const scene = buildScene(320, 240, 4);
  const matter = await createMatter({ prior: 'selfie' });
  const r = await matter.matte({ image: scene.image });
  assert.equal(r.report.plate.given, false);
  assert.deepEqual(Array.from(r.alpha.data.slice(0, 50)), Array.from(r.prior.data.slice(0, 50)));
});
