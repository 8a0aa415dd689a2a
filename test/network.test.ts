import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCv } from '../src/cv.js';
import { buildScene } from '../src/demo/scene.js';
import { createImage } from '../src/image.js';
import { growTo, subjectBox } from '../src/matte/network.js';
import { createMatter } from '../src/pipeline.js';
import { ROOT, tempDir } from './helpers.js';

const MODELS = join(ROOT, 'models');

async function modelsCopy(): Promise<{ dir: string; file: string }> {
  const dir = await tempDir();
  await cp(MODELS, dir, { recursive: true, filter: (src) => !src.includes('checkpoints') });
  const manifest = JSON.parse(await readFile(join(dir, 'network.json'), 'utf8'));
  return { dir, file: join(dir, manifest.models[manifest.default].file) };
}

test('the shipped network mattes the synthetic scene: subject opaque, background clear', async () => {
  await loadCv();
  const scene = buildScene(640, 480, 21);
  const matter = await createMatter({ prior: 'rvm', engine: 'network' });
  const r = await matter.matte({ image: scene.image, plate: scene.plate, color: '#0000ff' });
  assert.equal(r.report.engine, 'network');
  assert.equal(r.alpha.width, 640);
  let inside = 0, ni = 0, outside = 0, no = 0;
  for (let i = 0; i < scene.alpha.data.length; i++) {
    const a = r.alpha.data[i]!;
    assert.ok(a >= 0 && a <= 1);
    if (scene.alpha.data[i]! > 0.99) { inside += a; ni++; } else if (scene.alpha.data[i]! === 0) { outside += a; no++; }
  }
  assert.ok(inside / ni > 0.9, `mean alpha on the subject ${(inside / ni).toFixed(3)}`);
  assert.ok(outside / no < 0.05, `mean alpha on the background ${(outside / no).toFixed(3)}`);
  assert.match(String(r.report.engineDetails.networkSize), /^\d+x\d+$/);
});

test('a missing, corrupt or tampered network model is refused with a clear error', async () => {
  const missing = await tempDir();
  await cp(join(MODELS, 'prior'), join(missing, 'prior'), { recursive: true });
  await assert.rejects(createMatter({ prior: 'none', engine: 'network', modelsDir: missing }), /network\.json: no network model manifest/);
  const { dir, file } = await modelsCopy();
  const bytes = await readFile(file);
  bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0x55;
  await writeFile(file, bytes);
  await assert.rejects(createMatter({ prior: 'none', engine: 'network', modelsDir: dir }), /network model file sha256 .* does not match its card/);
  await writeFile(file, 'not a model');
  const manifest = JSON.parse(await readFile(join(dir, 'network.json'), 'utf8'));
  const { createHash } = await import('node:crypto');
  manifest.models[manifest.default].sha256 = createHash('sha256').update('not a model').digest('hex');
  await writeFile(join(dir, 'network.json'), JSON.stringify(manifest));
  await assert.rejects(createMatter({ prior: 'none', engine: 'network', modelsDir: dir }), /network model cannot be loaded/);
});

test('an input smaller than the network minimum is refused before ONNX Runtime sees it', async () => {
  await loadCv();
  const matter = await createMatter({ prior: 'none', engine: 'network' });
  const image = createImage(24, 20, 3, 0.2), plate = createImage(24, 20, 3, 0.2);
  for (let i = 0; i < 30; i++) image.data[(10 * 24 + 5) * 3 + i] = 0.9;
  await assert.rejects(matter.matte({ image, plate }), /image is 24x20, smaller than the network's minimum of 32x32/);
  // A small subject in a large image is cropped with a box grown to the minimum, not refused.
  const big = createImage(200, 150, 3, 0.2), bigPlate = createImage(200, 150, 3, 0.2);
  for (let y = 70; y < 80; y++) for (let x = 90; x < 100; x++) big.data.fill(0.9, (y * 200 + x) * 3, (y * 200 + x) * 3 + 3);
  const r = await matter.matte({ image: big, plate: bigPlate });
  assert.match(String(r.report.engineDetails.crop), /^32x32\+/);
});

test('the crop box is the paper\'s square grown by 10% per side and clipped', () => {
  const mask = { width: 100, height: 80, channels: 1 as const, data: new Float32Array(8000) };
  for (let y = 30; y < 50; y++) for (let x = 40; x < 50; x++) mask.data[y * 100 + x] = 1;
  const box = subjectBox(mask, 100, 80);
  // 20 px tall subject -> 24 px square around its centre (44.5, 39.5)
  assert.deepEqual(box, { x: 32, y: 27, width: 25, height: 25 });
  assert.deepEqual(growTo({ x: 0, y: 70, width: 10, height: 10 }, 32, 100, 80), { x: 0, y: 48, width: 32, height: 32 });
  const empty = subjectBox({ ...mask, data: new Float32Array(8000) }, 100, 80);
  assert.deepEqual(empty, { x: 0, y: 0, width: 100, height: 80 });
});
