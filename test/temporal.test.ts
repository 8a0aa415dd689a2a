import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type { ColourReport } from '../src/align/colour.js';
import { loadCv } from '../src/cv.js';
import { BoxSmoother, medianColour, medianHomography } from '../src/video/temporal.js';

before(async () => { await loadCv(); });

const shift = (dx: number, dy: number) => [1, 0, dx, 0, 1, dy, 0, 0, 1];

test('median homography ignores one wild fit in the window', () => {
  const h = medianHomography([shift(2, 1), shift(2.2, 1.1), shift(40, -30), shift(1.8, 0.9), shift(2.1, 1)], 640, 480);
  assert.ok(Math.abs(h[2]! - 2.05) < 0.11 && Math.abs(h[5]! - 1) < 0.11, `translation ${h[2]}, ${h[5]}`);
  assert.ok(Math.abs(h[0]! - 1) < 1e-6 && Math.abs(h[6]!) < 1e-9, 'still a pure translation');
});

test('the crop box holds still while the subject jitters inside it, and follows when it leaves', () => {
  const smoother = new BoxSmoother();
  const at = (x: number) => ({ x, y: 10, width: 100, height: 100 });
  const first = smoother.next([at(50), at(51), at(50)], 640, 480);
  assert.deepEqual(smoother.next([at(51), at(50), at(51)], 640, 480), first, 'a one-pixel jitter does not move the box');
  const moved = smoother.next([at(90), at(92), at(94)], 640, 480);
  assert.equal(moved.x, 92, 'a real move is followed');
});

test('median colour of sampled frames, and no correction when most frames did not want one', () => {
  const report = (gain: number, applied = true): ColourReport => ({ applied, gain: [gain, gain, gain], bias: [0, 0, 0], residualBefore: 0.1, residualAfter: 0.05, pixels: 100 });
  const m = medianColour([report(1.1), report(1.2), report(3), report(1.15)])!;
  assert.ok(m.applied && Math.abs(m.gain[0] - 1.175) < 1e-9, `gain ${m.gain[0]}`);
  assert.equal(medianColour([report(1.1, false), report(1.2, false), report(1.3)])!.applied, false);
});

