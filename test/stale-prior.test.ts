/**
 * A prior computed a few frames back (the live app's person model is slower than the camera): where
 * the subject has left since, it must not keep the background beside them (prior/stale.ts).
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { loadCv } from '../src/cv.js';
import { buildScene } from '../src/demo/scene.js';
import { createImage, createPlane, type ImageF32, type Plane } from '../src/image.js';
import { ClassicEngine } from '../src/matte/classic.js';
import { resize } from '../src/ops.js';
import { clearLeft, leftSince, staleGridImage, staleGridSize } from '../src/prior/stale.js';

before(async () => { await loadCv(); });

const width = 640, height = 360;

/** The demo subject shifted right by dx over the scene's background (the live test clip's frames). */
function frame(scene: ReturnType<typeof buildScene>, dx: number, tint = 1): { image: ImageF32; alpha: Plane } {
  const image = createImage(width, height, 3), alpha = createPlane(width, height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const p = y * width + x, sx = x - dx, q = y * width + sx;
    const a = sx >= 0 && sx < width ? scene.alpha.data[q]! : 0;
    alpha.data[p] = a;
    for (let c = 0; c < 3; c++) image.data[p * 3 + c] = a * (a > 0 ? tint * scene.foreground.data[q * 3 + c]! : 0) + (1 - a) * scene.background.data[p * 3 + c]!;
  }
  return { image, alpha };
}

/** Shares of the true background the matte keeps (alpha > 0.05) and of the opaque subject it loses (alpha < 0.9). */
function errors(alpha: Plane, truth: Plane): { kept: number; lost: number } {
  let bg = 0, kept = 0, fg = 0, lost = 0;
  for (let p = 0; p < truth.data.length; p++) {
    if (truth.data[p] === 0) { bg++; if (alpha.data[p]! > 0.05) kept++; }
    else if (truth.data[p]! > 0.99) { fg++; if (alpha.data[p]! < 0.9) lost++; }
  }
  return { kept: kept / bg, lost: lost / fg };
}

test('a prior from a frame where the subject stood 48 px to the right: cleared where they left, the background is not kept', async () => {
  const scene = buildScene(width, height, 5, 150);
  const now = frame(scene, 0), then = frame(scene, 48);
  const engine = new ClassicEngine({ workLongSide: 320, refineRadius: 0 }); // the live app's engine
  const plateValid = createPlane(width, height, 1);
  const matte = async (prior: Plane) => (await engine.matte({ image: now.image, plate: scene.background, plateValid, prior, realign: false })).alpha;
  // The prior worker's grid is not the stale grid: clearLeft resizes between them.
  const staleSmall = resize(then.alpha, 256, 144);
  const left = leftSince(staleGridImage(then.image), staleGridImage(now.image), staleGridImage(scene.background), staleSmall);
  assert.ok(left, 'the subject moved: something to clear');
  const own = errors(await matte(resize(resize(now.alpha, 256, 144), width, height)), now.alpha);
  const stale = errors(await matte(resize(staleSmall, width, height)), now.alpha);
  const cleared = errors(await matte(resize(clearLeft(staleSmall, left), width, height)), now.alpha);
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  console.log(`background kept: own prior ${pct(own.kept)}, stale ${pct(stale.kept)}, stale cleared ${pct(cleared.kept)}; subject lost: ${pct(own.lost)}, ${pct(stale.lost)}, ${pct(cleared.lost)}`);
  assert.ok(stale.kept > 0.03, `the stale prior keeps background (${pct(stale.kept)}): the case this guards against`);
  assert.ok(cleared.kept < 1.5 * own.kept + 0.002, `cleared: ${pct(cleared.kept)} of the background kept, the frame's own prior ${pct(own.kept)}`);
  assert.ok(cleared.lost <= stale.lost + 0.001, `clearing loses no subject (${pct(cleared.lost)} vs ${pct(stale.lost)})`);
});

test('where the subject changes within itself the prior stays (the matte too), and with nothing moved it is untouched', async () => {
  const scene = buildScene(width, height, 5, 150);
  const plate = staleGridImage(scene.background);
  const still = frame(scene, 0);
  // Nothing moved (the same frame): nothing to clear.
  const priorSmall = resize(still.alpha, 256, 144);
  assert.equal(leftSince(staleGridImage(still.image), staleGridImage(still.image), plate, priorSmall), undefined);
  // The subject darkened (turned, the light on them changed): changed, but it does not show the
  // plate, except in a few places where the subject's colour is the wall's: islands inside them.
  const darker = frame(scene, 0, 0.6);
  const left = leftSince(staleGridImage(darker.image), staleGridImage(still.image), plate, priorSmall);
  const size = staleGridSize(width, height);
  const grid = resize(still.alpha, size.width, size.height);
  let inside = 0, clearedInside = 0;
  for (let p = 0; p < grid.data.length; p++) {
    if (grid.data[p]! > 0.99) { inside++; if (left && left.data[p]! > 0) clearedInside++; }
  }
  assert.ok(inside > 500, `${inside} grid pixels inside the subject`);
  assert.ok(clearedInside < 0.005 * inside, `${clearedInside} of ${inside} pixels inside the subject cleared`);
  // Where it does clear, the plate difference and the silhouette keep the subject: the matte loses nothing.
  const engine = new ClassicEngine({ workLongSide: 320, refineRadius: 0 });
  const matte = async (prior: Plane) => (await engine.matte({ image: still.image, plate: scene.background, plateValid: createPlane(width, height, 1), prior, realign: false })).alpha;
  const kept = errors(await matte(resize(priorSmall, width, height)), still.alpha);
  const cleared = left ? errors(await matte(resize(clearLeft(priorSmall, left), width, height)), still.alpha) : kept;
  assert.ok(cleared.lost <= kept.lost + 0.0005 && cleared.kept <= kept.kept + 0.0005, `matte with the cleared prior ${JSON.stringify(cleared)}, with the prior ${JSON.stringify(kept)}`);
  // The grids must match.
  assert.throws(() => leftSince(plate, staleGridImage(resize(still.image, 320, 240)), plate, priorSmall), /grids differ/);
});
