import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyColour, fitColour } from '../src/align/colour.js';
import { coverage, estimateAlignment, invert3, warpPlate } from '../src/align/homography.js';
import { realignEdges } from '../src/align/residue.js';
import { cv, loadCv, planeFromMatU8 } from '../src/cv.js';
import { buildScene, gaussian, rng } from '../src/demo/scene.js';
import { createImage, createPlane, type ImageF32 } from '../src/image.js';

function project(h: number[], x: number, y: number): [number, number] {
  const w = h[6]! * x + h[7]! * y + h[8]!;
  return [(h[0]! * x + h[1]! * y + h[2]!) / w, (h[3]! * x + h[4]! * y + h[5]!) / w];
}

/** Largest distance (px) between where two homographies put the corners and centre of a 640x480 frame (inset). */
function worstPointError(h: number[], truth: number[]): number {
  let worst = 0;
  for (const [x, y] of [[80, 60], [560, 60], [560, 420], [80, 420], [320, 240]] as [number, number][]) {
    const [ax, ay] = project(h, x, y), [bx, by] = project(truth, x, y);
    worst = Math.max(worst, Math.hypot(ax - bx, ay - by));
  }
  return worst;
}

test('a known homography between plate and image is recovered within 0.05 px (tracked corners refine the ORB fit)', async () => {
  await loadCv();
  const { background } = buildScene(640, 480, 3);
  // image = plate seen by a camera that moved: a small rotation, zoom, shift and perspective.
  const truth = [1.01, -0.012, 6.3, 0.011, 0.995, -4.1, 1.5e-5, -1e-5, 1];
  const { warped: image } = warpPlate(background, truth, 640, 480);
  const report = estimateAlignment(image, background, undefined, 'auto');
  assert.equal(report.method, 'homography', report.fallback ?? '');
  const worst = worstPointError(report.homography, truth);
  assert.ok(report.flow?.used, JSON.stringify(report.flow));
  assert.ok(worst < 0.05, `corner error ${worst.toFixed(3)} px`);
  assert.ok(invert3(report.homography));
});

test('a warped plate\'s coverage is exactly OpenCV\'s nearest-neighbour warp of a constant image, for any homography', async () => {
  await loadCv();
  const c = cv();
  const opencv = (h: number[], pw: number, ph: number, w: number, hh: number) => {
    const m = c.matFromArray(3, 3, c.CV_64FC1, h), ones = new c.Mat(ph, pw, c.CV_8UC1, new c.Scalar(255)), out = new c.Mat();
    try {
      c.warpPerspective(ones, out, m, new c.Size(w, hh), c.INTER_NEAREST, c.BORDER_CONSTANT, new c.Scalar(0));
      return planeFromMatU8(out);
    } finally { m.delete(); ones.delete(); out.delete(); }
  };
  const random = rng(5);
  const homographies = [
    [1, 0, 0, 0, 1, 0, 0, 0, 1],
    [1, 0, 2.5, 0, 1, 3.5, 0, 0, 1], // half-pixel shifts: rounding half to even decides the last column and row of an odd-sized plate
    [0.5, 0, 10, 0, 0.5, 10, 0, 0, 1], // a plate smaller than the image: a run inside each row
    [2, 0, -100, 0, 2, -50, 0, 0, 1],
    [1, 0, 0, 0, 1, 0, 0, -0.004, 1], // the projective denominator changes sign inside the image
    [1, 0.3, 0, 0.2, 1, 0, 0.001, 0.002, 1],
  ];
  for (let k = 0; k < 20; k++) {
    homographies.push([1 + (random() - 0.5) * 0.1, (random() - 0.5) * 0.1, (random() - 0.5) * 40, (random() - 0.5) * 0.1, 1 + (random() - 0.5) * 0.1, (random() - 0.5) * 40, (random() - 0.5) * 2e-4, (random() - 0.5) * 2e-4, 1]);
  }
  for (const [pw, ph, w, hh] of [[200, 150, 200, 150], [333, 191, 340, 200], [333, 190, 300, 211]] as const) {
    for (const h of homographies) {
      const want = opencv(h, pw, ph, w, hh), got = coverage(h, pw, ph, w, hh);
      let differ = 0;
      for (let i = 0; i < want.data.length; i++) if (want.data[i] !== got.data[i]) differ++;
      assert.equal(differ, 0, `${pw}x${ph} → ${w}x${hh} by [${h.join(', ')}]: ${differ} pixels differ`);
    }
  }
  assert.equal(coverage([1, 0, 0, 0, 1, 0, 0, 0, 0], 10, 10, 10, 10).data.every((v) => v === 0), true, 'a singular homography covers nothing');
});

