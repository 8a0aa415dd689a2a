/**
 * Encoding at the pipeline's edge. Every file is written to a temporary name in the target folder
 * and renamed into place, so a crash never leaves a partial file under a final name, and an
 * `OutputSet` publishes several files only when all of them were written.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { CleanplateError } from '../errors.js';
import { rgbaBytes, toBytes, type ImageF32, type Plane } from '../image.js';
import { tempPath } from './folders.js';

function pngOf(bytes: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): Promise<Buffer> {
  return sharp(bytes, { raw: { width, height, channels } })
    .toColourspace(channels === 1 ? 'b-w' : 'srgb')
    .png({ compressionLevel: 6 })
    .toBuffer();
}

export async function encodePng(image: ImageF32): Promise<Buffer> {
  return pngOf(toBytes(image), image.width, image.height, image.channels as 1 | 3 | 4);
}

/**
 * The foreground as an RGBA PNG with straight (unpremultiplied) alpha, from 8-bit RGBA built
 * straight from the float image and plane (a float RGBA copy is 133 MB at 4K).
 */
export async function encodeRgbaPng(foreground: ImageF32, alpha: Plane): Promise<Buffer> {
  return pngOf(rgbaBytes(foreground, alpha), foreground.width, foreground.height, 4);
}

export class OutputSet {
  private readonly staged: { temp: string; final: string }[] = [];
  constructor(readonly dir: string) {}

  async add(name: string, bytes: Uint8Array | string): Promise<void> {
    const final = join(this.dir, name);
    const temp = tempPath(final);
    try {
      await writeFile(temp, bytes);
    } catch (err) {
      await rm(temp, { force: true });
      throw new CleanplateError(`cannot write output (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, final);
    }
    this.staged.push({ temp, final });
  }

  /** Renames every staged file into place. */
  async commit(): Promise<string[]> {
    for (const { temp, final } of this.staged) await rename(temp, final);
    const names = this.staged.map((s) => s.final);
    this.staged.length = 0;
    return names;
  }

  /** Removes every staged temporary file (after a failure). */
  async abort(): Promise<void> {
    await Promise.all(this.staged.map((s) => rm(s.temp, { force: true })));
    this.staged.length = 0;
  }
}
