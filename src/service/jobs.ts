/**
 * A service job: its record, its options, and the one function that runs it. Every way of running
 * jobs (in-process threads, `cleanplate worker` on BullMQ) calls `runJob`, which calls the same
 * `createMatter().matte` / `matteVideo` and `writeMatteOutputs` as the CLI, so outputs are the CLI's.
 */
import { copyFile, link, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CleanplateError, InterruptedError } from '../errors.js';
import { tempPath } from '../io/folders.js';
import { writeMatteOutputs } from '../io/outputs.js';
import { probeFrames, probeVideo } from '../io/video-probe.js';
import { createMatter, type Matter } from '../pipeline.js';
import type { AlignMode } from '../align/homography.js';
import type { EngineName } from '../matte/engine.js';
import type { PriorName } from '../prior/index.js';
import { joinParts, joinReports, type PartKind } from '../video/join.js';
import { SEGMENT_WARMUP, type VideoOutputs, type VideoReport } from '../video/matte-video.js';
import { PriorThreadKeeper } from '../prior/keeper.js';
import { splitAtKeyframes, type SegmentPlan } from './segments.js';
import { storageError, storageProblem, type JobStore } from './store.js';

export type JobState = 'queued' | 'active' | 'completed' | 'failed';
export type JobKind = 'image' | 'video';

export interface JobOptions {
  prior: PriorName;
  engine: EngineName;
  align: AlignMode;
  color?: string;
  /** Video only: temporal cues (default on) and the motion stack's stride. */
  temporal?: boolean;
  motionStride?: number;
  /** Video only: also a folder of 8-bit alpha PNGs, `alpha/000001.png` … (as `--alpha-sequence`). */
  alphaSequence?: boolean;
  maxPixels: number;
}

export interface StoredInput { file: string; bytes: number; kind: JobKind; width: number; height: number; frames?: number; fps?: number }

export interface JobProgress { framesDone: number; framesTotal: number; fps: number; etaSeconds: number | null }

export interface JobRecord {
  id: string;
  kind: JobKind;
  /** A hash of the token that created the job ('anonymous' without tokens). */
  owner: string;
  state: JobState;
  options: JobOptions;
  inputs: { input: StoredInput; plate?: StoredInput; background?: StoredInput };
  progress: JobProgress;
  error: string | null;
  outputs: string[];
  /** Hash of the client's idempotency key, if one was given. */
  keyHash?: string;
  attempts: number;
  createdAt: string;
  updatedAt: string;
}

/** The outputs a job can have, by name, with their content types (the CLI's file names). */
export const OUTPUT_TYPES: Record<string, string> = {
  'alpha.png': 'image/png',
  'foreground.png': 'image/png',
  'composite.png': 'image/png',
  'report.json': 'application/json',
  'alpha.mp4': 'video/mp4',
  'foreground.webm': 'video/webm',
  'composite.mp4': 'video/mp4',
};

/** Option fields of POST /v1/jobs, as strings in a multipart body (the CLI's option names). */
export const OPTION_FIELDS = {
  prior: { type: 'string', enum: ['rvm', 'selfie', 'none'], default: 'rvm', description: 'person prior (as --prior)' },
  engine: { type: 'string', enum: ['classic', 'refined', 'network'], default: 'classic', description: 'matting engine (as --engine)' },
  align: { type: 'string', enum: ['auto', 'homography', 'none'], default: 'auto', description: 'plate alignment (as --align)' },
  color: { type: 'string', pattern: '^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$', description: 'composite onto this colour (as --color); not with a background' },
  temporal: { type: 'boolean', default: true, description: 'video: temporal cues (false = as --no-temporal)' },
  'motion-stride': { type: 'integer', minimum: 1, maximum: 1000, description: 'video: T of the motion stack (as --motion-stride)' },
  'alpha-sequence': { type: 'boolean', default: false, description: 'video: also lossless alpha PNGs, one per frame, as outputs alpha/000001.png … (as --alpha-sequence)' },
} as const;

export const FILE_FIELDS = ['input', 'plate', 'background'] as const;
export type FileField = (typeof FILE_FIELDS)[number];

export interface RunHooks {
  signal?: AbortSignal;
  onProgress?: (p: JobProgress) => void;
}

const matters = new Map<string, Promise<Matter>>();
/** The video prior's thread, kept across this job thread's videos and segments (its model loads once). */
export const priorThreads = new PriorThreadKeeper();

