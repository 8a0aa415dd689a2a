/** The README's generated sections: the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`. */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../src/paths.js';

/** Replaces the text between `<!-- NAME:start -->` and `<!-- NAME:end -->` in the README. */
export async function updateReadme(name: string, text: string): Promise<void> {
  const path = join(PACKAGE_ROOT, 'README.md');
  const readme = await readFile(path, 'utf8');
  const re = new RegExp(`(<!-- ${name}:start -->\n)[\\s\\S]*?(\n<!-- ${name}:end -->)`);
  if (!re.test(readme)) throw new Error(`README.md has no ${name} markers`);
  await writeFile(path, readme.replace(re, (_m, a: string, b: string) => a + text + b));
}
