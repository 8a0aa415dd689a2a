/** Reads an 8-bit (or 16-bit) grey, RGB or RGBA file as a single alpha plane (its first channel). */
import sharp from 'sharp';
import { CleanplateError } from '../errors.js';
import type { Plane } from '../image.js';

export async function readPlane(path: string): Promise<Plane> {
  try {
    const { data, info } = await sharp(path).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    const out = new Float32Array(info.width * info.height);
    for (let i = 0; i < out.length; i++) out[i] = data[i]! / 255;
    return { width: info.width, height: info.height, channels: 1, data: out };
  } catch (err) {
    throw new CleanplateError(`not a readable matte (${String((err as Error).message).split('\n')[0]})`, path);
  }
}
