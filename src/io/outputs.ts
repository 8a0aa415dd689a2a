/** Writes the CLI's contract outputs as one atomic set. */
import { performance } from 'node:perf_hooks';
import { peakRssMB } from '../memory.js';
import type { MatteResult } from '../photo.js';
import { encodePng, encodeRgbaPng, OutputSet } from './encode.js';
import { ensureWritableDir } from './folders.js';

/**
 * The matte's PNGs (alpha, foreground as straight RGBA, the composite when there is one), named as
 * the CLI writes them; sharp compresses on libuv's pool, so all three at once keep both cores busy.
 */
export async function encodeMatteOutputs(result: MatteResult): Promise<[string, Buffer][]> {
  const [alpha, foreground, composite] = await Promise.all([
    encodePng(result.alpha), encodeRgbaPng(result.foreground, result.alpha), result.composite && encodePng(result.composite),
  ]);
  return [['alpha.png', alpha], ['foreground.png', foreground], ...(composite ? [['composite.png', composite] as [string, Buffer]] : [])];
}

export async function writeMatteOutputs(dir: string, result: MatteResult, extra: Record<string, unknown> = {}): Promise<string[]> {
  await ensureWritableDir(dir);
  const set = new OutputSet(dir);
  try {
    const t0 = performance.now();
    const files = await encodeMatteOutputs(result);
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
