import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from dist/test). */
export const ROOT = resolve(fileURLToPath(new URL('../../', import.meta.url)));
export const BIN = join(ROOT, 'bin', 'cleanplate.js');
/** Evaluation data beside the checkout, or where CLEANPLATE_DATA points. */
export const DATA = process.env.CLEANPLATE_DATA ?? resolve(ROOT, '..', 'shared', 'data');
export const HAS_DATA = existsSync(join(DATA, 'bgm-samples', 'input', '0001_img.png'));

export function tempDir(prefix = 'cleanplate-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}
