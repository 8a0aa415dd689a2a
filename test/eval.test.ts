import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import sharp from 'sharp';
import { evaluateFolder } from '../src/eval/evaluate.js';
import { BIN, tempDir } from './helpers.js';

const S = 32;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** An 8-bit grey PNG of S x S whose value is f(x, y). */
function grey(f: (x: number, y: number) => number, size = S): Promise<Buffer> {
  const raw = Buffer.alloc(size * size);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) raw[y * size + x] = f(x, y);
  return sharp(raw, { raw: { width: size, height: size, channels: 1 } }).png().toBuffer();
}

let dir: string, gt: string, gtAlpha: Buffer;

before(async () => {
  dir = await tempDir('cleanplate-eval-');
  gt = join(dir, 'gt');
  await mkdir(gt);
  // Left half opaque, right half transparent; the whole frame is the trimap's unknown region.
  gtAlpha = await grey((x) => (x < S / 2 ? 255 : 0));
  const trimap = await grey(() => 128);
  for (const name of ['a', 'b', 'c']) {
    await writeFile(join(gt, `${name}.alpha.png`), gtAlpha);
    await writeFile(join(gt, `${name}.trimap.png`), trimap);
  }
});

/** a: perfect (CLI layout), b: all zero (SAD = 16*32/1000 = 0.512, MAD = MSE = 500e-3). */
async function predFolder(name: string, withC: boolean): Promise<string> {
  const pred = join(dir, name);
  await mkdir(join(pred, 'a'), { recursive: true });
  await writeFile(join(pred, 'a', 'alpha.png'), gtAlpha);
  await writeFile(join(pred, 'b.png'), await grey(() => 0));
  if (withC) await writeFile(join(pred, 'c.alpha.png'), gtAlpha);
  return pred;
}

test('eval scores the predictions that exist, lists the missing one and exits 1', async () => {
  const pred = await predFolder('pred-partial', false);
  const r = cli('eval', '--pred', pred, '--gt', gt);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /^\| a \| 0\.00 \| 0\.00 \| 0\.00 \| 0\.00 \| 0\.00 \| 0\.00 \|$/m);
  assert.match(r.stdout, /^\| b \| 0\.51 \| 500\.00 \| 500\.00 \| 500\.00 \|/m);
  assert.match(r.stdout, /^\| \*\*mean\*\* \| 0\.26 \| 250\.00 \| 250\.00 \| 250\.00 \|/m);
  assert.match(r.stdout, /scored 2 of 3 items/);
  assert.match(r.stdout, new RegExp(`missing: c \\(looked for ${join(pred, 'c', 'alpha.png').replace(/[.\\/]/g, '\\$&')}`));
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^cleanplate: ${pred.replace(/[.\\/]/g, '\\$&')}: 1 of 3 predictions missing \\(c\\)`));

  const j = cli('eval', '--pred', pred, '--gt', gt, '--json');
  assert.equal(j.code, 1);
  const result = JSON.parse(j.stdout);
  assert.deepEqual(result.items.map((it: { name: string }) => it.name), ['a', 'b']);
  assert.equal(result.count, 2);
  assert.equal(result.total, 3);
  assert.ok(Math.abs(result.mean.sad - 0.256) < 1e-9, String(result.mean.sad));
  assert.ok(Math.abs(result.items[1].mad - 500) < 1e-6);
  assert.deepEqual(result.missing.map((m: { name: string }) => m.name), ['c']);
  assert.equal(result.missing[0].lookedFor.length, 3);
  assert.deepEqual(result.failed, []);
});

test('eval with every prediction present exits 0', async () => {
  const pred = await predFolder('pred-full', true);
  const r = cli('eval', '--pred', pred, '--gt', gt, '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const result = JSON.parse(r.stdout);
  assert.equal(result.count, 3);
  assert.deepEqual(result.missing, []);
  assert.ok(Math.abs(result.mean.sad - 0.512 / 3) < 1e-9);
  const t = cli('eval', '--pred', pred, '--gt', gt);
  assert.equal(t.code, 0, t.stderr);
  assert.doesNotMatch(t.stdout, /missing|failed/);
});

test('a prediction of the wrong size or an unreadable one is reported per item, the rest is scored', async () => {
  const pred = join(dir, 'pred-bad');
  await mkdir(pred);
  await writeFile(join(pred, 'a.png'), gtAlpha);
  await writeFile(join(pred, 'b.png'), await grey(() => 0, 16));
  await writeFile(join(pred, 'c.png'), 'not a png\n');
  const r = cli('eval', '--pred', pred, '--gt', gt);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^\| a \| 0\.00 \|/m);
  assert.match(r.stdout, /failed: b: .*b\.png: prediction is 16x16, ground truth 32x32/);
  assert.match(r.stdout, /failed: c: .*c\.png: not a readable matte/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /2 could not be scored \(b, c\); scored 1 of 3/);
  const result = await evaluateFolder(pred, gt);
  assert.equal(result.count, 1);
  assert.deepEqual(result.failed.map((f) => f.name), ['b', 'c']);
});

test('eval with no prediction at all, or no prediction folder, is a one-line error', async () => {
  const empty = join(dir, 'pred-empty');
  await mkdir(empty);
  for (const [pred, pattern] of [[empty, /pred-empty: no predictions found for any of the 3 ground-truth items/], [join(dir, 'nope'), /nope: prediction folder not found/]] as const) {
    const r = cli('eval', '--pred', pred, '--gt', gt);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
});
