/** `cleanplate eval`: metrics of a folder of predicted mattes against the benchmark layout. */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CleanplateError } from '../errors.js';
import { readPlane } from '../io/read-alpha.js';
import { binarizeTrimapUnknown } from './trimap.js';
import { alphaMetrics, type AlphaMetrics } from './metrics.js';

export interface EvalResult {
  items: ({ name: string } & AlphaMetrics)[];
  mean: AlphaMetrics;
}

const KEYS: (keyof AlphaMetrics)[] = ['sad', 'mseUnknown', 'mad', 'mse', 'grad', 'conn'];

/**
 * Predictions are looked up as PRED/NAME/alpha.png (the CLI's output layout), PRED/NAME.alpha.png
 * or PRED/NAME.png; ground truth is GT/NAME.alpha.png with GT/NAME.trimap.png.
 */
export async function evaluateFolder(predDir: string, gtDir: string): Promise<EvalResult> {
  const entries = await readdir(gtDir).catch(() => { throw new CleanplateError('ground-truth folder not found', gtDir); });
  const names = entries.filter((f) => f.endsWith('.alpha.png')).map((f) => f.slice(0, -'.alpha.png'.length)).sort();
  if (!names.length) throw new CleanplateError('no NAME.alpha.png files in the ground-truth folder', gtDir);
  const items: EvalResult['items'] = [];
  for (const name of names) {
    const candidates = [join(predDir, name, 'alpha.png'), join(predDir, `${name}.alpha.png`), join(predDir, `${name}.png`)];
    let predPath: string | undefined;
    for (const c of candidates) if (await stat(c).then((s) => s.isFile(), () => false)) { predPath = c; break; }
    if (!predPath) throw new CleanplateError(`no prediction for '${name}' (looked for ${name}/alpha.png, ${name}.alpha.png, ${name}.png)`, predDir);
    const gt = await readPlane(join(gtDir, `${name}.alpha.png`));
    const pred = await readPlane(predPath);
    const trimapPath = join(gtDir, `${name}.trimap.png`);
    const unknown = await stat(trimapPath).then(() => readPlane(trimapPath), () => undefined);
    if (pred.width !== gt.width || pred.height !== gt.height) {
      throw new CleanplateError(`prediction is ${pred.width}x${pred.height}, ground truth ${gt.width}x${gt.height}`, predPath);
    }
    items.push({ name, ...alphaMetrics(pred, gt, unknown && binarizeTrimapUnknown(unknown)) });
  }
  const mean = Object.fromEntries(KEYS.map((k) => [k, items.reduce((s, it) => s + it[k], 0) / items.length])) as unknown as AlphaMetrics;
  return { items, mean };
}

export function formatTable(result: EvalResult): string {
  const head = `| name | SAD | MSE(U)×1e3 | MAD×1e3 | MSE×1e3 | Grad | Conn |\n|---|---|---|---|---|---|---|`;
  const row = (name: string, m: AlphaMetrics) => `| ${name} | ${KEYS.map((k) => m[k].toFixed(2)).join(' | ')} |`;
  return [head, ...result.items.map((it) => row(it.name, it)), row('**mean**', result.mean)].join('\n');
}
