import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { decodeImage } from '../src/io/decode.js';
import { encodeRgbaPng, OutputSet } from '../src/io/encode.js';
import { createImage, fromBytes, rgbaBytes, toBytes, type Plane } from '../src/image.js';
import { tempDir } from './helpers.js';
import { FrameReader } from '../src/io/video-stream.js';
import { encodeClip } from '../bench/video-speed.js';
import { buildClip } from '../src/demo/scene.js';
import { supportRect } from '../src/image.js';
import { loadCv } from '../src/cv.js';

test('EXIF orientation is applied: a portrait-tagged JPEG decodes rotated', async () => {
  const dir = await tempDir();
  const file = join(dir, 'rotated.jpg');
  // 40x20 landscape pixels, tagged "rotate 90° clockwise" (orientation 6).
  const raw = Buffer.alloc(40 * 20 * 3, 0);
  for (let x = 0; x < 10; x++) for (let y = 0; y < 20; y++) raw[(y * 40 + x) * 3] = 255; // red left band
  await sharp(raw, { raw: { width: 40, height: 20, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toFile(file);
  const image = await decodeImage(file);
  assert.equal(image.width, 20);
  assert.equal(image.height, 40);
  // After a clockwise quarter turn the left band is at the top.
  assert.ok(image.data[(2 * 20 + 10) * 3]! > 0.8);
  assert.ok(image.data[(35 * 20 + 10) * 3]! < 0.2);
});

test('16-bit PNG, RGBA PNG, grey PNG and WebP all decode to float RGB', async () => {
  const dir = await tempDir();
  const raw = Buffer.alloc(32 * 32 * 4);
  for (let i = 0; i < 32 * 32; i++) raw.set([200, 100, 50, i % 2 ? 255 : 0], i * 4);
  const rgba = join(dir, 'rgba.png'), deep = join(dir, 'deep.png'), grey = join(dir, 'grey.png'), webp = join(dir, 'x.webp');
  await sharp(raw, { raw: { width: 32, height: 32, channels: 4 } }).png().toFile(rgba);
  await sharp(raw, { raw: { width: 32, height: 32, channels: 4 } }).removeAlpha().toColourspace('rgb16').png().toFile(deep);
  await sharp(raw, { raw: { width: 32, height: 32, channels: 4 } }).removeAlpha().grayscale().png().toFile(grey);
  await sharp(raw, { raw: { width: 32, height: 32, channels: 4 } }).removeAlpha().webp({ lossless: true }).toFile(webp);
  for (const f of [rgba, deep, webp]) {
    const image = await decodeImage(f);
    assert.equal(image.channels, 3, f);
    assert.ok(Math.abs(image.data[0]! - 200 / 255) < 0.01, `${f}: ${image.data[0]}`);
    assert.ok(Math.abs(image.data[2]! - 50 / 255) < 0.01, f);
  }
  const g = await decodeImage(grey);
  assert.equal(g.channels, 3);
  assert.equal(g.data[0], g.data[1]);
});

test('an output set publishes all files at once, or none after an abort', async () => {
  const dir = await tempDir();
  const set = new OutputSet(dir);
  await set.add('a.txt', 'a');
  await set.add('b.txt', 'b');
  assert.deepEqual((await readdir(dir)).filter((f) => !f.startsWith('.tmp-')), []);
  await set.commit();
  assert.deepEqual((await readdir(dir)).sort(), ['a.txt', 'b.txt']);
  const dir2 = await tempDir();
  const failed = new OutputSet(dir2);
  await failed.add('a.txt', 'a');
  await failed.abort();
  assert.deepEqual(await readdir(dir2), []);
  await writeFile(join(dir2, 'keep'), '');
});

test('the foreground PNG holds the colour and the alpha as 8-bit straight RGBA', async () => {
  const w = 9, h = 4;
  const fg = createImage(w, h, 3), alpha = createImage(w, h, 1) as Plane;
  for (let i = 0; i < fg.data.length; i++) fg.data[i] = ((i * 29) % 97) / 96;
  for (let p = 0; p < w * h; p++) alpha.data[p] = p / (w * h - 1);
  const { data, info } = await sharp(await encodeRgbaPng(fg, alpha)).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, info.channels], [w, h, 4]);
  for (let p = 0; p < w * h; p++) {
    for (let c = 0; c < 3; c++) assert.equal(data[p * 4 + c], Math.round(fg.data[p * 3 + c]! * 255), `pixel ${p} channel ${c}`);
    assert.equal(data[p * 4 + 3], Math.round(alpha.data[p]! * 255), `pixel ${p} alpha`);
  }
  // Clear pixels as zeros (the video's encoder input), into a dirty buffer: the same bytes elsewhere.
  const plain = rgbaBytes(fg, alpha), dirty = new Uint8Array(w * h * 4).fill(9);
  const cleared = rgbaBytes(fg, alpha, dirty, true);
  assert.equal(cleared, dirty, 'written into the buffer given');
  for (let p = 0; p < w * h; p++) {
    assert.deepEqual([...cleared.subarray(p * 4, p * 4 + 4)], alpha.data[p] === 0 ? [0, 0, 0, 0] : [...plain.subarray(p * 4, p * 4 + 4)], `pixel ${p}`);
  }
});

test('bytes converted only inside the rectangle that holds alpha are the bytes of the whole frame, whatever the buffer held', () => {
  const w = 13, h = 7;
  const fg = createImage(w, h, 3), alpha = createImage(w, h, 1) as Plane;
  // Alpha only inside [3, 2, 9, 5) (F with it, as every engine leaves it), some of it 0 there too.
  for (let y = 2; y < 5; y++) for (let x = 3; x < 9; x++) {
    const p = y * w + x;
    alpha.data[p] = (p % 4) / 3;
    for (let c = 0; c < 3; c++) fg.data[p * 3 + c] = alpha.data[p]! > 0 ? ((p * 7 + c * 31) % 50) / 49 : 0;
  }
  const within = [3, 2, 9, 5] as const;
  for (const [rect, name] of [[within, 'tight'], [[1, 0, 12, 6], 'loose'], [[3, 2, 9, 5], 'again']] as const) {
    // A recycled buffer holds an earlier frame's bytes everywhere.
    const alphaBytes = toBytes(alpha, new Uint8Array(w * h).fill(200), rect);
    assert.deepEqual([...alphaBytes], [...toBytes(alpha)], `alpha, ${name} rectangle`);
    const rgba = rgbaBytes(fg, alpha, new Uint8Array(w * h * 4).fill(77), true, rect);
    assert.deepEqual([...rgba], [...rgbaBytes(fg, alpha, new Uint8Array(w * h * 4).fill(77), true)], `RGBA, ${name} rectangle`);
  }
  // An empty rectangle: alpha 0 everywhere, every byte 0.
  const empty = createImage(w, h, 1) as Plane;
  assert.ok(toBytes(empty, new Uint8Array(w * h).fill(5), [0, 0, 0, 0]).every((v) => v === 0));
});

test('a decoder reads later frames into frames handed back: the same frames as into fresh buffers', async () => {
  await loadCv();
  const dir = await tempDir();
  const file = join(dir, 'clip.mp4');
  // Frames larger than one pipe read (64 KB): a read then completes at most one frame, so the
  // consumer has handed the previous frame back before the decoder needs a buffer for the next.
  // (With 18 KB frames one read completed several into fresh buffers, as many as the OS's timing
  // put in it: the count below depended on the machine's load.)
  await encodeClip(buildClip(9, 256, 192, 4, 3, 10).frames, file);
  const size = { width: 256, height: 192, pixelFormat: 'rgb24' as const };
  const fresh: Uint8Array[] = [];
  const plain = new FrameReader(file, size);
  for (let f = await plain.next(); f; f = await plain.next()) fresh.push(f);
  const reader = new FrameReader(file, { ...size, queue: 1 });
  const handedBack = new Set<Uint8Array>();
  let reused = 0, k = 0;
  for (let f = await reader.next(); f; f = await reader.next(), k++) {
    if (handedBack.has(f)) reused++;
    assert.deepEqual(f, fresh[k], `frame ${k}`);
    // Dirty, as a consumer leaves it: the decoder must overwrite every byte.
    f.fill(7);
    handedBack.add(f);
    reader.recycle(f);
  }
  assert.equal(k, 9);
  // Fresh buffers only for the first two frames (the one being read when the first was handed out, and that one).
  assert.equal(reused, k - 2, `frames read into handed-back buffers: ${reused} of ${k}`);
});

test('supportRect within a rectangle that holds the support equals supportRect of the whole plane', () => {
  const plane = createImage(40, 30, 1) as Plane;
  for (const [x, y] of [[5, 7], [21, 9], [12, 25]] as const) plane.data[y * 40 + x] = 0.3;
  assert.deepEqual(supportRect(plane, 0), [5, 7, 22, 26]);
  assert.deepEqual(supportRect(plane, 0, [3, 2, 30, 28]), supportRect(plane, 0));
  assert.equal(supportRect(plane, 0, [25, 0, 40, 30]), undefined, 'nothing looked at outside it');
});

test('fromBytes gives each byte v as the float of v / 255, whatever the length (the table and the tail loop)', () => {
  for (const length of [0, 1, 3, 255, 256, 257, 1031]) {
    const bytes = Uint8Array.from({ length }, (_, i) => (i * 97 + 13) % 256);
    const image = fromBytes(length, 1, 1, bytes);
    assert.equal(image.data.length, length);
    for (let i = 0; i < length; i++) assert.equal(image.data[i], Math.fround(bytes[i]! / 255), `length ${length}, index ${i}`);
  }
  const into = new Float32Array(6).fill(9);
  assert.equal(fromBytes(2, 1, 3, Uint8Array.of(0, 255, 51, 102, 204, 1), into).data, into);
  assert.deepEqual(Array.from(into), [0, 1, Math.fround(0.2), Math.fround(0.4), Math.fround(0.8), Math.fround(1 / 255)]);
});
