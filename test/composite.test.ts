import assert from 'node:assert/strict';
import { test } from 'node:test';
import { composite, compositeColour, parseColour, resizeCover, solidColour } from '../src/composite/index.js';
import { loadCv } from '../src/cv.js';
import { createImage, type Plane } from '../src/image.js';
import { estimateForeground } from '../src/matte/foreground.js';

test('compositing identities: alpha 1 gives the foreground, alpha 0 the background, 0.5 the mean', () => {
  const fg = solidColour(3, 1, [1, 0, 0]);
  const bg = solidColour(3, 1, [0, 0, 1]);
  const alpha: Plane = { width: 3, height: 1, channels: 1, data: Float32Array.from([1, 0, 0.5]) };
  const out = composite(fg, alpha, bg);
  assert.deepEqual(Array.from(out.data), [1, 0, 0, 0, 0, 1, 0.5, 0, 0.5]);
});

test('compositing onto a colour equals compositing onto that colour as an image', () => {
  const w = 7, h = 5;
  const fg = createImage(w, h, 3);
  const alpha = createImage(w, h, 1) as Plane;
  for (let i = 0; i < fg.data.length; i++) fg.data[i] = ((i * 37) % 101) / 100;
  for (let p = 0; p < w * h; p++) alpha.data[p] = ((p * 13) % 11) / 10;
  const rgb: [number, number, number] = [0, 0.69, 0.25];
  const flat = solidColour(w, h, rgb);
  assert.deepEqual(Array.from(flat.data.subarray(30, 33)), Array.from(Float32Array.from(rgb)));
  assert.deepEqual(compositeColour(fg, alpha, rgb).data, composite(fg, alpha, flat).data);
});

test('hex colours parse in long and short form and bad ones are refused', () => {
  assert.deepEqual(parseColour('#ff8000').map((v) => Math.round(v * 255)), [255, 128, 0]);
  assert.deepEqual(parseColour('0f0').map((v) => Math.round(v * 255)), [0, 255, 0]);
  assert.throws(() => parseColour('green'), /not a hex colour/);
});

test('resizeCover fills the target exactly and keeps the centre', async () => {
  await loadCv();
  const wide = createImage(40, 10, 3);
  for (let x = 0; x < 40; x++) for (let y = 0; y < 10; y++) wide.data[(y * 40 + x) * 3] = x >= 15 && x < 25 ? 1 : 0;
  const out = resizeCover(wide, 20, 20);
  assert.equal(out.width, 20); assert.equal(out.height, 20);
  // The centre 10 columns of the source (red) fill the whole target.
  assert.ok(out.data[(10 * 20 + 10) * 3]! > 0.99);
});

test('foreground estimation recovers the subject colour under partial alpha without background bleed', async () => {
  await loadCv();
  const w = 32, h = 1;
  const F = [0.9, 0.6, 0.2], B = [0.1, 0.3, 0.9];
  const alpha: Plane = { width: w, height: h, channels: 1, data: Float32Array.from({ length: w }, (_, x) => (x < 8 ? 1 : x < 24 ? 1 - (x - 8) / 16 : 0)) };
  const image = createImage(w, h, 3), plate = createImage(w, h, 3);
  for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) {
    image.data[x * 3 + c] = alpha.data[x]! * F[c]! + (1 - alpha.data[x]!) * B[c]!;
    plate.data[x * 3 + c] = B[c]!;
  }
  const fg = estimateForeground(image, alpha, plate);
  for (let x = 0; x < 22; x++) for (let c = 0; c < 3; c++) assert.ok(Math.abs(fg.data[x * 3 + c]! - F[c]!) < 0.03, `x=${x} c=${c}: ${fg.data[x * 3 + c]}`);
});

