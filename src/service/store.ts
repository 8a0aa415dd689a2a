/**
 * Where a job's inputs, state and outputs live. Every machine of a deployment (the API, any number
 * of workers) reads and writes the same store; today that is one directory that all of them mount
 * (`DirStore`). The rest of the service sees only the `JobStore` interface, so an object store can
 * follow: its `localInput` would download into a cache and `publish` would upload then commit a
 * marker object.
 *
 * Layout of a DirStore:
 *   DIR/jobs/ID/job.json          the job record (written atomically: temporary file + rename)
 *   DIR/jobs/ID/inputs/NAME.EXT   uploads (input, plate, background)
 *   DIR/jobs/ID/.staging-RANDOM/  a run's outputs while it writes them
 *   DIR/jobs/ID/outputs/          published outputs (a staging folder renamed in one step)
 *   DIR/jobs/ID/plan.json         a video split across workers: its segments and colour pass
 *   DIR/jobs/ID/segments/K/       segment K's published parts (alpha PNGs, encoded parts, report)
 *   DIR/idempotency/HASH          the job id an idempotency key was first used for
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { access, constants, link, mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CleanplateError } from '../errors.js';
import type { JobRecord } from './jobs.js';
import type { SegmentPlan } from './segments.js';

/** Job ids: 128 random bits, base64url (22 characters). Nothing else reaches a path. */
export const JOB_ID = /^[A-Za-z0-9_-]{22}$/;
export function newJobId(): string {
  return randomBytes(16).toString('base64url');
}

export interface JobStore {
  /** Where the store is, for error messages (a folder, a bucket). */
  readonly where: string;
  /** Checks the store can be written; a clear error otherwise. */
  init(): Promise<void>;
  /** Saves one upload of a job that is still being received; returns its size in bytes. */
  saveInput(id: string, file: string, data: Readable): Promise<number>;
  /** Renames an upload (once probed its kind is known). */
  renameInput(id: string, from: string, to: string): Promise<void>;
  /** A local path a worker can hand to sharp or ffmpeg. */
  localInput(id: string, file: string): Promise<string>;
  writeRecord(record: JobRecord): Promise<void>;
  readRecord(id: string): Promise<JobRecord | undefined>;
  listRecords(): Promise<JobRecord[]>;
  /** A fresh folder for one run's outputs; they become visible only through `publish`. */
  createStaging(id: string): Promise<string>;
  /** Publishes a run's outputs in one step. A job already published keeps its outputs (equal ones). */
  publish(id: string, staging: string): Promise<string[]>;
  discardStaging(staging: string): Promise<void>;
  listOutputs(id: string): Promise<string[]>;
  openOutput(id: string, name: string): Promise<{ size: number; stream(start: number, end: number): Readable } | undefined>;
  /** Removes everything of a job (record, inputs, outputs). */
  removeJob(id: string): Promise<void>;
  /**
   * Binds an idempotency key (already hashed) to a job id if it is not bound yet; returns the id it
   * is bound to. Atomic across machines: a complete file is hard-linked into place.
   */
  claimKey(keyHash: string, id: string): Promise<string>;
  releaseKey(keyHash: string): Promise<void>;
  /** A video job split across workers: its plan (written once by the job's first step). */
  writePlan(id: string, plan: SegmentPlan): Promise<void>;
  readPlan(id: string): Promise<SegmentPlan | undefined>;
  /** A fresh folder for one run of segment `k`; its parts become visible only through `publishSegment`. */
  createSegmentStaging(id: string, k: number): Promise<string>;
  /** Publishes segment `k`'s parts in one step; a segment already published keeps its parts (equal ones). */
  publishSegment(id: string, k: number, staging: string): Promise<void>;
  /** The local folder of segment `k`'s published parts, or undefined while it has none. */
  segmentParts(id: string, k: number): Promise<string | undefined>;
  /** Removes the plan and every segment's parts (once the job's outputs are published). */
  removeSegments(id: string): Promise<void>;
}

function code(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

/** Operating-system errors a store can run into, in plain words. */
const STORAGE_PROBLEMS: Record<string, string> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOTDIR: 'a file is in the way where a folder should be',
  EISDIR: 'a folder is in the way where a file should be',
  EIO: 'input/output error (a failing disk or network mount)',
  ENAMETOOLONG: 'path too long',
  EMFILE: 'too many open files',
};

