/** The `cleanplate` command line. Errors meant for users print as one line and exit non-zero. */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CleanplateError, InterruptedError } from '../errors.js';
import { ensureWritableDir as ensureDir, removeEmptyDirs } from '../io/folders.js';
import type { MatterOptions } from '../pipeline.js';
import { PRIOR_NAMES, type PriorName } from '../prior/index.js';
import { PriorThreadKeeper } from '../prior/keeper.js';
import { Progress } from './progress.js';

/*
 * The modules a command needs beyond these are imported inside it, once its arguments are checked
 * and its prior thread started: the pipeline, sharp and OpenCV's glue take ~0.3 s to load (more on
 * a busy machine), and the prior thread's model loads meanwhile instead of after them.
 */
const pipeline = () => import('../pipeline.js');
const outputs = () => import('../io/outputs.js');

const USAGE = `cleanplate — background matting with a clean plate

  cleanplate matte IMAGE [--plate PLATE] --out DIR [--background FILE | --color HEX]
                   [--prior rvm|selfie|none] [--engine classic|refined|network] [--align auto|homography|none] [--json]
  cleanplate matte --pairs DIR --out DIR2 [same options]   (NAME_img.png + NAME_back.png)
  cleanplate video INPUT --plate PLATE|auto --out DIR [--background IMAGE|VIDEO | --color HEX] [--alpha-sequence]
                   [--format webm|prores|png] [--prior ...] [--engine ...] [--align ...] [--no-temporal] [--motion-stride T] [--json]
  cleanplate plate SOURCE... --out plate.png [--from SEC] [--to SEC] [--coverage-map FILE] [--prior ...] [--align ...] [--json]
                   (SOURCE: one video, or several photos; writes plate.png and plate.json)
  cleanplate eval --pred DIR --gt DIR [--json]
  cleanplate demo [--out DIR] [--json]
  cleanplate serve [--host 127.0.0.1] [--port 8080] [--data DIR] [--token-file F] [--redis URL] [--workers N]
                   [--max-upload-mb N] [--max-pixels N] [--max-seconds S] [--max-frames N] [--max-jobs-per-token N]
                   [--segment-seconds 5] [--threads N]
  cleanplate worker --redis URL [--data DIR] [--concurrency N] [--segment-seconds 5] [--threads N]
  cleanplate web [--port 8080] [--host 127.0.0.1] [--dir DIR]

Outputs: DIR/alpha.png, DIR/foreground.png (RGBA), DIR/composite.png (with --background/--color), DIR/report.json.
Video outputs: DIR/alpha.mp4 (grey H.264), DIR/foreground.webm (VP9 with alpha; --format prores: DIR/foreground.mov,
ProRes 4444 with alpha and audio; --format png: DIR/foreground/000001.png... RGBA), DIR/composite.mp4 (H.264 with the
input's audio, with --background/--color), DIR/alpha/000001.png... (--alpha-sequence), DIR/report.json.
Video needs ffmpeg on the PATH (Debian/Ubuntu: apt install ffmpeg; macOS: brew install ffmpeg).
serve: HTTP API (POST /v1/jobs, GET /v1/jobs/ID, /v1/jobs/ID/outputs/NAME, DELETE /v1/jobs/ID, /healthz, /metrics,
/openapi.json); jobs run in-process, or with --redis on \`cleanplate worker\` processes sharing the --data folder,
where a video of two segments or more (--segment-seconds, 0: never) is split at keyframes across workers.
--threads N caps each library's and ffmpeg's threads (for a worker pinned to N cores).
web: serves the browser app (live webcam matting, photos by drag and drop; everything runs in the browser) from
this package's dist/web (npm run build:web), with the cross-origin isolation headers WebAssembly threads need.`;

const MATTE_OPTIONS = {
  plate: { type: 'string' }, out: { type: 'string' }, background: { type: 'string' }, color: { type: 'string' },
  prior: { type: 'string' }, engine: { type: 'string' }, align: { type: 'string' }, json: { type: 'boolean' },
  pairs: { type: 'string' }, 'max-pixels': { type: 'string' },
} as const;