test('foreground estimation of a small subject in a large frame: solved around it, zero where alpha is invisible', async () => {
  await loadCv();
  const w = 240, h = 200;
  const F = [0.8, 0.5, 0.3], B = [0.2, 0.4, 0.7];
  const alpha = createImage(w, h, 1) as Plane;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const r = Math.hypot(x - 60, y - 70);
    alpha.data[y * w + x] = r < 15 ? 1 : r < 25 ? (25 - r) / 10 : 0;
  }
  const image = createImage(w, h, 3), plate = createImage(w, h, 3);
  for (let p = 0; p < w * h; p++) for (let c = 0; c < 3; c++) {
    image.data[p * 3 + c] = alpha.data[p]! * F[c]! + (1 - alpha.data[p]!) * B[c]!;
    plate.data[p * 3 + c] = B[c]!;
  }
  for (const background of [plate, undefined]) {
    const fg = estimateForeground(image, alpha, background);
    for (let p = 0; p < w * h; p++) for (let c = 0; c < 3; c++) {
      const a = alpha.data[p]!, f = fg.data[p * 3 + c]!;
      // Without a plate the background is itself estimated, so faint alpha is left out of the check.
      if (a > (background ? 0.1 : 0.3)) assert.ok(Math.abs(f - F[c]!) < 0.03, `pixel ${p} channel ${c}: ${f} (alpha ${a})`);
      else if (a === 0) assert.equal(f, 0);
    }
  }
});

test('the band\'s foreground solve equals the whole-frame solve when alpha is 0 or 1 off the band', async () => {
  const { solveForeground, solveForegroundBand } = await import('../src/matte/foreground.js');
  const w = 97, h = 61;
  const image = createImage(w, h, 3), plate = createImage(w, h, 3);
  for (let i = 0; i < image.data.length; i++) { image.data[i] = (Math.sin(i * 0.61) + 1) * 0.55 - 0.05; plate.data[i] = (Math.cos(i * 0.23) + 1) * 0.5; }
  // Opaque disc with a soft ring (the band), alpha 0 beyond; some band values at the solve's limits.
  const alpha = createImage(w, h, 1) as Plane;
  const band: number[] = [];
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const p = y * w + x, r = Math.hypot(x - 45, y - 30);
    if (r < 12) alpha.data[p] = 1;
    else if (r < 22) { band.push(p); alpha.data[p] = [0, 1 / 1024, 0.5, 0.98, 1][p % 5]! * ((22 - r) / 10) + (p % 7 === 0 ? 0.99 : 0); }
  }
  const colours = Float32Array.from({ length: band.length * 3 }, (_, i) => (i % 11) / 10);
  const fHat = createImage(w, h, 3);
  band.forEach((p, i) => fHat.data.set(colours.subarray(i * 3, i * 3 + 3), p * 3));
  const whole = solveForeground(image, alpha, plate, fHat);
  const banded = solveForegroundBand(image, alpha, plate, Int32Array.from(band), colours);
  assert.deepEqual(banded.data, whole.data);
  assert.ok(whole.data.some((v, i) => v > 0 && alpha.data[Math.floor(i / 3)]! < 0.9), 'the band has solved pixels');
});

test('the guided filter in strips equals the guided filter on the whole image', async () => {
  await loadCv();
  const { guidedFilter, guidedFilterWhole } = await import('../src/matte/guided.js');
  const w = 120, h = 700;
  const guide = { width: w, height: h, channels: 3, data: Float32Array.from({ length: w * h * 3 }, (_, i) => Math.sin(i * 0.37) * 0.5 + 0.5) };
  const input = { width: w, height: h, channels: 1 as const, data: Float32Array.from({ length: w * h }, (_, i) => ((i * 7) % 97) / 97) };
  const a = guidedFilter(guide, input, 3, 1e-4), b = guidedFilterWhole(guide, input, 3, 1e-4);
  let max = 0;
  for (let i = 0; i < a.data.length; i++) max = Math.max(max, Math.abs(a.data[i]! - b.data[i]!));
  assert.ok(max < 1e-5, `max difference ${max}`);
});

