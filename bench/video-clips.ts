/**
 * Video clips with ground truth from the evaluation data: an alphamatting object (real hair and
 * fur alpha) slides across a crop of a real photograph, filmed from a tripod with sensor noise and
 * encoded to H.264 like a phone would; the plate is the empty crop with another exposure and noise.
 */
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gaussian, rng } from '../src/demo/scene.js';
import { createImage, createPlane, toBytes, type ImageF32, type Plane } from '../src/image.js';
import { decodeImage } from '../src/io/decode.js';
import { encodePng } from '../src/io/encode.js';
import { readPlane } from '../src/io/read-alpha.js';
import { resize } from '../src/ops.js';

export interface DataClip { name: string; input: string; plate: string; alphas: Plane[] }

/** `heightShare`: the object's height as a share of the frame's; `step`: px a frame (it stops at the frame's side). */
export async function buildDataClip(dataDir: string, object: string, background: string, outDir: string, frames = 16, width = 960, height = 540, seed = 3,
  heightShare = 0.8, step = 6, suffix = ''): Promise<DataClip> {
  const random = rng(seed);
  const fgFull = await decodeImage(join(dataDir, 'alphamatting-dev', 'image', `${object}.png`));
  const alphaFull = await readPlane(join(dataDir, 'alphamatting-dev', 'alpha', `${object}.png`));
  const scale = (heightShare * height) / fgFull.height;
  const fw = Math.round(fgFull.width * scale), fh = Math.round(fgFull.height * scale);
  const fg = resize(fgFull, fw, fh), alpha = resize(alphaFull, fw, fh) as Plane;
  const big = await decodeImage(join(dataDir, background));
  const bg = resize(big, width, height);
  const gain = [0.95, 1.03, 0.98], bias = [0.02, -0.01, 0.0];
  const plate = createImage(width, height, 3);
  for (let i = 0; i < plate.data.length; i++) plate.data[i] = Math.min(1, Math.max(0, gain[i % 3]! * bg.data[i]! + bias[i % 3]! + 0.008 * gaussian(random)));
  const alphas: Plane[] = [], raw: Uint8Array[] = [];
  const y0 = height - fh, travel = Math.min(width - fw, step * frames);
  for (let t = 0; t < frames; t++) {
    const x0 = Math.round((width - fw - travel) / 2 + (travel * t) / Math.max(1, frames - 1));
    const a = createPlane(width, height), image = createImage(width, height, 3);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
      const p = y * width + x, fx = x - x0, fy = y - y0;
      const inside = fx >= 0 && fy >= 0 && fx < fw && fy < fh;
      const av = inside ? alpha.data[fy * fw + fx]! : 0;
      a.data[p] = av;
      for (let c = 0; c < 3; c++) {
        const f = inside ? fg.data[(fy * fw + fx) * 3 + c]! : 0;
        image.data[p * 3 + c] = Math.min(1, Math.max(0, av * f + (1 - av) * bg.data[p * 3 + c]! + 0.008 * gaussian(random)));
      }
    }
    alphas.push(a);
    raw.push(toBytes(image));
  }
  const input = join(outDir, `${object}${suffix}.mp4`), platePath = join(outDir, `${object}${suffix}.plate.png`);
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-framerate', '30', '-i', 'pipe:0',
    '-c:v', 'libx264', '-preset', 'medium', ...(process.env.CLIP_CODEC ? process.env.CLIP_CODEC.split(' ') : ['-crf', '18', '-pix_fmt', 'yuv420p']), input], { input: Buffer.concat(raw), maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(String(r.stderr));
  await writeFile(platePath, await encodePng(plate as ImageF32));
  return { name: object, input, plate: platePath, alphas };
}
