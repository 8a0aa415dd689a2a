import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadCv } from '../src/cv.js';
import { buildScene } from '../src/demo/scene.js';
import { alphaMetrics } from '../src/eval/metrics.js';
import { createImage, createPlane, type Plane } from '../src/image.js';
import { createMatter } from '../src/pipeline.js';
import { bandTiles, packTiles, refineTiles, REFINER_CHANNELS, type BandFeatures, type BandRefiner } from '../src/matte/refine.js';

function features(width: number, height: number): BandFeatures {
  const image = createImage(width, height, 3), plate = createImage(width, height, 3), fHat = createImage(width, height, 3);
  const alpha = createPlane(width, height), fallback = createPlane(width, height), band = createPlane(width, height);
  for (let p = 0; p < width * height; p++) {
    const x = p % width, y = Math.floor(p / width);
    for (let c = 0; c < 3; c++) { image.data[p * 3 + c] = ((x * 7 + y * 3 + c) % 11) / 10; plate.data[p * 3 + c] = c / 3; }
    const r = Math.hypot(x - width / 2, y - height / 2);
    alpha.data[p] = r < 20 ? 1 : 0;
    if (Math.abs(r - 20) < 4) { band.data[p] = 1; alpha.data[p] = 0.5; fallback.data[p] = 0.3; for (let c = 0; c < 3; c++) fHat.data[p * 3 + c] = 0.9; }
  }
  return { image, plate, alpha, fHat, fallback, band };
}

test('band tiles: every band pixel is in a tile, tiles without band pixels are skipped', () => {
  const f = features(100, 70);
  const grid = bandTiles(f.band, 16, 8);
  const covered = createPlane(100, 70);
  for (let k = 0; k < grid.origins.length; k += 2) {
    for (let y = grid.origins[k + 1]!; y < Math.min(70, grid.origins[k + 1]! + 16); y++) for (let x = grid.origins[k]!; x < Math.min(100, grid.origins[k]! + 16); x++) covered.data[y * 100 + x] = 1;
  }
  for (let p = 0; p < 100 * 70; p++) if (f.band.data[p]! > 0.5) assert.equal(covered.data[p], 1);
  assert.ok(grid.origins.length / 2 < Math.ceil(100 / 16) * Math.ceil(70 / 16), 'tiles away from the band are left out');
});

test('tiles carry the 12 channels with context, zero beyond the image', () => {
  const f = features(64, 48);
  const grid = bandTiles(f.band, 16, 4);
  const side = 24, plane = side * side;
  const x = packTiles(f, grid, 0, 1);
  assert.equal(x.length, REFINER_CHANNELS.length * plane);
  const ox = grid.origins[0]! - 4, oy = grid.origins[1]! - 4;
  for (let v = 0; v < side; v++) for (let u = 0; u < side; u++) {
    const px = ox + u, py = oy + v, o = v * side + u;
    if (px < 0 || py < 0 || px >= 64 || py >= 48) { for (let c = 0; c < 12; c++) assert.equal(x[c * plane + o], 0); continue; }
    const p = py * 64 + px;
    assert.equal(x[o], f.image.data[p * 3]);
    assert.equal(x[6 * plane + o], f.alpha.data[p]);
    assert.equal(x[9 * plane + o], f.fHat.data[p * 3 + 2]);
    assert.equal(x[11 * plane + o], f.band.data[p]);
  }
});

test('a tile model changes band pixels only, each exactly once', async () => {
  const f = features(90, 80);
  let calls = 0;
  // A "model" that answers 0.25 + the band channel's value at every pixel of every tile.
  const { alpha, tiles } = await refineTiles(f, 16, 8, 5, async (input, count, side) => {
    calls++;
    const plane = side * side, out = new Float32Array(count * plane);
    for (let n = 0; n < count; n++) for (let i = 0; i < plane; i++) out[n * plane + i] = 0.25 + input[(n * 12 + 11) * plane + i]! * 0.5;
    return out;
  });
  assert.equal(calls, Math.ceil(tiles / 5));
  for (let p = 0; p < alpha.data.length; p++) assert.equal(alpha.data[p], f.band.data[p]! > 0.5 ? 0.75 : f.alpha.data[p]);
});

test('the refined engine: the shipped refiner runs in the classic band path and changes nothing outside the band', async () => {
  await loadCv();
  const scene = buildScene(320, 240, 5, 120);
  let seen: BandFeatures | undefined;
  let result: Plane | undefined;
  const shipped = await createMatter({ prior: 'none', engine: 'refined' });
  const refined = await shipped.matte({ image: scene.image, plate: scene.plate });
  assert.equal(refined.report.engine, 'refined');
  assert.match(String(refined.report.engineDetails.refiner), /^refiner-/);
  // The same run with a recording refiner gives classic's alpha and the band it was refined in.
  const spy: BandRefiner = { name: 'spy', refine: async (f) => { seen = f; result = f.alpha; return f.alpha; } };
  const recorded = await createMatter({ prior: 'none', engine: 'refined', refiner: spy });
  await recorded.matte({ image: scene.image, plate: scene.plate });
  const classic = await (await createMatter({ prior: 'none', engine: 'classic' })).matte({ image: scene.image, plate: scene.plate });
  assert.ok(seen && result);
  let changed = 0;
  for (let p = 0; p < classic.alpha.data.length; p++) {
    assert.equal(result!.data[p], classic.alpha.data[p], 'the recorder sees classic alpha');
    if (seen!.band.data[p]! <= 0.5) assert.equal(refined.alpha.data[p], classic.alpha.data[p], `pixel ${p} outside the band changed`);
    else if (Math.abs(refined.alpha.data[p]! - classic.alpha.data[p]!) > 1e-3) changed++;
  }
  assert.ok(changed > 100, `the refiner changed ${changed} band pixels`);
  const a = alphaMetrics(refined.alpha, scene.alpha), b = alphaMetrics(classic.alpha, scene.alpha);
  assert.ok(a.mad <= b.mad * 1.1, `refined MAD ${a.mad.toFixed(2)} vs classic ${b.mad.toFixed(2)}`);
});
