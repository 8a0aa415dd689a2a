/**
 * Contact sheet of every method on the real hand-held captures (bgm-samples): per row one capture;
 * columns: input, the alpha of each method, and the first method's composite onto a new background.
 * There is no ground truth for these captures: the sheet is for looking, not scoring.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';
import { toBytes, type ImageF32, type Plane } from '../src/image.js';
import { decodeImage } from '../src/io/decode.js';
import { composite, resizeCover } from '../src/composite/index.js';
import { resize } from '../src/ops.js';

export interface SheetMethod { label: string; run: (image: ImageF32, plate: ImageF32) => Promise<{ alpha: Plane; foreground?: ImageF32 }> }

const TILE_W = 320, TILE_H = 180, LABEL_H = 28;

async function tile(image: ImageF32): Promise<Buffer> {
  const small = resize(image, TILE_W, TILE_H);
  return sharp(toBytes(small), { raw: { width: TILE_W, height: TILE_H, channels: small.channels as 1 | 3 } }).toColourspace('srgb').png().toBuffer();
}

function label(text: string): Buffer {
  const esc = text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${TILE_W}" height="${LABEL_H}"><rect width="100%" height="100%" fill="white"/><text x="6" y="19" font-family="sans-serif" font-size="14">${esc}</text></svg>`);
}

export async function contactSheet(dataDir: string, methods: SheetMethod[], out: string): Promise<void> {
  const input = join(dataDir, 'bgm-samples', 'input');
  const names = (await readdir(input)).filter((f) => f.endsWith('_img.png')).map((f) => f.slice(0, -8)).sort();
  const background = await decodeImage(join(dataDir, 'bgm-samples', 'background', '0002.png'));
  const cols = 2 + methods.length;
  const layers: OverlayOptions[] = [];
  const headers = ['input', ...methods.map((m) => `alpha: ${m.label}`), `composite: ${methods[0]!.label}`];
  headers.forEach((h, c) => layers.push({ input: label(h), left: c * TILE_W, top: 0 }));
  for (const [r, name] of names.entries()) {
    const image = await decodeImage(join(input, `${name}_img.png`));
    const plate = await decodeImage(join(input, `${name}_back.png`));
    const top = LABEL_H + r * TILE_H;
    layers.push({ input: await tile(image), left: 0, top });
    let first: { alpha: Plane; foreground?: ImageF32 } | undefined;
    for (const [c, m] of methods.entries()) {
      const res = await m.run(image, plate);
      first ??= res;
      layers.push({ input: await tile(res.alpha), left: (c + 1) * TILE_W, top });
    }
    const comp = composite(first!.foreground ?? image, first!.alpha, resizeCover(background, image.width, image.height));
    layers.push({ input: await tile(comp), left: (cols - 1) * TILE_W, top });
  }
  await sharp({ create: { width: cols * TILE_W, height: LABEL_H + names.length * TILE_H, channels: 3, background: '#ffffff' } })
    .composite(layers).jpeg({ quality: 85 }).toFile(out);
}
