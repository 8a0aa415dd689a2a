/** `cleanplate eval`: metrics of a folder of predicted mattes against the benchmark layout. */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CleanplateError } from '../errors.js';
import { readPlane } from '../io/read-alpha.js';
import { binarizeTrimapUnknown } from './trimap.js';
import { alphaMetrics, type AlphaMetrics } from './metrics.js';

export interface EvalResult {
  /** The items that were scored, in name order. */
  items: ({ name: string } & AlphaMetrics)[];
  /** Mean over the scored items only (`count` of them); null when none could be scored. */
  mean: AlphaMetrics | null;
  count: number;
  /** Ground-truth items in all (scored + missing + failed). */
  total: number;
  /** Ground-truth items with no prediction, and the paths that were tried. */
  missing: { name: string; lookedFor: string[] }[];
  /** Items whose prediction or ground truth could not be scored (unreadable, wrong size). */
  failed: { name: string; file: string; reason: string }[];
}

const KEYS: (keyof AlphaMetrics)[] = ['sad', 'mseUnknown', 'mad', 'mse', 'grad', 'conn'];

const isFile = (path: string) => stat(path).then((s) => s.isFile(), () => false);

/** A CleanplateError's message without its `file: ` prefix (the file is reported separately). */
function reasonOf(err: unknown, file: string): string {
  const message = String((err as Error)?.message ?? err).split('\n')[0]!;
  return message.startsWith(`${file}: `) ? message.slice(file.length + 2) : message;
}

/**
 * Scores what is there, like the field's benchmark scripts: every ground-truth item with a
 * prediction is scored; items without one are listed in `missing`, items that cannot be scored
 * (unreadable file, size mismatch) in `failed`, and `mean` is over the scored items. Throws only
 * when a folder is unusable or no prediction exists at all. Callers that need a complete run
 * (the benchmark) check `missing` and `failed`, or use `assertComplete`.
 *
 * Predictions are looked up as PRED/NAME/alpha.png (the CLI's output layout), PRED/NAME.alpha.png
 * or PRED/NAME.png; ground truth is GT/NAME.alpha.png with GT/NAME.trimap.png.
 */
export async function evaluateFolder(predDir: string, gtDir: string): Promise<EvalResult> {
  const entries = await readdir(gtDir).catch(() => { throw new CleanplateError('ground-truth folder not found', gtDir); });
  const names = entries.filter((f) => f.endsWith('.alpha.png')).map((f) => f.slice(0, -'.alpha.png'.length)).sort();
  if (!names.length) throw new CleanplateError('no NAME.alpha.png files in the ground-truth folder', gtDir);
  if (!(await stat(predDir).then((s) => s.isDirectory(), () => false))) throw new CleanplateError('prediction folder not found', predDir);
  const result: EvalResult = { items: [], mean: null, count: 0, total: names.length, missing: [], failed: [] };
  for (const name of names) {
    const candidates = [join(predDir, name, 'alpha.png'), join(predDir, `${name}.alpha.png`), join(predDir, `${name}.png`)];
    let predPath: string | undefined;
    for (const c of candidates) if (await isFile(c)) { predPath = c; break; }
    if (!predPath) { result.missing.push({ name, lookedFor: candidates }); continue; }
    let current = join(gtDir, `${name}.alpha.png`);
    try {
      const gt = await readPlane(current);
      current = predPath;
      const pred = await readPlane(predPath);
      if (pred.width !== gt.width || pred.height !== gt.height) throw new Error(`prediction is ${pred.width}x${pred.height}, ground truth ${gt.width}x${gt.height}`);
      current = join(gtDir, `${name}.trimap.png`);
      let unknown;
      if (await isFile(current)) {
        const trimap = await readPlane(current);
        if (trimap.width !== gt.width || trimap.height !== gt.height) throw new Error(`trimap is ${trimap.width}x${trimap.height}, ground truth ${gt.width}x${gt.height}`);
        unknown = binarizeTrimapUnknown(trimap);
      }
      result.items.push({ name, ...alphaMetrics(pred, gt, unknown) });
    } catch (err) {
      const file = current;
      result.failed.push({ name, file, reason: reasonOf(err, file) });
    }
  }
  if (result.missing.length === names.length) {
    throw new CleanplateError(`no predictions found for any of the ${names.length} ground-truth items (looked for NAME/alpha.png, NAME.alpha.png, NAME.png)`, predDir);
  }
  result.count = result.items.length;
  if (result.count) {
    result.mean = Object.fromEntries(KEYS.map((k) => [k, result.items.reduce((s, it) => s + it[k], 0) / result.count])) as unknown as AlphaMetrics;
  }
  return result;
}

/** One line saying what was not scored, or undefined when every item was. */
export function incompleteSummary(result: EvalResult, predDir: string): string | undefined {
  if (!result.missing.length && !result.failed.length) return undefined;
  const list = (names: string[]) => names.slice(0, 5).join(', ') + (names.length > 5 ? `, … (${names.length - 5} more)` : '');
  const parts = [];
  if (result.missing.length) parts.push(`${result.missing.length} of ${result.total} predictions missing (${list(result.missing.map((m) => m.name))})`);
  if (result.failed.length) parts.push(`${result.failed.length} could not be scored (${list(result.failed.map((f) => f.name))})`);
  return `${predDir}: ${parts.join('; ')}; scored ${result.count} of ${result.total}`;
}

/** For callers that need every item scored (the benchmark): throws the summary otherwise. */
export function assertComplete(result: EvalResult, predDir: string): asserts result is EvalResult & { mean: AlphaMetrics } {
  const summary = incompleteSummary(result, predDir);
  if (summary || !result.mean) throw new CleanplateError(summary ?? 'nothing was scored', summary ? undefined : predDir);
}

export function formatTable(result: EvalResult): string {
  const head = `| name | SAD | MSE(U)×1e3 | MAD×1e3 | MSE×1e3 | Grad | Conn |\n|---|---|---|---|---|---|---|`;
  const row = (name: string, m: AlphaMetrics) => `| ${name} | ${KEYS.map((k) => m[k].toFixed(2)).join(' | ')} |`;
  const lines = [head, ...result.items.map((it) => row(it.name, it))];
  lines.push(result.mean ? row('**mean**', result.mean) : `| **mean** | ${KEYS.map(() => 'n/a').join(' | ')} |`);
  if (result.missing.length || result.failed.length) {
    lines.push('', `scored ${result.count} of ${result.total} items; the mean is over the scored ones`);
    for (const m of result.missing) lines.push(`missing: ${m.name} (looked for ${m.lookedFor.join(', ')})`);
    for (const f of result.failed) lines.push(`failed: ${f.name}: ${f.file}: ${f.reason}`);
  }
  return lines.join('\n');
}