function matterOptions(v: { prior?: string; engine?: string; align?: string; 'max-pixels'?: string }, priorThreads?: PriorThreadKeeper): MatterOptions {
  return {
    prior: v.prior as MatterOptions['prior'], engine: v.engine as MatterOptions['engine'], align: v.align as MatterOptions['align'],
    ...(v['max-pixels'] ? { maxPixels: Number(v['max-pixels']) } : {}),
    ...(priorThreads ? { priorThreads } : {}),
  };
}

/**
 * The prior thread started before anything else: it loads the model's runtime and the model (~0.6 s for RVM)
 * while this thread loads its own libraries and decodes the inputs. Idle, it does not keep the
 * process alive.
 */
function warmPriorThread(prior: string | undefined): PriorThreadKeeper {
  const keeper = new PriorThreadKeeper();
  const name = (prior ?? 'rvm') as PriorName;
  if (PRIOR_NAMES.includes(name)) keeper.warm(name);
  return keeper;
}

/** Output folders this command created: a command that fails leaves none of them behind empty. */
const createdDirs: string[] = [];

async function ensureWritableDir(dir: string): Promise<void> {
  createdDirs.push(...(await ensureDir(dir)));
}

async function matteCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: MATTE_OPTIONS, allowPositionals: true });
  if (!values.out) throw new CleanplateError('--out DIR is required');
  if (values.background && values.color) throw new CleanplateError('give either --background or --color, not both');
  if (values.pairs) return mattePairs(values.pairs, values.out, values);
  if (positionals.length !== 1) throw new CleanplateError('expected exactly one IMAGE (or --pairs DIR)');
  refuseOverwritingInputs(values.out, ['alpha.png', 'foreground.png', 'composite.png', 'report.json'], [positionals[0], values.plate, values.background]);
  await ensureWritableDir(values.out);
  const threads = warmPriorThread(values.prior);
  const [{ createMatter }, { writeMatteOutputs }] = await Promise.all([pipeline(), outputs()]);
  const matter = await createMatter(matterOptions(values, threads));
  const result = await matter.matte({ image: positionals[0]!, plate: values.plate, background: values.background, color: values.color });
  await writeMatteOutputs(values.out, result, { input: { image: positionals[0], plate: values.plate ?? null } });
  warnPlate(values.plate, result.report.plate.warnings);
  if (values.json) process.stdout.write(JSON.stringify(result.report, null, 2) + '\n');
  else process.stderr.write(`wrote ${values.out}/alpha.png, foreground.png${result.composite ? ', composite.png' : ''}, report.json (${Object.entries(result.report.timings).map(([k, v]) => `${k} ${v} ms`).join(', ')})\n`);
}

/** The plate check's warnings as one line on stderr (they are in report.json too). */
function warnPlate(plate: string | undefined, warnings: string[]): void {
  if (plate && warnings.length) process.stderr.write(`cleanplate: warning: ${plate}: ${warnings.join('; ')}\n`);
}

/** Outputs replace files by renaming: an output named like an input would destroy that input. */
function refuseOverwritingInputs(out: string, names: string[], inputs: (string | undefined)[]): void {
  const given = inputs.filter((f): f is string => Boolean(f)).map((f) => resolve(f));
  for (const name of names) {
    if (given.includes(resolve(out, name))) throw new CleanplateError('an output would overwrite this input; choose another output folder', join(out, name));
  }
}

async function mattePairs(dir: string, out: string, values: Record<string, string | boolean | undefined>): Promise<void> {
  const files = await readdir(dir).catch(() => { throw new CleanplateError('pairs folder not found', dir); });
  const names = files.filter((f) => f.endsWith('_img.png')).map((f) => f.slice(0, -'_img.png'.length)).sort();
  if (!names.length) throw new CleanplateError('no NAME_img.png files', dir);
  for (const n of names) {
    if (!(await stat(join(dir, `${n}_back.png`)).then((s) => s.isFile(), () => false))) throw new CleanplateError(`${n}_img.png has no ${n}_back.png`, dir);
  }
  await ensureWritableDir(out);
  const threads = warmPriorThread(values.prior as string | undefined);
  const [{ createMatter }, { writeMatteOutputs }] = await Promise.all([pipeline(), outputs()]);
  const matter = await createMatter(matterOptions(values as Record<string, string>, threads));
  const progress = new Progress(names.length, Boolean(values.json));
  const reports = [];
  for (const [i, n] of names.entries()) {
    const result = await matter.matte({ image: join(dir, `${n}_img.png`), plate: join(dir, `${n}_back.png`), background: values.background as string | undefined, color: values.color as string | undefined });
    await ensureWritableDir(join(out, n));
    await writeMatteOutputs(join(out, n), result);
    reports.push({ name: n, ...result.report });
    warnPlate(join(dir, `${n}_back.png`), result.report.plate.warnings);
    progress.step(i + 1, n);
  }
  if (values.json) process.stdout.write(JSON.stringify(reports, null, 2) + '\n');
}

