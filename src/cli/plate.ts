/** `cleanplate plate SOURCE… --out plate.png`: a clean plate built from a video or a burst of photos. */
import { rename, rm, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { AlignMode } from '../align/homography.js';
import { loadCv } from '../cv.js';
import { CleanplateError } from '../errors.js';
import { DEFAULT_MAX_PIXELS } from '../io/decode.js';
import { encodePng } from '../io/encode.js';
import { ensureWritableDir, tempPath } from '../io/folders.js';
import { neverSeenPlane } from '../plate/build.js';
import { buildPlate } from '../plate/source.js';
import { createPrior, PRIOR_NAMES, type PriorName } from '../prior/index.js';

function seconds(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!(Number.isFinite(v) && v >= 0)) throw new CleanplateError(`${flag} '${text}' is not a time in seconds`);
  return v;
}

/** Writes files under temporary names first and renames them into place together. */
async function publish(files: [string, Uint8Array | string][]): Promise<void> {
  const staged: [string, string][] = [];
  try {
    for (const [final, bytes] of files) {
      const temp = tempPath(final);
      staged.push([temp, final]);
      await writeFile(temp, bytes);
    }
  } catch (err) {
    await Promise.all(staged.map(([t]) => rm(t, { force: true })));
    throw new CleanplateError(`cannot write output (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, staged.at(-1)?.[1]);
  }
  for (const [temp, final] of staged) await rename(temp, final);
}

/** `ensureDir` makes the output files' folders (the CLI's own records what it made, to take it back after a failure). */
export async function plateCommand(args: string[], ensureDir: (dir: string) => Promise<unknown> = ensureWritableDir): Promise<void> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: {
      out: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, 'coverage-map': { type: 'string' }, json: { type: 'boolean' },
      prior: { type: 'string' }, align: { type: 'string' }, 'max-pixels': { type: 'string' }, 'max-frames': { type: 'string' },
    },
  });
  if (!positionals.length) throw new CleanplateError('expected a video, or several photos, to build the plate from');
  if (!values.out) throw new CleanplateError('--out plate.png is required');
  if (!/\.png$/i.test(values.out)) throw new CleanplateError('--out must name a .png file (the plate is written lossless)', values.out);
  const priorName = (values.prior ?? 'rvm') as PriorName;
  if (!PRIOR_NAMES.includes(priorName)) throw new CleanplateError(`unknown prior '${priorName}' (rvm, selfie or none)`);
  const align = (values.align ?? 'auto') as AlignMode;
  if (!['auto', 'homography', 'none'].includes(align)) throw new CleanplateError(`unknown alignment '${align}' (auto, homography or none)`);
  const maxFrames = values['max-frames'] === undefined ? undefined : Number(values['max-frames']);
  if (maxFrames !== undefined && !(Number.isInteger(maxFrames) && maxFrames >= 2)) throw new CleanplateError(`--max-frames '${values['max-frames']}' is not a whole number >= 2`);
  const report = values.out.replace(/\.png$/i, '.json');
  const outputs = [values.out, report, values['coverage-map']].filter((f): f is string => Boolean(f));
  const inputs = positionals.map((f) => resolve(f));
  for (const f of outputs) {
    if (inputs.includes(resolve(f))) throw new CleanplateError('an output would overwrite this input; choose another name', f);
    await ensureDir(dirname(f));
  }
  await loadCv();
  const prior = await createPrior(priorName);
  const built = await buildPlate({
    sources: positionals, prior, priorName, align, maxPixels: values['max-pixels'] ? Number(values['max-pixels']) : DEFAULT_MAX_PIXELS,
    from: seconds('--from', values.from), to: seconds('--to', values.to), ...(maxFrames ? { maxFrames } : {}),
  });
  const { width, height } = built.report;
  // The map is written even when the plate is refused: it shows where the hole is.
  if (values['coverage-map']) await publish([[values['coverage-map'], await encodePng(neverSeenPlane(width, height, built.seen))]]);
  if (built.insufficient) throw new CleanplateError(built.insufficient, positionals.length === 1 ? positionals[0] : undefined);
  await publish([[values.out, await encodePng(built.plate)], [report, JSON.stringify(built.report, null, 2) + '\n']]);
  if (values.json) process.stdout.write(JSON.stringify(built.report, null, 2) + '\n');
  else {
    const r = built.report;
    process.stderr.write(`wrote ${values.out} and ${report}: background seen at ${(r.coverage * 100).toFixed(2)}% of the pixels over ${r.frames.used} frames (camera ${r.camera}${r.frames.dropped ? `, ${r.frames.dropped} frames not aligned and left out` : ''})\n`);
  }
}
