/**
 * Output folders and temporary names, on Node's file system alone: the command line checks its
 * output folder before it loads the heavier libraries (sharp, the pipeline), which its prior
 * thread's start then does not wait behind.
 */
import { mkdir, rmdir, access, constants } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CleanplateError } from '../errors.js';

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