async function videoCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: { ...MATTE_OPTIONS, 'alpha-sequence': { type: 'boolean' }, 'no-temporal': { type: 'boolean' }, 'motion-stride': { type: 'string' }, format: { type: 'string' } },
  });
  if (positionals.length !== 1) throw new CleanplateError('expected exactly one INPUT video');
  if (!values.out) throw new CleanplateError('--out DIR is required');
  if (values.background && values.color) throw new CleanplateError('give either --background or --color, not both');
  const stride = values['motion-stride'] === undefined ? undefined : Number(values['motion-stride']);
  if (stride !== undefined && !(Number.isInteger(stride) && stride >= 1)) throw new CleanplateError(`--motion-stride '${values['motion-stride']}' is not a whole number of frames >= 1`);
  const format = values.format ?? 'webm';
  if (!['webm', 'prores', 'png'].includes(format)) throw new CleanplateError(`unknown --format '${format}' (webm, prores or png)`);
  const foreground = format === 'png' ? { foregroundSequence: join(values.out, 'foreground') } : { foreground: join(values.out, format === 'prores' ? 'foreground.mov' : 'foreground.webm') };
  refuseOverwritingInputs(values.out, ['alpha.mp4', 'foreground.webm', 'foreground.mov', 'foreground', 'composite.mp4', 'report.json', 'alpha'], [positionals[0], values.plate, values.background]);
  await ensureWritableDir(values.out);
  const out = values.out;
  // The prior thread starts loading its model now, while this thread loads its own libraries,
  // probes the video and reads the plate (about a second and a half of start-up overlapped).
  // Without temporal cues frames are matted as photos, and a photo's prior uses it too.
  const priorThreads = warmPriorThread(values.prior);
  const { createMatter } = await pipeline();
  const matter = await createMatter(matterOptions(values, priorThreads));
  const controller = new AbortController();
  const interrupt = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\ncleanplate: interrupted, cleaning up (Ctrl-C again to quit at once)\n');
    controller.abort();
  };
  process.on('SIGINT', interrupt);
  let progress: Progress | undefined;
  try {
    const report = await matter.matteVideo({
      input: positionals[0]!, plate: values.plate, background: values.background, color: values.color,
      temporal: !values['no-temporal'], motionStride: stride, signal: controller.signal,
      output: {
        alpha: join(out, 'alpha.mp4'), ...foreground,
        ...(values.background || values.color ? { composite: join(out, 'composite.mp4') } : {}),
        ...(values['alpha-sequence'] ? { alphaSequence: join(out, 'alpha') } : {}),
        report: join(out, 'report.json'),
      },
      onProgress: (p) => {
        progress ??= new Progress(p.frames, Boolean(values.json), 2000);
        progress.step(p.frame, `${p.fps.toFixed(2)} fps`);
      },
    });
    warnPlate(values.plate === 'auto' ? 'the plate built from the input' : values.plate, report.plate.warnings);
    if (report.autoPlate && !values.json) process.stderr.write(`built the plate from ${report.autoPlate.frames.used} frames of the input: background seen at ${(report.autoPlate.coverage * 100).toFixed(2)}% of the pixels (camera ${report.autoPlate.camera})\n`);
    if (values.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else process.stderr.write(`wrote ${report.outputs.join(', ')}: ${report.frames} frames at ${report.fps.toFixed(2)} fps (${(report.ioShare * 100).toFixed(1)}% waiting on ffmpeg)\n`);
  } finally {
    process.off('SIGINT', interrupt);
    void priorThreads.close();
  }
}

