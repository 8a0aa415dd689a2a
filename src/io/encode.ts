/**
 * Encoding at the pipeline's edge. Every file is written to a temporary name in the target folder
 * and renamed into place, so a crash never leaves a partial file under a final name, and an
 * `OutputSet` publishes several files only when all of them were written.
 */
import { mkdir, rename, rm, rmdir, writeFile, access, constants } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { CleanplateError } from '../errors.js';
import { rgbaBytes, toBytes, type ImageF32, type Plane } from '../image.js';

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

/**
 * Checks up front that a folder can be created and written, so no work is wasted. Returns the
 * folders it created, outermost first (removeEmptyDirs takes them back after a failure).
 */
export async function ensureWritableDir(dir: string): Promise<string[]> {
  try {
    const first = await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
    return first ? createdBetween(first, resolve(dir)) : [];
  } catch (err) {
    throw new CleanplateError(`output folder is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, dir);
  }
}

/** `first` (the outermost folder mkdir made) and each folder below it down to `dir`. */
function createdBetween(first: string, dir: string): string[] {
  const out: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    out.unshift(d);
    if (d === first || dirname(d) === d) return out;
  }
}

/** Removes those of `dirs` (outermost first, as ensureWritableDir gives them) that are empty, innermost first; folders that hold anything stay. */
export async function removeEmptyDirs(dirs: string[]): Promise<void> {
  for (const d of [...dirs].reverse()) await rmdir(d).catch(() => undefined);
}

/** A temporary name beside `final`, so that the rename into place stays on one file system. */
export function tempPath(final: string): string {
  return join(dirname(final), `.tmp-${process.pid}-${Date.now()}-${basename(final)}`);
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
