/**
 * The plate check on two benchmark folders: how many right plates it refuses (must be none), how
 * many plates of another scene it refuses (each item paired with another item's plate), and the
 * confidence it reports, with the classic engine's SAD on the close-ups.
 *
 *   node dist/bench/plate-check.js [--dev bench/dev] [--closeup bench/dev-closeup] [--data ../shared/data] [--json]
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { resizeCover } from '../src/composite/index.js';
import { CleanplateError } from '../src/errors.js';
import { alphaMetrics } from '../src/eval/metrics.js';
import { binarizeTrimapUnknown } from '../src/eval/trimap.js';
import { decodeImage } from '../src/io/decode.js';
import { readPlane } from '../src/io/read-alpha.js';
import { createMatter, type Matter } from '../src/pipeline.js';
import { buildCloseupBenchmark } from './build-closeup.js';
import { buildDevBenchmark } from './build-dev.js';

export interface PlateCheckRow {
  set: string; items: number; rightRefused: string[]; wrongRefused: number; wrongTried: number;
  medianConfidence: number; warned: number; sad: number;
}

async function runSet(matter: Matter, dir: string, set: string): Promise<PlateCheckRow> {
  const names = (await readdir(dir)).filter((f) => f.endsWith('.image.png')).map((f) => f.slice(0, -'.image.png'.length)).sort();
  const row: PlateCheckRow = { set, items: names.length, rightRefused: [], wrongRefused: 0, wrongTried: 0, medianConfidence: 0, warned: 0, sad: 0 };
  const confidences: number[] = [];
  let sad = 0, scored = 0;
  for (const [k, name] of names.entries()) {
    const image = await decodeImage(join(dir, `${name}.image.png`));
    const plate = await decodeImage(join(dir, `${name}.plate.png`));
    try {
      const r = await matter.matte({ image, plate });
      confidences.push(r.report.plate.confidence ?? 0);
      if (r.report.plate.warnings.length) row.warned++;
      const gt = await readPlane(join(dir, `${name}.alpha.png`));
      const unknown = binarizeTrimapUnknown(await readPlane(join(dir, `${name}.trimap.png`)));
      sad += alphaMetrics(r.alpha, gt, unknown).sad; scored++;
    } catch (err) {
      if (!(err instanceof CleanplateError)) throw err;
      row.rightRefused.push(`${name}: ${err.message}`);
    }
    // Another scene: the next item's plate (another crop, mostly of another photograph), scaled to cover.
    const other = names[(k + 1) % names.length]!;
    const foreign = resizeCover(await decodeImage(join(dir, `${other}.plate.png`)), image.width, image.height);
    row.wrongTried++;
    try { await matter.matte({ image, plate: foreign }); } catch (err) {
      if (!(err instanceof CleanplateError)) throw err;
      row.wrongRefused++;
    }
  }
  confidences.sort((a, b) => a - b);
  row.medianConfidence = confidences.length ? confidences[confidences.length >> 1]! : 0;
  row.sad = scored ? +(sad / scored).toFixed(2) : NaN;
  return row;
}

export async function plateCheckBench(devDir: string, closeupDir: string, dataDir: string): Promise<PlateCheckRow[]> {
  if (!existsSync(devDir)) await buildDevBenchmark(dataDir, devDir);
  if (!existsSync(closeupDir)) await buildCloseupBenchmark(dataDir, closeupDir);
  const matter = await createMatter({ prior: 'rvm', engine: 'classic' });
  return [await runSet(matter, devDir, 'dev'), await runSet(matter, closeupDir, 'close-ups')];
}

export function plateCheckTable(rows: PlateCheckRow[]): string {
  return ['| set | items | right plates refused | other-scene plates refused | median confidence | warned | classic SAD |', '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.set} | ${r.items} | ${r.rightRefused.length} | ${r.wrongRefused} of ${r.wrongTried} | ${r.medianConfidence.toFixed(2)} | ${r.warned} | ${r.sad.toFixed(2)} |`)].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { dev: { type: 'string', default: 'bench/dev' }, closeup: { type: 'string', default: 'bench/dev-closeup' }, data: { type: 'string', default: '../shared/data' }, json: { type: 'boolean' } } });
  const rows = await plateCheckBench(values.dev!, values.closeup!, values.data!);
  console.log(values.json ? JSON.stringify(rows, null, 2) : plateCheckTable(rows));
  for (const r of rows) for (const line of r.rightRefused) console.log(`refused in ${r.set}: ${line}`);
}
