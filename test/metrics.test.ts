import assert from 'node:assert/strict';
import { test } from 'node:test';
import { conn, dtSSD, grad, mad, mseIn, sad, alphaMetrics } from '../src/eval/metrics.js';
import type { Plane } from '../src/image.js';

const plane = (w: number, h: number, values: number[]): Plane => ({ width: w, height: h, channels: 1, data: Float32Array.from(values) });

test('SAD, MSE and MAD match hand-computed values on a 2x2 matte', () => {
  const gt = plane(2, 2, [0, 1, 0.5, 0.25]);
  const pred = plane(2, 2, [0.1, 0.8, 0.5, 0.75]);
  // |errors| = 0.1, 0.2, 0, 0.5 -> sum 0.8; squares 0.01, 0.04, 0, 0.25 -> sum 0.3
  assert.ok(Math.abs(sad(pred, gt) - 0.8 / 1000) < 1e-9);
  assert.ok(Math.abs(mad(pred, gt) - (0.8 / 4) * 1e3) < 1e-4);
  assert.ok(Math.abs(mseIn(pred, gt) - (0.3 / 4) * 1e3) < 1e-4);
  const unknown = plane(2, 2, [0, 1, 0, 1]); // only pixels 1 and 3
  assert.ok(Math.abs(sad(pred, gt, unknown) - 0.7 / 1000) < 1e-9);
  assert.ok(Math.abs(mseIn(pred, gt, unknown) - (0.29 / 2) * 1e3) < 1e-4);
});

test('a perfect prediction scores zero on every metric', () => {
  const gt = plane(8, 8, Array.from({ length: 64 }, (_, i) => (i % 8) / 7));
  const m = alphaMetrics(gt, gt);
  for (const [k, v] of Object.entries(m)) assert.equal(v, 0, k);
});

test('connectivity error: an isolated blob costs its disconnected alpha', () => {
  // Ground truth: one opaque pixel at (0,0). Prediction adds an opaque pixel at (2,2), not connected.
  const gt = plane(3, 3, [1, 0, 0, 0, 0, 0, 0, 0, 0]);
  const pred = plane(3, 3, [1, 0, 0, 0, 0, 0, 0, 0, 1]);
  // At (2,2): pred >= t only, so never in Omega(both) -> l = 0, d_pred = 1 -> phi_pred = 0;
  // d_gt = 0 -> phi_gt = 1. Every other pixel agrees. Conn = 1 / 1000.
  assert.ok(Math.abs(conn(pred, gt) - 1 / 1000) < 1e-9);
});

test('gradient error grows when the prediction is blurrier than the ground truth', () => {
  const w = 16, h = 16;
  const step = plane(w, h, Array.from({ length: w * h }, (_, i) => ((i % w) >= 8 ? 1 : 0)));
  const ramp = plane(w, h, Array.from({ length: w * h }, (_, i) => Math.min(1, Math.max(0, ((i % w) - 4) / 8))));
  assert.equal(grad(step, step), 0);
  assert.ok(grad(ramp, step) > 0);
});

test('dtSSD is zero for a sequence that changes exactly like the ground truth and matches a hand value otherwise', () => {
  const a = [plane(2, 1, [0, 0]), plane(2, 1, [0.5, 0])];
  assert.equal(dtSSD(a, a), 0);
  const flicker = [plane(2, 1, [0, 0]), plane(2, 1, [0.5, 0.2])];
  // differences of changes: (0.5-0.5)=0 and (0.2-0)=0.2 -> sqrt(0.04/2)*100
  assert.ok(Math.abs(dtSSD(flicker, a) - Math.sqrt(0.02) * 100) < 1e-4);
});
