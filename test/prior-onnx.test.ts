import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { loadCv } from '../src/cv.js';
import type { ImageF32, Plane } from '../src/image.js';
import { decodeImage } from '../src/io/decode.js';
import { resize } from '../src/ops.js';
import { createPrior } from '../src/prior/index.js';
import { loadPrior } from '../src/prior/models.js';
import { loadRvmOnnx } from '../src/prior/rvm-onnx.js';
import { DATA, HAS_DATA, ROOT, tempDir } from './helpers.js';

function maxDiff(a: Plane, b: Plane): number {
  assert.equal(a.data.length, b.data.length);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i]! - b.data[i]!));
  return m;
}

const mean = (p: Plane) => p.data.reduce((s, v) => s + v, 0) / p.data.length;

/** A window of the photo moved `dx` pixels: a person stepping sideways across a few frames. */
function shifted(image: ImageF32, dx: number, width: number): ImageF32 {
  const out = { width, height: image.height, channels: 3, data: new Float32Array(width * image.height * 3) } as ImageF32;
  for (let y = 0; y < image.height; y++) out.data.set(image.data.subarray((y * image.width + dx) * 3, (y * image.width + dx + width) * 3), y * width * 3);
  return out;
}

test('RVM on ONNX Runtime (Node\'s prior) gives TF.js\'s alpha, frame after frame with its recurrent state', { skip: !HAS_DATA && 'no evaluation data' }, async () => {
  await loadCv();
  const photo = resize(await decodeImage(join(DATA, 'bgm-samples', 'input', '0001_img.png')), 640, 360);
  const width = photo.width - 24;
  const frames = [0, 8, 16, 24].map((dx) => shifted(photo, dx, width));
  const [tfjs, onnx] = [await loadPrior('rvm'), await loadRvmOnnx()];
  // The model's output both ways; the conversion keeps the weights, so only float rounding differs.
  const [a, b] = [tfjs.stream(), onnx.stream()];
  let carried = 0;
  for (const [i, frame] of frames.entries()) {
    const [x, y] = [await a.estimate(frame), await b.estimate(frame)];
    assert.ok(maxDiff(x, y) < 2e-3, `frame ${i}: max |TF.js − ONNX| ${maxDiff(x, y)}`);
    assert.ok(mean(y) > 0.1 && mean(y) < 0.9, `frame ${i}: a person, not an empty or full matte (mean ${mean(y)})`);
    // The state is carried: the last frame's alpha is not what the model gives it alone.
    if (i === frames.length - 1) carried = maxDiff(y, await onnx.estimate(frame, { longSide: 384 }));
  }
  assert.ok(carried > 0.02, `the recurrent state changes the alpha (max ${carried})`);
  a.close(); b.close();
  // A photo's single estimate, at the photo grid.
  assert.ok(maxDiff(await tfjs.estimate(photo), await onnx.estimate(photo)) < 2e-3);
});

test('createPrior runs RVM on ONNX Runtime in Node, and refuses an rvm.onnx whose sha256 does not match the manifest', async () => {
  const prior = await createPrior('rvm');
  assert.equal(prior.name, 'rvm');
  const dir = await tempDir();
  await cp(join(ROOT, 'models', 'prior'), dir, { recursive: true });
  const bytes = await readFile(join(dir, 'rvm.onnx'));
  bytes[bytes.length >> 1] ^= 0xff;
  await writeFile(join(dir, 'rvm.onnx'), bytes);
  await assert.rejects(createPrior('rvm', dir), /rvm\.onnx: model file sha256 .* does not match the manifest/);
});

test('ONNX Runtime runs with its telemetry off: a process that ran the prior leaves no 1DS debug log', { skip: process.platform !== 'linux' && 'the log is where the Linux build writes it' }, () => {
  // The native runtime's telemetry writes /tmp/mat-debug-PID.log when its first session starts, unless disabled.
  const url = (file: string) => JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'src', file)).href);
  const script = `const { createPrior } = await import(${url('prior/index.js')});
    await (await import(${url('cv.js')})).loadCv();
    const prior = await createPrior('rvm');
    await prior.estimate({ width: 64, height: 64, channels: 3, data: new Float32Array(64 * 64 * 3).fill(0.5) });
    console.log(process.pid);`;
  const env = { ...process.env };
  delete env['ORT_DISABLE_TELEMETRY'];
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  const log = `/tmp/mat-debug-${r.stdout.trim()}.log`;
  assert.equal(existsSync(log), false, `${log} was written`);
  // Nor one whose model runs on a prior thread started before anything imported ONNX Runtime on the
  // main thread (as the command line starts it): a worker's process.env is its own copy, which the
  // native runtime does not read.
  const threaded = `const { PriorThread } = await import(${url('prior/worker.js')});
    const thread = new PriorThread('rvm');
    await thread.estimateFrame(new Uint8Array(64 * 64 * 3).fill(128), 64, 64);
    await thread.close();
    console.log(process.pid);`;
  // From a file: a worker started from `-e` code would inherit --input-type and refuse to start.
  const file = join(mkdtempSync(join(tmpdir(), 'cleanplate-telemetry-')), 'threaded.mjs');
  writeFileSync(file, threaded);
  const t = spawnSync(process.execPath, [file], { encoding: 'utf8', env });
  rmSync(dirname(file), { recursive: true, force: true });
  assert.equal(t.status, 0, t.stderr);
  const threadLog = `/tmp/mat-debug-${t.stdout.trim()}.log`;
  assert.equal(existsSync(threadLog), false, `${threadLog} was written`);
});
