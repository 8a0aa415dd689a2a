/** Writes the CLI's contract outputs as one atomic set. */
import { performance } from 'node:perf_hooks';
import { peakRssMB } from '../memory.js';
import type { MatteResult } from '../photo.js';
import { encodePng, encodeRgbaPng, ensureWritableDir, OutputSet } from './encode.js';

export async function writeMatteOutputs(dir: string, result: MatteResult, extra: Record<string, unknown> = {}): Promise<string[]> {
  await ensureWritableDir(dir);
  const set = new OutputSet(dir);
  try {
    const t0 = performance.now();
    // sharp compresses on libuv's pool: the three PNGs at once keep both cores busy.
    const files: [string, Buffer][] = await Promise.all([
      encodePng(result.alpha).then((b): [string, Buffer] => ['alpha.png', b]),
      encodeRgbaPng(result.foreground, result.alpha).then((b): [string, Buffer] => ['foreground.png', b]),
      ...(result.composite ? [encodePng(result.composite).then((b): [string, Buffer] => ['composite.png', b])] : []),
    ]);
    result.report.timings.encode = +(performance.now() - t0).toFixed(1);
    result.report.peakRssMb = peakRssMB();
    for (const [name, bytes] of files) await set.add(name, bytes);
    await set.add('report.json', JSON.stringify({ ...result.report, ...extra }, null, 2) + '\n');
    return await set.commit();
  } catch (err) {
    await set.abort();
    throw err;
  }
}