test('the guided filter limited to a region equals the whole filter there and leaves the rest as it was', async () => {
  await loadCv();
  const { guidedFilter, guidedFilterWhole } = await import('../src/matte/guided.js');
  const w = 300, h = 640;
  const guide = { width: w, height: h, channels: 3, data: Float32Array.from({ length: w * h * 3 }, (_, i) => Math.sin(i * 0.37) * 0.5 + 0.5) };
  const input = { width: w, height: h, channels: 1 as const, data: Float32Array.from({ length: w * h }, (_, i) => ((i * 7) % 97) / 97) };
  const where = { width: w, height: h, channels: 1 as const, data: new Float32Array(w * h) };
  for (let y = 200; y < 420; y++) for (let x = 90; x < 160; x++) where.data[y * w + x] = 1;
  const a = guidedFilter(guide, input, 3, 1e-4, where), b = guidedFilterWhole(guide, input, 3, 1e-4);
  let inside = 0, outside = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = y * w + x;
    if (where.data[i]) inside = Math.max(inside, Math.abs(a.data[i]! - b.data[i]!));
    else if (y < 190 || y >= 430 || x < 80 || x >= 170) outside = Math.max(outside, Math.abs(a.data[i]! - input.data[i]!));
  }
  assert.ok(inside < 1e-5, `inside: max difference ${inside}`);
  assert.equal(outside, 0);
});

test('the fast guided filter: halving equals OpenCV\'s area resize, and a band given as a list equals the band as a plane', async () => {
  await loadCv();
  const { guidedFilterFast, halveRect } = await import('../src/matte/guided.js');
  const { resize } = await import('../src/ops.js');
  const { cropRect } = await import('../src/image.js');
  const w = 301, h = 180;
  const guide = { width: w, height: h, channels: 3, data: Float32Array.from({ length: w * h * 3 }, (_, i) => Math.sin(i * 0.37) * 0.5 + 0.5) };
  const input = { width: w, height: h, channels: 1 as const, data: Float32Array.from({ length: w * h }, (_, i) => ((i * 7) % 97) / 97) };
  const half = halveRect(guide, 11, 6, 211, 170), area = resize(cropRect(guide, 11, 6, 211, 170), 100, 82);
  let worst = 0;
  for (let i = 0; i < half.data.length; i++) worst = Math.max(worst, Math.abs(half.data[i]! - area.data[i]!));
  assert.ok(worst < 1e-6, `halved vs area resize: ${worst}`);
  // A ring-shaped band reaching the image's last column (odd width: the halved box is moved by one).
  const where = { width: w, height: h, channels: 1 as const, data: new Float32Array(w * h) };
  const list: number[] = [];
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const r = Math.hypot(x - 220, y - 90);
    if (r > 50 && r < 62 || x >= w - 3) { where.data[y * w + x] = 1; list.push(y * w + x); }
  }
  let x0 = w, y0 = h, x1 = 0, y1 = 0;
  for (const p of list) { const x = p % w, y = Math.floor(p / w); x0 = Math.min(x0, x); x1 = Math.max(x1, x + 1); y0 = Math.min(y0, y); y1 = Math.max(y1, y + 1); }
  const listed = { list: Int32Array.from(list), box: [x0, y0, x1, y1] as [number, number, number, number] };
  const a = guidedFilterFast(guide, input, 3, 1e-4, where), b = guidedFilterFast(guide, input, 3, 1e-4, listed);
  assert.deepEqual(b.data, a.data);
  // In place: the input's own array holds the same result (every input value is read before any is written).
  const own = { ...input, data: input.data.slice() };
  const c = guidedFilterFast(guide, own, 3, 1e-4, listed, 2, true);
  assert.equal(c.data, own.data, 'written into the input');
  assert.deepEqual(c.data, a.data);
  let changed = 0, outside = 0;
  for (let i = 0; i < w * h; i++) {
    if (where.data[i]) changed += a.data[i] !== input.data[i] ? 1 : 0;
    else outside = Math.max(outside, Math.abs(a.data[i]! - input.data[i]!));
  }
  assert.equal(outside, 0, 'pixels outside the band keep their value');
  assert.ok(changed > 0.9 * list.length, `${changed} of ${list.length} band pixels filtered`);
});