/** The same problems as tools such as ffmpeg report them (strerror's words). */
const STRERROR: [RegExp, string][] = [
  [/No space left on device/i, 'ENOSPC'], [/Disk quota exceeded/i, 'EDQUOT'], [/Permission denied/i, 'EACCES'],
  [/Operation not permitted/i, 'EPERM'], [/Read-only file system/i, 'EROFS'], [/Not a directory/i, 'ENOTDIR'],
  [/Is a directory/i, 'EISDIR'], [/Input\/output error/i, 'EIO'],
];

/** The storage problem behind an error (its errno code, or one named in its message), if it is one. */
export function storageProblem(err: unknown): string | undefined {
  const c = (err as NodeJS.ErrnoException).code;
  if (c && STORAGE_PROBLEMS[c]) return c;
  const message = (err as Error).message ?? '';
  const named = /\b(E[A-Z]{2,})\b/.exec(message)?.[1];
  if (named && STORAGE_PROBLEMS[named]) return named;
  return STRERROR.find(([re]) => re.test(message))?.[1];
}

/** One line naming the store, what could not be done, and the problem in plain words. */
export function storageError(where: string, doing: string, problem: string): CleanplateError {
  return new CleanplateError(`store ${where}: cannot ${doing}: ${STORAGE_PROBLEMS[problem] ?? problem} (${problem})`);
}

export class DirStore implements JobStore {
  readonly where: string;
  constructor(readonly root: string) {
    this.where = root;
  }

  /** A storage problem as one line naming this store; other errors as they are. */
  private failure(err: unknown, doing: string): Error {
    const problem = storageProblem(err);
    if (problem) return storageError(this.root, doing, problem);
    return err instanceof CleanplateError ? err : new CleanplateError(`store ${this.root}: cannot ${doing} (${code(err)})`);
  }

  private jobDir(id: string): string {
    if (!JOB_ID.test(id)) throw new CleanplateError(`invalid job id '${id}'`);
    return join(this.root, 'jobs', id);
  }

  async init(): Promise<void> {
    try {
      await mkdir(join(this.root, 'jobs'), { recursive: true });
      await mkdir(join(this.root, 'idempotency'), { recursive: true });
      await access(this.root, constants.W_OK);
      const probe = join(this.root, `.write-test-${process.pid}-${randomBytes(4).toString('hex')}`);
      await writeFile(probe, 'ok');
      await rm(probe);
    } catch (err) {
      throw new CleanplateError(`data folder is not writable (${code(err)})`, this.root);
    }
  }

  async saveInput(id: string, file: string, data: Readable): Promise<number> {
    const dir = join(this.jobDir(id), 'inputs');
    await mkdir(dir, { recursive: true });
    const path = join(dir, file);
    try {
      await pipeline(data, createWriteStream(path, { flags: 'wx' }));
    } catch (err) {
      await rm(path, { force: true });
      if ((err as { statusCode?: number }).statusCode) throw err;
      throw new CleanplateError(`cannot store the upload (${code(err)})`, file);
    }
    return (await stat(path)).size;
  }

  async renameInput(id: string, from: string, to: string): Promise<void> {
    const dir = join(this.jobDir(id), 'inputs');
    await rename(join(dir, from), join(dir, to));
  }

  async localInput(id: string, file: string): Promise<string> {
    return join(this.jobDir(id), 'inputs', file);
  }

  async writeRecord(record: JobRecord): Promise<void> {
    const dir = this.jobDir(record.id);
    const temp = join(dir, `.job-${process.pid}-${randomBytes(6).toString('hex')}.json`);
    try {
      await mkdir(dir, { recursive: true });
      await writeFile(temp, JSON.stringify(record, null, 2) + '\n');
      await rename(temp, join(dir, 'job.json'));
    } catch (err) {
      await rm(temp, { force: true });
      throw this.failure(err, `write the record of job ${record.id}`);
    }
  }

