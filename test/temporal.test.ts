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
