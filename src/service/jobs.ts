/**
 * A service job: its record, its options, and the one function that runs it. Every way of running
 * jobs (in-process threads, `cleanplate worker` on BullMQ) calls `runJob`, which calls the same
 * `createMatter().matte` / `matteVideo` and `writeMatteOutputs` as the CLI, so outputs are the CLI's.
 */
import { join } from 'node:path';
import { CleanplateError, InterruptedError } from '../errors.js';
import { writeMatteOutputs } from '../io/outputs.js';
import { createMatter, type Matter } from '../pipeline.js';
import type { AlignMode } from '../align/homography.js';
import type { EngineName } from '../matte/engine.js';
import type { PriorName } from '../prior/index.js';
import type { JobStore } from './store.js';

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
  engine: { type: 'string', enum: ['classic', 'network'], default: 'classic', description: 'matting engine (as --engine)' },
  align: { type: 'string', enum: ['auto', 'homography', 'none'], default: 'auto', description: 'plate alignment (as --align)' },
  color: { type: 'string', pattern: '^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$', description: 'composite onto this colour (as --color); not with a background' },
  temporal: { type: 'boolean', default: true, description: 'video: temporal cues (false = as --no-temporal)' },
  'motion-stride': { type: 'integer', minimum: 1, maximum: 1000, description: 'video: T of the motion stack (as --motion-stride)' },
} as const;

export const FILE_FIELDS = ['input', 'plate', 'background'] as const;
export type FileField = (typeof FILE_FIELDS)[number];

export interface RunHooks {
  signal?: AbortSignal;
  onProgress?: (p: JobProgress) => void;
}

const matters = new Map<string, Promise<Matter>>();

/** Models load once per process (per worker thread) and per option set. */
function matterFor(o: JobOptions): Promise<Matter> {
  const key = `${o.prior}/${o.engine}/${o.align}/${o.maxPixels}`;
  let m = matters.get(key);
  if (!m) {
    m = createMatter({ prior: o.prior, engine: o.engine, align: o.align, maxPixels: o.maxPixels });
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
 * Runs one job to published outputs. Idempotent: a run that dies part-way leaves only its staging
 * folder, and a second run publishes the same files. Throws InterruptedError when cancelled
 * (the signal, or the record removed from the store).
 */
export async function runJob(store: JobStore, id: string, hooks: RunHooks = {}): Promise<string[]> {
  const record = await store.readRecord(id);
  if (!record) throw new InterruptedError();
  const o = record.options;
  const paths: Record<string, string> = {};
  for (const name of ['input', 'plate', 'background'] as const) {
    const input = record.inputs[name];
    if (input) paths[name] = await store.localInput(id, input.file);
  }
  const staging = await store.createStaging(id);
  try {
    const matter = await matterFor(o);
    if (hooks.signal?.aborted) throw new InterruptedError();
    if (record.kind === 'image') {
      const result = await matter.matte({ image: paths.input!, plate: paths.plate, background: paths.background, color: o.color });
      if (hooks.signal?.aborted) throw new InterruptedError();
      await writeMatteOutputs(staging, result, { input: { image: 'input', plate: paths.plate ? 'plate' : null }, job: id });
      hooks.onProgress?.({ framesDone: 1, framesTotal: 1, fps: 0, etaSeconds: 0 });
    } else {
      const composite = paths.background !== undefined || o.color !== undefined;
      await matter.matteVideo({
        input: paths.input!, plate: paths.plate, background: paths.background, color: o.color,
        temporal: o.temporal ?? true, motionStride: o.motionStride, signal: hooks.signal,
        output: {
          alpha: join(staging, 'alpha.mp4'), foreground: join(staging, 'foreground.webm'),
          ...(composite ? { composite: join(staging, 'composite.mp4') } : {}),
          report: join(staging, 'report.json'),
        },
        onProgress: (p) => hooks.onProgress?.({ framesDone: p.frame, framesTotal: p.frames, fps: +p.fps.toFixed(3), etaSeconds: +p.etaSeconds.toFixed(1) }),
      });
    }
    // Cancelled while running: the record is gone, nothing is published.
    if (hooks.signal?.aborted || !(await store.readRecord(id))) throw new InterruptedError();
    return await store.publish(id, staging);
  } catch (err) {
    await store.discardStaging(staging);
    if (err instanceof InterruptedError) throw err;
    const message = scrubPaths((err as Error).message, paths).replaceAll(staging, 'outputs');
    throw err instanceof CleanplateError ? new CleanplateError(message) : new Error(message);
  }
}
