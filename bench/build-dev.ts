/**
 * Builds the dev benchmark in the layout of DESIGN.md from ../shared/data/alphamatting-dev:
 * each ground-truth object is composited onto a crop of a real photograph, and the plate is that
 * crop "re-captured": a small random homography, gamma, gain/bias and sensor noise.
 *
 *   node dist/bench/build-dev.js [--data ../shared/data] [--out bench/dev] [--seed 1]
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cv, loadCv, withMats } from '../src/cv.js';
import { gaussian, rng } from '../src/demo/scene.js';
import { createImage, createPlane, type ImageF32, type Plane } from '../src/image.js';
import { decodeImage } from '../src/io/decode.js';
import { encodePng } from '../src/io/encode.js';
import { readPlane } from '../src/io/read-alpha.js';
import { dilateDisc } from '../src/ops.js';

export async function buildDevBenchmark(dataDir: string, outDir: string, seed = 1): Promise<string[]> {
  await loadCv();
  const random = rng(seed);
  const src = join(dataDir, 'alphamatting-dev');
  const names = (await readdir(join(src, 'image'))).filter((f) => f.endsWith('.png')).map((f) => f.slice(0, -4)).sort();
  const backgrounds = await Promise.all(['bgm-samples/background/0001.png', 'bgm-samples/background/0002.png', 'bgm-samples/input/0001_back.png'].map((f) => decodeImage(join(dataDir, f))));
  await mkdir(outDir, { recursive: true });
  for (const [k, name] of names.entries()) {
    const fg = await decodeImage(join(src, 'image', `${name}.png`));
    const alpha = await readPlane(join(src, 'alpha', `${name}.png`));
    const big = backgrounds[k % backgrounds.length]!;
    const { width: w, height: h } = fg;
    const scale = Math.min(big.width / w, big.height / h) * (0.55 + 0.4 * random());
    const ox = random() * (big.width - w * scale), oy = random() * (big.height - h * scale);
    const jitter = () => gaussian(random) * 2.5;
    // Image-pixel → big-photo coordinates: the image's camera, and the plate's slightly moved one.
    const camera = [scale, 0, ox, 0, scale, oy, 0, 0, 1];
    const srcQuad = [0, 0, w, 0, w, h, 0, h];
    const dstQuad = srcQuad.map((v, i) => v + jitter() * (i % 2 ? 1 : 1));
    const plateCamera = withMats((t) => {
      const c = cv();
      const m = t(c.getPerspectiveTransform(t(c.matFromArray(4, 1, c.CV_32FC2, srcQuad)), t(c.matFromArray(4, 1, c.CV_32FC2, dstQuad))));
      const j = Array.from(m.data64F as Float64Array);
      // camera ∘ jitter
      const out: number[] = [];
      for (let r = 0; r < 3; r++) for (let col = 0; col < 3; col++) out.push(camera[r * 3]! * j[col]! + camera[r * 3 + 1]! * j[3 + col]! + camera[r * 3 + 2]! * j[6 + col]!);
      return out;
    });
    const background = sample(big, camera, w, h);
    const plateClean = sample(big, plateCamera, w, h);
    const gamma = 1 + gaussian(random) * 0.08;
    const gain = [0, 1, 2].map(() => 0.9 + 0.2 * random()), bias = [0, 1, 2].map(() => -0.04 + 0.08 * random());
    const image = createImage(w, h, 3), plate = createImage(w, h, 3);
    for (let p = 0; p < w * h; p++) {
      const a = alpha.data[p]!;
      for (let c = 0; c < 3; c++) {
        const i = p * 3 + c;
        image.data[i] = a * fg.data[i]! + (1 - a) * background.data[i]! + 0.01 * gaussian(random);
        plate.data[i] = gain[c]! * Math.pow(plateClean.data[i]!, gamma) + bias[c]! + 0.015 * gaussian(random);
      }
    }
    await writeItem(outDir, name, image, plate, alpha, 7);
  }
  return names;
}

/**
 * One item in the benchmark layout: image, plate, alpha, and a trimap whose unknown region is the
 * partial-alpha pixels grown by `unknownRadius` px.
 */
export async function writeItem(outDir: string, name: string, image: ImageF32, plate: ImageF32, alpha: Plane, unknownRadius: number): Promise<void> {
  const partial = createPlane(alpha.width, alpha.height);
  for (let i = 0; i < partial.data.length; i++) partial.data[i] = alpha.data[i]! > 0.02 && alpha.data[i]! < 0.98 ? 1 : 0;
  const unknown = dilateDisc(partial, unknownRadius);
  const trimap = createPlane(alpha.width, alpha.height);
  for (let i = 0; i < trimap.data.length; i++) trimap.data[i] = unknown.data[i]! > 0.5 ? 128 / 255 : alpha.data[i]! >= 0.98 ? 1 : 0;
  await writeFile(join(outDir, `${name}.image.png`), await encodePng(image));
  await writeFile(join(outDir, `${name}.plate.png`), await encodePng(plate));
  await writeFile(join(outDir, `${name}.alpha.png`), await encodePng(alpha));
  await writeFile(join(outDir, `${name}.trimap.png`), await encodePng(trimap));
}

export function sample(big: ImageF32, m: number[], w: number, h: number): ImageF32 {
  return withMats((t) => {
    const c = cv();
    const src = t(new c.Mat(big.height, big.width, c.CV_32FC3));
    src.data32F.set(big.data);
    const dst = t(new c.Mat());
    c.warpPerspective(src, dst, t(c.matFromArray(3, 3, c.CV_64FC1, m)), new c.Size(w, h), c.INTER_LINEAR | c.WARP_INVERSE_MAP, c.BORDER_REFLECT);
    return { width: w, height: h, channels: 3, data: new Float32Array(dst.data32F) };
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { data: { type: 'string', default: '../shared/data' }, out: { type: 'string', default: 'bench/dev' }, seed: { type: 'string', default: '1' } } });
  const names = await buildDevBenchmark(values.data!, values.out!, Number(values.seed));
  console.log(`wrote ${names.length} items to ${values.out}`);
}