/** Models load once per process (per worker thread) and per option set; the video prior's thread once per prior. */
function matterFor(o: JobOptions): Promise<Matter> {
  const key = `${o.prior}/${o.engine}/${o.align}/${o.maxPixels}`;
  let m = matters.get(key);
  if (!m) {
    m = createMatter({ prior: o.prior, engine: o.engine, align: o.align, maxPixels: o.maxPixels, priorThreads });
    matters.set(key, m);
    m.catch(() => matters.delete(key));
  }
  return m;
}

/** Messages name the upload by its field, never by the server's path. */
export function scrubPaths(message: string, paths: Record<string, string>): string {
  let m = message;
  for (const [name, path] of Object.entries(paths)) m = m.split(path).join(name);
  return m.replace(/\/[^\s:'"]*\/jobs\/[A-Za-z0-9_-]{22}\/[^\s:'"]*/g, (p) => p.split('/').pop() ?? 'file');
}

/**
 * What one run of the job code does. A whole job (`whole`); or, for a video split across workers,
 * its three steps: `plan` (the colour pass and the cuts, once; a video too short to split is run
 * whole right there), `segment` (one segment's parts), `join` (the parts joined and published).
 */
export type JobTask =
  | { kind: 'whole' }
  | { kind: 'plan'; segmentSeconds: number }
  | { kind: 'segment'; segment: number }
  | { kind: 'join' };

/** `outputs` once the job's outputs are published; `segments` (frames of each) when `plan` split the video. */
export interface TaskResult { outputs?: string[]; segments?: number[] }

/** The names of a video job's outputs (the CLI's). */
function videoOutputs(dir: string, o: JobOptions, composite: boolean): VideoOutputs {
  return {
    alpha: join(dir, 'alpha.mp4'), foreground: join(dir, 'foreground.webm'),
    ...(composite ? { composite: join(dir, 'composite.mp4') } : {}),
    ...(o.alphaSequence ? { alphaSequence: join(dir, 'alpha') } : {}),
    report: join(dir, 'report.json'),
  };
}

interface Loaded { record: JobRecord; paths: Record<string, string> }

/** The job's record and its inputs' local paths. */
async function load(store: JobStore, id: string, hooks: RunHooks): Promise<Loaded> {
  const record = await store.readRecord(id);
  if (!record) throw new InterruptedError();
  const paths: Record<string, string> = {};
  for (const name of ['input', 'plate', 'background'] as const) {
    const input = record.inputs[name];
    if (input) paths[name] = await store.localInput(id, input.file);
  }
  if (hooks.signal?.aborted) throw new InterruptedError();
  return { record, paths };
}

/** The record, paths and the models of the job's options (loaded once per thread). */
async function loadWithModels(store: JobStore, id: string, hooks: RunHooks): Promise<Loaded & { matter: Matter }> {
  try {
    const loaded = await load(store, id, hooks);
    const matter = await matterFor(loaded.record.options);
    if (hooks.signal?.aborted) throw new InterruptedError();
    return { ...loaded, matter };
  } catch (err) {
    throw jobFailure(store, err, {});
  }
}

/**
 * The error a job fails with: store paths named by what they are, and a storage problem (disk
 * full, read-only, permissions) as one line naming the store and the problem in plain words.
 */
function jobFailure(store: JobStore, err: unknown, paths: Record<string, string>, staging?: string): Error {
  if (err instanceof InterruptedError) return err;
  const original = (err as Error).message ?? String(err);
  if (!original.startsWith(`store ${store.where}:`)) {
    const problem = storageProblem(err);
    if (problem) {
      const writing = ['ENOSPC', 'EDQUOT', 'EROFS'].includes(problem) || (staging !== undefined && original.includes(staging)) || /encoding|write|output/i.test(original);
      return storageError(store.where, writing ? 'write the outputs' : 'read the job\'s files', problem);
    }
  }
  let message = scrubPaths(original, paths);
  if (staging) message = message.replaceAll(staging, 'outputs');
  return err instanceof CleanplateError ? new CleanplateError(message) : new Error(message);
}

/** Cancelled while running: the record is gone (or the signal fired); nothing is published. */
async function checkCancelled(store: JobStore, id: string, hooks: RunHooks): Promise<void> {
  if (hooks.signal?.aborted || !(await store.readRecord(id))) throw new InterruptedError();
}

const videoProgress = (hooks: RunHooks) => (p: { frame: number; frames: number; fps: number; etaSeconds: number }) =>
  hooks.onProgress?.({ framesDone: p.frame, framesTotal: p.frames, fps: +p.fps.toFixed(3), etaSeconds: +p.etaSeconds.toFixed(1) });

/** Runs one step of a job (see JobTask). Every way of running jobs calls this. */
export async function runTask(store: JobStore, id: string, task: JobTask, hooks: RunHooks = {}): Promise<TaskResult> {
  switch (task.kind) {
    case 'whole': return { outputs: await runJob(store, id, hooks) };
    case 'plan': return planJob(store, id, task.segmentSeconds, hooks);
    case 'segment': await runSegment(store, id, task.segment, hooks); return {};
    case 'join': return { outputs: await joinJob(store, id, hooks) };
  }
}

/**
 * Runs one job to published outputs. Idempotent: a run that dies part-way leaves only its staging
 * folder, and a second run publishes the same files. Throws InterruptedError when cancelled
 * (the signal, or the record removed from the store).
 */
export async function runJob(store: JobStore, id: string, hooks: RunHooks = {}): Promise<string[]> {
  const { record, paths, matter } = await loadWithModels(store, id, hooks);
  const o = record.options;
  let staging: string | undefined;
  try {
    staging = await store.createStaging(id);
    if (record.kind === 'image') {
      const result = await matter.matte({ image: paths.input!, plate: paths.plate, background: paths.background, color: o.color });
      if (hooks.signal?.aborted) throw new InterruptedError();
      await writeMatteOutputs(staging, result, { input: { image: 'input', plate: paths.plate ? 'plate' : null }, job: id });
      hooks.onProgress?.({ framesDone: 1, framesTotal: 1, fps: 0, etaSeconds: 0 });
    } else {
      await matter.matteVideo({
        input: paths.input!, plate: paths.plate, background: paths.background, color: o.color,
        temporal: o.temporal ?? true, motionStride: o.motionStride, signal: hooks.signal,
        output: videoOutputs(staging, o, paths.background !== undefined || o.color !== undefined),
        onProgress: videoProgress(hooks),
      });
    }
    await checkCancelled(store, id, hooks);
    return await store.publish(id, staging);
  } catch (err) {
    if (staging) await store.discardStaging(staging);
    throw jobFailure(store, err, paths, staging);
  }
}

/**
 * A video job's first step in distributed mode: the colour pass over the whole video and the cuts
 * at keyframes, written to the store as the job's plan; a video shorter than two segments (or one
 * that cannot be cut exactly) is run whole. A plan already written (a retried step) is kept.
 */
async function planJob(store: JobStore, id: string, segmentSeconds: number, hooks: RunHooks): Promise<TaskResult> {
  const existing = await store.readPlan(id).catch(() => undefined);
  if (existing) return { segments: existing.segments.map((s) => s.end - s.start) };
  const { record, paths, matter } = await loadWithModels(store, id, hooks);
  if (record.kind !== 'video' || !(segmentSeconds > 0)) return { outputs: await runJob(store, id, hooks) };
  try {
    const t0 = performance.now();
    const info = await probeVideo(paths.input!);
    const target = Math.max(1, Math.round(segmentSeconds * info.fps));
    if (info.frames < 2 * target) return { outputs: await runJob(store, id, hooks) };
    const index = await probeFrames(paths.input!, info.frames);
    const segments = 'unusable' in index ? [] : splitAtKeyframes(info.frames, index.keyframes, target);
    if ('unusable' in index || segments.length < 2) return { outputs: await runJob(store, id, hooks) };
    const o = record.options;
    const state = await matter.analyseVideo({ input: paths.input!, plate: paths.plate, temporal: o.temporal ?? true, signal: hooks.signal, index });
    await checkCancelled(store, id, hooks);
    const plan: SegmentPlan = {
      frames: info.frames, fps: info.fps, segments, warmup: SEGMENT_WARMUP, index, info, state,
      createdAt: new Date(Date.now() - (performance.now() - t0)).toISOString(), analyseSeconds: +((performance.now() - t0) / 1000).toFixed(3),
    };
    await store.writePlan(id, plan);
    return { segments: segments.map((s) => s.end - s.start) };
  } catch (err) {
    throw jobFailure(store, err, paths);
  }
}

/** One segment of a split video: its frames' parts, published under the job's segments. Done already: nothing to do. */
async function runSegment(store: JobStore, id: string, k: number, hooks: RunHooks): Promise<void> {
  if (await store.segmentParts(id, k)) return;
  const { record, paths, matter } = await loadWithModels(store, id, hooks);
  const plan = await store.readPlan(id);
  const segment = plan?.segments[k];
  if (!plan || !segment) throw new CleanplateError(`job ${id} has no segment ${k} in its plan`);
  const o = record.options;
  let staging: string | undefined;
  try {
    staging = await store.createSegmentStaging(id, k);
    await matter.matteVideo({
      input: paths.input!, plate: paths.plate, background: paths.background, color: o.color,
      temporal: o.temporal ?? true, motionStride: o.motionStride, signal: hooks.signal,
      state: plan.state, segment: { ...segment, index: plan.index, warmup: plan.warmup, info: plan.info },
      output: videoOutputs(staging, o, paths.background !== undefined || o.color !== undefined),
      onProgress: videoProgress(hooks),
    });
    await checkCancelled(store, id, hooks);
    await store.publishSegment(id, k, staging);
  } catch (err) {
    if (staging) await store.discardStaging(staging);
    throw jobFailure(store, err, paths, staging);
  }
}

/** Hard-links a segment's alpha PNGs into the job's folder (the store is one file system); copies where it cannot. */
async function gatherSequence(from: string, to: string): Promise<number> {
  const names = (await readdir(from)).filter((n) => n.endsWith('.png'));
  for (const n of names) await link(join(from, n), join(to, n)).catch(() => copyFile(join(from, n), join(to, n)));
  return names.length;
}

/**
 * The last step of a split video: every segment's encoded parts concatenated (stream copy), the
 * input's audio muxed over the whole, the alpha PNGs gathered, one report; published in one step
 * exactly as a whole run names its outputs, then the segments are removed.
 */
async function joinJob(store: JobStore, id: string, hooks: RunHooks): Promise<string[]> {
  const { record, paths } = await load(store, id, hooks).catch((err) => { throw jobFailure(store, err, {}); });
  const plan = await store.readPlan(id);
  if (!plan) throw new Error(`job ${id} has no segment plan to join`);
  const o = record.options;
  let staging: string | undefined;
  try {
    const t0 = performance.now();
    const dirs: string[] = [];
    for (const [k] of plan.segments.entries()) {
      const dir = await store.segmentParts(id, k);
      if (!dir) throw new Error(`segment ${k} of job ${id} has not been published`);
      dirs.push(dir);
    }
    staging = await store.createStaging(id);
    const info = { ...plan.info, file: paths.input! };
    const outputs = videoOutputs(staging, o, paths.background !== undefined || o.color !== undefined);
    const joined: Record<string, 'copy' | 'encode'> = {};
    for (const kind of ['composite', 'alpha', 'foreground'] as PartKind[]) {
      const out = outputs[kind];
      if (!out) continue;
      const name = out.slice(staging.length + 1);
      joined[name] = await joinParts(kind, dirs.map((d) => join(d, name)), out, info, plan.frames);
      if (hooks.signal?.aborted) throw new InterruptedError();
    }
    if (outputs.alphaSequence) {
      await mkdir(outputs.alphaSequence);
      let n = 0;
      for (const d of dirs) n += await gatherSequence(join(d, 'alpha'), outputs.alphaSequence);
      if (n !== plan.frames) throw new Error(`the segments hold ${n} alpha PNGs, not ${plan.frames}`);
    }
    const reports = await Promise.all(dirs.map(async (d) => JSON.parse(await readFile(join(d, 'report.json'), 'utf8')) as VideoReport));
    const names = Object.values(outputs).filter((f): f is string => Boolean(f)).map((f) => f.slice(staging!.length + 1));
    const report = joinReports(reports, {
      state: plan.state, outputs: names, analyseSeconds: plan.analyseSeconds, joinSeconds: (performance.now() - t0) / 1000,
      wallSeconds: (Date.now() - Date.parse(plan.createdAt)) / 1000, joined,
    });
    await writeMatteReport(outputs.report!, report);
    hooks.onProgress?.({ framesDone: plan.frames, framesTotal: plan.frames, fps: report.fps, etaSeconds: 0 });
    await checkCancelled(store, id, hooks);
    const published = await store.publish(id, staging);
    // Published: the parts are leftovers now (a job's deletion removes them, should this fail).
    await store.removeSegments(id).catch(() => undefined);
    return published;
  } catch (err) {
    if (staging) await store.discardStaging(staging);
    throw jobFailure(store, err, paths, staging);
  }
}

async function writeMatteReport(file: string, report: unknown): Promise<void> {
  const t = tempPath(file);
  await writeFile(t, JSON.stringify(report, null, 2) + '\n');
  await rename(t, file);
}