test('a featureless plate never throws: identity with the reason in the report', async () => {
  await loadCv();
  const flat = createImage(320, 240, 3, 0.5);
  const report = estimateAlignment(flat, flat, undefined, 'auto');
  assert.equal(report.method, 'identity');
  assert.match(report.fallback ?? '', /feature matches/);
  assert.equal(estimateAlignment(flat, flat, undefined, 'none').method, 'identity');
});

test('a known per-channel gain and bias are recovered even with a subject covering half the region', async () => {
  await loadCv();
  const random = rng(5);
  const w = 200, h = 150;
  const plate = createImage(w, h, 3), image = createImage(w, h, 3);
  const gain = [1.12, 0.93, 1.05], bias = [-0.04, 0.03, 0.01];
  for (let p = 0; p < w * h; p++) for (let c = 0; c < 3; c++) {
    const b = 0.2 + 0.6 * random();
    plate.data[p * 3 + c] = b;
    const subject = p % w < w / 2; // left half: something else entirely
    image.data[p * 3 + c] = subject ? random() : gain[c]! * b + bias[c]! + 0.005 * gaussian(random);
  }
  const report = fitColour(image, plate, createPlane(w, h, 1));
  assert.ok(report.applied, report.reason ?? '');
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(report.gain[c]! - gain[c]!) < 0.02, `gain ${c}: ${report.gain[c]}`);
    assert.ok(Math.abs(report.bias[c]! - bias[c]!) < 0.015, `bias ${c}: ${report.bias[c]}`);
  }
  assert.ok(report.residualAfter < report.residualBefore);
  const corrected = applyColour(plate, report);
  assert.ok(Math.abs(corrected.data[(10 * w + 150) * 3]! - image.data[(10 * w + 150) * 3]!) < 0.03);
});

test('a colour fit that would not help is refused', async () => {
  await loadCv();
  const random = rng(9);
  const w = 100, h = 100;
  const image = createImage(w, h, 3), plate = createImage(w, h, 3);
  for (let i = 0; i < image.data.length; i++) { image.data[i] = random(); plate.data[i] = random(); }
  const report = fitColour(image, plate, createPlane(w, h, 1));
  assert.equal(report.applied, false);
  assert.deepEqual(report.gain, [1, 1, 1]);
});

/**
 * A plate warped by a known homography (the image) and the previous frame's fit, off by a pixel
 * and a bit of rotation: what a video's tracker starts from.
 */
async function trackingScene() {
  await loadCv();
  const { trackPlate } = await import('../src/photo.js');
  const { background } = buildScene(640, 480, 3);
  const truth = [1.01, -0.012, 6.3, 0.011, 0.995, -4.1, 1.5e-5, -1e-5, 1];
  const { warped: image } = warpPlate(background, truth, 640, 480);
  const previous = [1.0095, -0.0105, 5.2, 0.0102, 0.9955, -3.3, 1.5e-5, -1e-5, 1];
  return { trackPlate, background, truth, image, previous };
}

test('tracking from the previous frame\'s fit: a few hundred corners recover the homography within 0.05 px', async () => {
  const { trackPlate, background, truth, image, previous } = await trackingScene();
  const report = trackPlate(image, background, undefined, 'auto', previous);
  assert.equal(report.tracked, true, JSON.stringify(report.flow));
  assert.ok((report.flow?.points ?? 0) <= 500, `${report.flow?.points} corners`);
  const worst = worstPointError(report.homography, truth);
  assert.ok(worst < 0.05, `corner error ${worst.toFixed(3)} px`);
});

test('tracking with a subject in the frame: the plate\'s corners that land on it are left out, the fit stays within 0.05 px', async () => {
  const { trackPlate, background, truth, image, previous } = await trackingScene();
  // A subject over the left third that shows the background's own texture 9 px off (a worst
  // case: its corners track cleanly, forward and back, to the wrong place).
  const subject = createPlane(640, 480);
  const original = image.data.slice();
  for (let y = 60; y < 460; y++) for (let x = 20; x < 230; x++) {
    const p = y * 640 + x, q = (y + 4) * 640 + x + 8;
    subject.data[p] = 1;
    for (let c = 0; c < 3; c++) image.data[p * 3 + c] = original[q * 3 + c]!;
  }
  const report = trackPlate(image, background, subject, 'auto', previous);
  assert.equal(report.tracked, true, JSON.stringify(report.flow));
  // The few hundred corners asked for are all off the subject (those on it are not picked, rather
  // than picked and dropped), and they fit.
  assert.ok(report.flow && report.flow.points >= 450 && report.flow.points <= 500, JSON.stringify(report.flow));
  assert.ok(report.flow.inliers >= 0.9 * report.flow.points, JSON.stringify(report.flow));
  const worst = worstPointError(report.homography, truth);
  assert.ok(worst < 0.05, `corner error ${worst.toFixed(3)} px`);
});

