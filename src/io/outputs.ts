/** Writes the CLI's contract outputs as one atomic set. */
import { performance } from 'node:perf_hooks';
import { peakRssMB } from '../memory.js';
import type { MatteResult } from '../photo.js';
import { encodePng, ensureWritableDir, OutputSet, rgba } from './encode.js';

export async function writeMatteOutputs(dir: string, result: MatteResult, extra: Record<string, unknown> = {}): Promise<string[]> {
  await ensureWritableDir(dir);
  const set = new OutputSet(dir);
  try {
    const t0 = performance.now();
    const files: [string, Buffer][] = [
      ['alpha.png', await encodePng(result.alpha)],
      ['foreground.png', await encodePng(rgba(result.foreground, result.alpha))],
    ];
    if (result.composite) files.push(['composite.png', await encodePng(result.composite)]);
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