async function evalCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { pred: { type: 'string' }, gt: { type: 'string' }, json: { type: 'boolean' } } });
  if (!values.pred || !values.gt) throw new CleanplateError('eval needs --pred DIR and --gt DIR');
  const { evaluateFolder, formatTable, incompleteSummary } = await import('../eval/evaluate.js');
  const result = await evaluateFolder(values.pred, values.gt);
  process.stdout.write((values.json ? JSON.stringify(result, null, 2) : formatTable(result)) + '\n');
  // What was there is printed above; a missing or unscorable item still fails the command.
  const summary = incompleteSummary(result, values.pred);
  if (summary) throw new CleanplateError(summary);
}

async function demoCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { out: { type: 'string' }, json: { type: 'boolean' }, prior: { type: 'string' } } });
  const out = values.out ?? 'cleanplate-demo';
  await ensureWritableDir(out);
  const progress = new Progress(3, Boolean(values.json));
  progress.message('building a synthetic scene: textured background, a subject with 420 hair strands, a plate shot with a moved camera');
  const [{ loadCv }, { buildScene }, { alphaMetrics }, { createMatter }, { writeMatteOutputs }] = await Promise.all([import('../cv.js'), import('../demo/scene.js'), import('../eval/metrics.js'), pipeline(), outputs()]);
  await loadCv();
  const scene = buildScene();
  progress.step(1, 'scene built');
  const matter = await createMatter({ prior: (values.prior as MatterOptions['prior']) ?? 'rvm' });
  const result = await matter.matte({ image: scene.image, plate: scene.plate, color: '#30a050' });
  progress.step(2, 'matted');
  const metrics = alphaMetrics(result.alpha, scene.alpha);
  const noPlate = alphaMetrics((await matter.matte({ image: scene.image })).alpha, scene.alpha);
  await writeMatteOutputs(out, result, { demo: { metricsVsGroundTruth: metrics, priorOnlyMetrics: noPlate } });
  progress.step(3, 'written');
  const summary = { out, alignment: result.report.alignment?.method, inliers: result.report.alignment?.inliers, mad: metrics.mad, mse: metrics.mse, sadWholeImage: metrics.sad, priorOnly: { mad: noPlate.mad, mse: noPlate.mse } };
  if (values.json) process.stdout.write(JSON.stringify({ ...summary, report: result.report }, null, 2) + '\n');
  else {
    process.stdout.write(`demo written to ${out}/ (alpha.png, foreground.png, composite.png, report.json)\n`);
    process.stdout.write(`alignment: ${result.report.alignment?.method} with ${result.report.alignment?.inliers} inliers; colour gain ${result.report.colour?.gain.map((g) => g.toFixed(3)).join('/')}\n`);
    process.stdout.write(`error vs ground truth (whole image): MAD ${metrics.mad.toFixed(2)}e-3, MSE ${metrics.mse.toFixed(2)}e-3, SAD ${metrics.sad.toFixed(2)}; prior alone: MAD ${noPlate.mad.toFixed(2)}e-3, MSE ${noPlate.mse.toFixed(2)}e-3\n`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'matte': await matteCommand(rest); break;
      case 'video': await videoCommand(rest); break;
      case 'plate': await (await import('./plate.js')).plateCommand(rest, ensureWritableDir); break;
      case 'eval': await evalCommand(rest); break;
      case 'demo': await demoCommand(rest); break;
      case 'serve': await (await import('../service/cli.js')).serveCommand(rest); break;
      case 'worker': await (await import('../service/cli.js')).workerCommand(rest); break;
      case 'web': await (await import('./web.js')).webCommand(rest); break;
      case undefined: case '-h': case '--help': case 'help': process.stdout.write(USAGE + '\n'); return command ? 0 : 2;
      default: throw new CleanplateError(`unknown command '${command}' (matte, video, plate, eval, demo, serve, worker or web; see --help)`);
    }
    return 0;
  } catch (err) {
    await removeEmptyDirs(createdDirs);
    const e = err as Error & { code?: string };
    if (err instanceof InterruptedError) { process.stderr.write(`cleanplate: ${e.message}\n`); return 130; }
    if (err instanceof CleanplateError) process.stderr.write(`cleanplate: ${e.message}\n`);
    else if (e.code?.startsWith('ERR_PARSE_ARGS')) process.stderr.write(`cleanplate: ${e.message}\n`);
    else process.stderr.write(`cleanplate: unexpected failure: ${e.message}${process.env.CLEANPLATE_DEBUG ? `\n${e.stack}` : ' (set CLEANPLATE_DEBUG=1 for details)'}\n`);
    return 1;
  }
}