test('matchPlate corrects a warp it was handed in place, and never writes into the caller\'s own plate', async () => {
  await loadCv();
  const { matchPlate, placePlate } = await import('../src/photo.js');
  const { background: plate } = buildScene(160, 120, 5);
  const image = plate; // the image only fills what the plate does not cover
  const before = plate.data.slice();
  const colour = { applied: true, gain: [1.1, 0.9, 1.05] as [number, number, number], bias: [0.01, -0.02, 0] as [number, number, number], residualBefore: 0, residualAfter: 0, pixels: 1 };
  // The plate as it is (identity): the caller's buffer, corrected into a new one.
  const kept = placePlate(image, plate, [1, 0, 0, 0, 1, 0, 0, 0, 1]);
  assert.equal(kept.warped, plate);
  const fromKept = matchPlate(image, kept, undefined, colour);
  assert.notEqual(fromKept.plate, plate);
  assert.deepEqual(plate.data, before, 'the caller\'s plate is unchanged');
  // A warp made for the placement: corrected in place, the same values as a copy would get.
  const warped = placePlate(image, plate, [1, 0, 1.5, 0, 1, -2, 0, 0, 1]);
  assert.equal(warped.owned, true);
  const copy = applyColour(warped.warped, colour);
  const fromWarp = matchPlate(image, warped, undefined, colour);
  assert.equal(fromWarp.plate, warped.warped);
  let same = 0;
  for (let p = 0; p < 160 * 120; p++) if (warped.valid.data[p]! >= 0.5 && [0, 1, 2].every((c) => fromWarp.plate.data[p * 3 + c] === copy.data[p * 3 + c])) same++;
  assert.ok(same > 0.9 * 160 * 120, `${same} covered pixels as corrected on a copy`);
  assert.deepEqual(plate.data, before, 'the caller\'s plate is still unchanged');
});

/**
 * The re-alignment's rule (align/residue.ts) searched exhaustively: every candidate's whole 3x3
 * block, every half step, no early stops. The shift each pixel takes, (0, 0) where it keeps its
 * plate pixel.
 */