  async readRecord(id: string): Promise<JobRecord | undefined> {
    if (!JOB_ID.test(id)) return undefined;
    try {
      return JSON.parse(await readFile(join(this.jobDir(id), 'job.json'), 'utf8')) as JobRecord;
    } catch (err) {
      if (code(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  async listRecords(): Promise<JobRecord[]> {
    const ids = (await readdir(join(this.root, 'jobs')).catch(() => [])).filter((n) => JOB_ID.test(n));
    const records = await Promise.all(ids.map((id) => this.readRecord(id).catch(() => undefined)));
    return records.filter((r): r is JobRecord => Boolean(r));
  }

  async createStaging(id: string): Promise<string> {
    const dir = join(this.jobDir(id), `.staging-${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(dir, { recursive: false });
    } catch (err) {
      throw this.failure(err, 'create a folder for the outputs');
    }
    return dir;
  }

  async publish(id: string, staging: string): Promise<string[]> {
    const final = join(this.jobDir(id), 'outputs');
    try {
      await rename(staging, final);
    } catch (err) {
      // Another run of the same job published first (a worker thought dead finished after all).
      if (!['ENOTEMPTY', 'EEXIST'].includes(code(err))) throw this.failure(err, 'publish the outputs');
      await rm(staging, { recursive: true, force: true });
    }
    return this.listOutputs(id);
  }

  async discardStaging(staging: string): Promise<void> {
    await rm(staging, { recursive: true, force: true });
  }

  async listOutputs(id: string): Promise<string[]> {
    const dir = join(this.jobDir(id), 'outputs');
    const names = await readdir(dir, { withFileTypes: true }).catch(() => []);
    // A video's alpha sequence is listed as its folder, 'alpha/'.
    return names.filter((e) => (e.isFile() || (e.isDirectory() && e.name === 'alpha')) && !e.name.startsWith('.')).map((e) => (e.isFile() ? e.name : `${e.name}/`)).sort();
  }

  async openOutput(id: string, name: string) {
    if (!JOB_ID.test(id) || !/^([a-z]+\.[a-z0-9]+|alpha\/[0-9]{6}\.png)$/.test(name)) return undefined;
    const path = join(this.jobDir(id), 'outputs', name);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) return undefined;
    return { size: info.size, stream: (start: number, end: number) => createReadStream(path, { start, end }) };
  }

  async removeJob(id: string): Promise<void> {
    await rm(this.jobDir(id), { recursive: true, force: true, maxRetries: 3 });
  }

  async claimKey(keyHash: string, id: string): Promise<string> {
    if (!/^[0-9a-f]{64}$/.test(keyHash)) throw new CleanplateError('invalid key hash');
    const final = join(this.root, 'idempotency', keyHash);
    const temp = `${final}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temp, id);
    try {
      await link(temp, final);
      return id;
    } catch (err) {
      if (code(err) !== 'EEXIST') throw err;
      return (await readFile(final, 'utf8')).trim();
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  async releaseKey(keyHash: string): Promise<void> {
    if (/^[0-9a-f]{64}$/.test(keyHash)) await rm(join(this.root, 'idempotency', keyHash), { force: true });
  }

  private segmentsDir(id: string): string {
    return join(this.jobDir(id), 'segments');
  }

  private segmentDir(id: string, k: number): string {
    if (!Number.isInteger(k) || k < 0 || k > 9999) throw new CleanplateError(`invalid segment ${k}`);
    return join(this.segmentsDir(id), String(k).padStart(4, '0'));
  }

  async writePlan(id: string, plan: SegmentPlan): Promise<void> {
    const dir = this.jobDir(id);
    const temp = join(dir, `.plan-${process.pid}-${randomBytes(6).toString('hex')}.json`);
    try {
      await writeFile(temp, JSON.stringify(plan) + '\n');
      await rename(temp, join(dir, 'plan.json'));
    } catch (err) {
      await rm(temp, { force: true });
      throw this.failure(err, `write the segment plan of job ${id}`);
    }
  }

  async readPlan(id: string): Promise<SegmentPlan | undefined> {
    try {
      return JSON.parse(await readFile(join(this.jobDir(id), 'plan.json'), 'utf8')) as SegmentPlan;
    } catch (err) {
      if (code(err) === 'ENOENT') return undefined;
      throw this.failure(err, `read the segment plan of job ${id}`);
    }
  }

  async createSegmentStaging(id: string, k: number): Promise<string> {
    this.segmentDir(id, k);
    const dir = join(this.segmentsDir(id), `.staging-${k}-${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(this.segmentsDir(id), { recursive: true });
      await mkdir(dir);
    } catch (err) {
      throw this.failure(err, `create a folder for segment ${k}`);
    }
    return dir;
  }

  async publishSegment(id: string, k: number, staging: string): Promise<void> {
    try {
      await rename(staging, this.segmentDir(id, k));
    } catch (err) {
      // Another run of the same segment published first (a worker thought dead finished after all).
      if (!['ENOTEMPTY', 'EEXIST'].includes(code(err))) throw this.failure(err, `publish segment ${k}`);
      await rm(staging, { recursive: true, force: true });
    }
  }

  async segmentParts(id: string, k: number): Promise<string | undefined> {
    const dir = this.segmentDir(id, k);
    return (await stat(dir).catch(() => undefined))?.isDirectory() ? dir : undefined;
  }

  async removeSegments(id: string): Promise<void> {
    await rm(this.segmentsDir(id), { recursive: true, force: true, maxRetries: 3 });
    await rm(join(this.jobDir(id), 'plan.json'), { force: true });
  }
}