test('the stabiliser looks only around either frame\'s alpha and gives the whole-frame result', async () => {
  const { AlphaStabiliser } = await import('../src/video/temporal.js');
  const { createImage, createPlane } = await import('../src/image.js');
  const { boxMean } = await import('../src/ops.js');
  const width = 90, height = 60;
  const frame = (t: number) => {
    const image = createImage(width, height, 3), alpha = createPlane(width, height), fg = createImage(width, height, 3);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
      const p = y * width + x;
      for (let c = 0; c < 3; c++) image.data[p * 3 + c] = 0.5 + 0.3 * Math.sin((x + c * 7) / 5 + y / 9) + (x > 40 ? 0.004 * Math.sin(t * 13 + p) : 0.2 * t);
      const a = Math.min(1, Math.max(0, (12 - Math.hypot(x - 52 - t, y - 30)) / 4));
      alpha.data[p] = a + (a > 0 && a < 1 ? 0.05 * Math.sin(t + p) : 0);
      for (let c = 0; c < 3; c++) fg.data[p * 3 + c] = a > 0 ? image.data[p * 3 + c]! : 0;
    }
    return { image, alpha, fg };
  };
  // The whole-frame rule, written out: weight keep·(1 − smoothstep) of the local mean change.
  const reference = (prev: ReturnType<typeof frame>, cur: ReturnType<typeof frame>) => {
    const change = createPlane(width, height);
    for (let p = 0; p < width * height; p++) { let d = 0; for (let c = 0; c < 3; c++) d += Math.abs(cur.image.data[p * 3 + c]! - prev.image.data[p * 3 + c]!); change.data[p] = d / 3; }
    const local = boxMean(change, 2);
    const alpha = Float32Array.from(cur.alpha.data);
    for (let p = 0; p < alpha.length; p++) {
      const t = Math.min(1, Math.max(0, (local.data[p]! - 0.012) / (0.04 - 0.012)));
      alpha[p] = alpha[p]! + 0.6 * (1 - t * t * (3 - 2 * t)) * (prev.alpha.data[p]! - alpha[p]!);
    }
    return alpha;
  };
  const stabiliser = new AlphaStabiliser();
  const f0 = frame(0), f1 = frame(1);
  stabiliser.apply(f0.image, f0.alpha, f0.fg);
  const expected = reference(f0, f1);
  stabiliser.apply(f1.image, f1.alpha, f1.fg);
  let worst = 0, kept = 0;
  for (let p = 0; p < expected.length; p++) {
    worst = Math.max(worst, Math.abs(expected[p]! - f1.alpha.data[p]!));
    if (Math.abs(f1.alpha.data[p]! - frame(1).alpha.data[p]!) > 1e-4) kept++;
  }
  assert.ok(worst < 1e-6, `largest difference from the whole-frame rule: ${worst}`);
  assert.ok(kept > 50, `the still half kept some of the previous alpha (${kept} pixels)`);
  // A looser rectangle than alpha's support (an engine's MatteOutput.support) gives the same frames.
  const loose = new AlphaStabiliser(), tight = new AlphaStabiliser();
  for (let t = 0; t < 4; t++) {
    const a = frame(t), b = frame(t);
    loose.apply(a.image, a.alpha, a.fg, [20, 5, 85, 58]);
    tight.apply(b.image, b.alpha, b.fg);
    assert.deepEqual(a.alpha.data, b.alpha.data, `frame ${t}: alpha`);
    assert.deepEqual(a.fg.data, b.fg.data, `frame ${t}: foreground`);
  }
});

test('the stabiliser keeps its own copy of a frame\'s alpha and foreground: their buffers may be reused for the next frame', async () => {
  const { AlphaStabiliser } = await import('../src/video/temporal.js');
  const { createImage, createPlane } = await import('../src/image.js');
  const width = 80, height = 50;
  // A disc that moves and shrinks (the kept rectangle must be cleared where the subject left).
  const frame = (t: number) => {
    const image = createImage(width, height, 3), alpha = createPlane(width, height), fg = createImage(width, height, 3);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
      const p = y * width + x;
      for (let c = 0; c < 3; c++) image.data[p * 3 + c] = 0.5 + 0.3 * Math.sin((x + c * 7) / 5 + y / 9) + (x > 45 ? 0.003 * Math.sin(t * 13 + p) : 0.2 * t);
      const a = Math.min(1, Math.max(0, (14 - 3 * t - Math.hypot(x - 50 + 2 * t, y - 25)) / 4));
      alpha.data[p] = a;
      for (let c = 0; c < 3; c++) fg.data[p * 3 + c] = a > 0 ? 0.2 + 0.1 * c + 0.01 * t : 0;
    }
    return { image, alpha, fg };
  };
  const untouched = new AlphaStabiliser(), reused = new AlphaStabiliser();
  let changed = 0;
  for (let t = 0; t < 4; t++) {
    const a = frame(t), b = frame(t);
    untouched.apply(a.image, a.alpha, a.fg);
    reused.apply(b.image, b.alpha, b.fg);
    assert.deepEqual(b.alpha.data, a.alpha.data, `alpha of frame ${t}`);
    assert.deepEqual(b.fg.data, a.fg.data, `foreground of frame ${t}`);
    if (t > 0) for (let p = 0; p < width * height; p++) if (a.alpha.data[p] !== frame(t).alpha.data[p]) changed++;
    // The caller's next frame overwrites these buffers (a scratch arena's reset).
    b.alpha.data.fill(0.5); b.fg.data.fill(0.9);
  }
  assert.ok(changed > 100, `the stabiliser blended in earlier frames (${changed} pixels), else this shows nothing`);
});