function exhaustiveShifts(image: ImageF32, plate: ImageF32): { dx: Float64Array; dy: Float64Array } {
  const { width: w, height: h } = image, a = image.data, b = plate.data;
  const RADIUS = 2, EDGE = 0.06, GAIN = 0.5, EXPLAINED = 0.04;
  const clamp = (v: number, hi: number) => Math.min(hi, Math.max(0, v));
  const grey = new Float32Array(w * h);
  for (let p = 0; p < w * h; p++) grey[p] = 0.299 * b[p * 3]! + 0.587 * b[p * 3 + 1]! + 0.114 * b[p * 3 + 2]!;
  const edge = new Uint8Array(w * h);
  for (let y = 1; y < h - 1; y++) for (let x = 1; x < w - 1; x++) {
    const p = y * w + x;
    if (Math.abs(grey[p + 1]! - grey[p - 1]!) > EDGE || Math.abs(grey[p + w]! - grey[p - w]!) > EDGE) edge[p] = 1;
  }
  const r = RADIUS + 1;
  const near = (x: number, y: number) => {
    for (let v = Math.max(0, y - r); v <= Math.min(h - 1, y + r); v++) for (let u = Math.max(0, x - r); u <= Math.min(w - 1, x + r); u++) if (edge[v * w + u]) return true;
    return false;
  };
  const pixelDiff = (p: number, q: number) => (Math.abs(a[p * 3]! - b[q * 3]!) + Math.abs(a[p * 3 + 1]! - b[q * 3 + 1]!) + Math.abs(a[p * 3 + 2]! - b[q * 3 + 2]!)) / 3;
  const sampled = (q: number, x: number, y: number) => {
    const u = clamp(x, w - 1), v = clamp(y, h - 1), u0 = Math.floor(u), v0 = Math.floor(v), u1 = Math.min(w - 1, u0 + 1), v1 = Math.min(h - 1, v0 + 1), fu = u - u0, fv = v - v0;
    let sum = 0;
    for (let c = 0; c < 3; c++) sum += Math.abs(a[q * 3 + c]! - ((1 - fv) * ((1 - fu) * b[(v0 * w + u0) * 3 + c]! + fu * b[(v0 * w + u1) * 3 + c]!) + fv * ((1 - fu) * b[(v1 * w + u0) * 3 + c]! + fu * b[(v1 * w + u1) * 3 + c]!)));
    return sum;
  };
  const block = (x: number, y: number, dx: number, dy: number) => {
    let sum = 0;
    for (let oy = -1; oy <= 1; oy++) for (let ox = -1; ox <= 1; ox++) {
      const yy = clamp(y + oy, h - 1), xx = clamp(x + ox, w - 1), q = yy * w + xx;
      sum += Number.isInteger(dx) && Number.isInteger(dy) ? pixelDiff(q, clamp(yy + dy, h - 1) * w + clamp(xx + dx, w - 1)) : sampled(q, xx + dx, yy + dy) / 3;
    }
    return sum / 9;
  };
  const dxs = new Float64Array(w * h), dys = new Float64Array(w * h);
  for (let y = 1; y < h - 1; y++) for (let x = 1; x < w - 1; x++) {
    const p = y * w + x;
    if (!near(x, y) || pixelDiff(p, p) < EXPLAINED) continue;
    const candidates: [number, number][] = [];
    for (let dy = -RADIUS; dy <= RADIUS; dy++) for (let dx = -RADIUS; dx <= RADIUS; dx++) {
      if ((dx || dy) && pixelDiff(p, clamp(y + dy, h - 1) * w + clamp(x + dx, w - 1)) < EXPLAINED) candidates.push([dx, dy]);
    }
    if (!candidates.length) continue;
    const limit = Math.min(block(x, y, 0, 0) * GAIN, EXPLAINED);
    let best = Infinity, bx = 0, by = 0;
    for (const [dx, dy] of candidates) { const m = block(x, y, dx, dy); if (m < best) { best = m; bx = dx; by = dy; } }
    if (best >= limit) {
      const cx = bx, cy = by;
      for (const [hx, hy] of [[-0.5, -0.5], [0, -0.5], [0.5, -0.5], [-0.5, 0], [0.5, 0], [-0.5, 0.5], [0, 0.5], [0.5, 0.5]] as const) {
        const m = block(x, y, cx + hx, cy + hy);
        if (m < best) { best = m; bx = cx + hx; by = cy + hy; }
      }
    }
    if (best < limit) { dxs[p] = bx; dys[p] = by; }
  }
  return { dx: dxs, dy: dys };
}

test('the re-alignment\'s block search, which stops a block as soon as it cannot win, takes the shift an exhaustive search takes at every pixel, half steps included', async () => {
  await loadCv();
  const scene = buildScene(240, 180, 11, 120);
  // Plates off by half a pixel (the mean of the plate and the plate moved by one) and by a pixel and a half.
  for (const [mx, my] of [[1, 0], [1, 2]] as const) {
    const { width: w, height: h } = scene.plate;
    const plate = createImage(w, h, 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const p = y * w + x, q = Math.min(h - 1, y + my) * w + Math.min(w - 1, x + mx);
      for (let c = 0; c < 3; c++) plate.data[p * 3 + c] = 0.5 * (scene.plate.data[p * 3 + c]! + scene.plate.data[q * 3 + c]!);
    }
    const { shifts, report } = realignEdges(scene.image, plate);
    const truth = exhaustiveShifts(scene.image, plate);
    let moved = 0, halves = 0;
    for (let p = 0; p < w * h; p++) {
      const dx = shifts?.dx[p] ?? 0, dy = shifts?.dy[p] ?? 0;
      assert.deepEqual([dx, dy], [truth.dx[p], truth.dy[p]], `pixel ${p % w},${Math.floor(p / w)} (plate off by ${mx / 2},${my / 2})`);
      if (dx || dy) moved++;
      if (!Number.isInteger(dx) || !Number.isInteger(dy)) halves++;
    }
    assert.equal(report.realigned, moved);
    assert.ok(moved > 200 && halves > 100, `${moved} pixels re-aligned, ${halves} by half steps`);
  }
});
