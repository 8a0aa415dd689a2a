/**
 * The close-up variant of the dev benchmark (same layout): each alphamatting-dev object cropped so
 * that it covers 50% to 95% of a small 320x320 frame, in front of a smooth, defocused background,
 * with a plate re-shot by hand (a 3 px shift, half a degree of turn, a small exposure change,
 * sensor noise). This is where a plate check that judges the whole frame refuses good plates.
 *
 *   node dist/bench/build-closeup.js [--data ../shared/data] [--out bench/dev-closeup] [--seed 2]
 */
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadCv } from '../src/cv.js';
import { gaussian, rng } from '../src/demo/scene.js';
import { createImage, cropRect, type Plane } from '../src/image.js';
import { decodeImage } from '../src/io/decode.js';
import { readPlane } from '../src/io/read-alpha.js';
import { gaussianBlur, resize } from '../src/ops.js';
import { sample, writeItem } from './build-dev.js';

const SIZE = 320;

/** The largest square around the subject's centre in which the subject covers at least `target`. */
function cropFor(alpha: Plane, target: number): [number, number, number] {
  const { width: w, height: h } = alpha;
  let sx = 0, sy = 0, n = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (alpha.data[y * w + x]! > 0.5) { sx += x; sy += y; n++; }
  const cx = n ? sx / n : w / 2, cy = n ? sy / n : h / 2;
  let best: [number, number, number] = [0, 0, Math.min(w, h)];
  for (let side = Math.min(w, h); side >= 48; side = Math.floor(side * 0.97)) {
    const x0 = Math.round(Math.min(Math.max(0, cx - side / 2), w - side)), y0 = Math.round(Math.min(Math.max(0, cy - side / 2), h - side));
    let inside = 0;
    for (let y = y0; y < y0 + side; y++) for (let x = x0; x < x0 + side; x++) if (alpha.data[y * w + x]! > 0.5) inside++;
    best = [x0, y0, side];
    if (inside / (side * side) >= target) break;
  }
  return best;
}

export async function buildCloseupBenchmark(dataDir: string, outDir: string, seed = 2): Promise<{ name: string; coverage: number }[]> {
  await loadCv();
  const random = rng(seed);
  const src = join(dataDir, 'alphamatting-dev');
  const names = (await readdir(join(src, 'image'))).filter((f) => f.endsWith('.png')).map((f) => f.slice(0, -4)).sort();
  const photos = await Promise.all(['bgm-samples/background/0001.png', 'bgm-samples/background/0002.png', 'bgm-samples/input/0001_back.png'].map((f) => decodeImage(join(dataDir, f))));
  // Out of focus: the photographs blurred hard, so the visible background is smooth and featureless.
  const defocused = photos.map((p) => gaussianBlur(resize(p, Math.round(p.width / 3), Math.round(p.height / 3)), 31, 9));
  await mkdir(outDir, { recursive: true });
  const items: { name: string; coverage: number }[] = [];
  for (const [k, name] of names.entries()) {
    const target = 0.5 + (0.45 * k) / Math.max(1, names.length - 1);
    const fgFull = await decodeImage(join(src, 'image', `${name}.png`));
    const alphaFull = await readPlane(join(src, 'alpha', `${name}.png`));
    const [x0, y0, side] = cropFor(alphaFull, target);
    const fg = resize(cropRect(fgFull, x0, y0, x0 + side, y0 + side), SIZE, SIZE);
    const alpha = resize(cropRect(alphaFull, x0, y0, x0 + side, y0 + side), SIZE, SIZE);
    const big = defocused[k % defocused.length]!;
    const scale = Math.min(big.width, big.height) / SIZE * (0.5 + 0.3 * random());
    const ox = random() * (big.width - SIZE * scale), oy = random() * (big.height - SIZE * scale);
    const camera = [scale, 0, ox, 0, scale, oy, 0, 0, 1];
    // The plate re-shot by hand: half a degree of turn about the centre and a 3 px shift.
    const turn = ((random() < 0.5 ? -1 : 1) * 0.5 * Math.PI) / 180, angle = (random() * 2 * Math.PI);
    const cos = Math.cos(turn), sin = Math.sin(turn), c = SIZE / 2;
    const tx = 3 * Math.cos(angle), ty = 3 * Math.sin(angle);
    const hand = [cos, -sin, c - cos * c + sin * c + tx, sin, cos, c - sin * c - cos * c + ty, 0, 0, 1];
    const plateCamera: number[] = [];
    for (let r = 0; r < 3; r++) for (let col = 0; col < 3; col++) plateCamera.push(camera[r * 3]! * hand[col]! + camera[r * 3 + 1]! * hand[3 + col]! + camera[r * 3 + 2]! * hand[6 + col]!);
    const background = sample(big, camera, SIZE, SIZE);
    const plateClean = sample(big, plateCamera, SIZE, SIZE);
    const exposure = 1 + (random() - 0.5) * 0.1;
    const image = createImage(SIZE, SIZE, 3), plate = createImage(SIZE, SIZE, 3);
    let covered = 0;
    for (let p = 0; p < SIZE * SIZE; p++) {
      const a = alpha.data[p]!;
      if (a > 0.5) covered++;
      for (let ch = 0; ch < 3; ch++) {
        const i = p * 3 + ch;
        image.data[i] = a * fg.data[i]! + (1 - a) * background.data[i]! + 0.01 * gaussian(random);
        plate.data[i] = exposure * plateClean.data[i]! + 0.01 * gaussian(random);
      }
    }
    await writeItem(outDir, name, image, plate, alpha, 4);
    items.push({ name, coverage: +(covered / (SIZE * SIZE)).toFixed(3) });
  }
  return items;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { data: { type: 'string', default: '../shared/data' }, out: { type: 'string', default: 'bench/dev-closeup' }, seed: { type: 'string', default: '2' } } });
  const items = await buildCloseupBenchmark(values.data!, values.out!, Number(values.seed));
  console.log(`wrote ${items.length} items to ${values.out}: subject covers ${items.map((i) => `${(100 * i.coverage).toFixed(0)}%`).join(', ')}`);
}
