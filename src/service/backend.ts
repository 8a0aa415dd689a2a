/**
 * How the API hands jobs on and learns how they are doing. `EmbeddedBackend` (the default) runs
 * them on in-process worker threads and keeps their state in the store's job records, so a
 * restart resumes what was pending; `RedisBackend` (src/service/redis.ts) enqueues them on BullMQ
 * for `cleanplate worker` processes on any number of machines.
 */
import type { JobProgress, JobRecord, JobState } from './jobs.js';
import type { JobStore } from './store.js';
import { JobError, ThreadPool } from './pool.js';

export interface JobStatus { state: JobState; progress: JobProgress; error: string | null; attempts: number }

export interface Metrics { jobs: Record<JobState, number>; queueDepth: number; framesPerSecond: number }

export interface Backend {
  readonly name: 'embedded' | 'redis';
  start(): Promise<void>;
  /** The record is already in the store. */
  enqueue(record: JobRecord): Promise<void>;
  status(record: JobRecord): Promise<JobStatus>;
  /** Stops the job if it runs or waits; the caller then removes it from the store. */
  cancel(id: string): Promise<void>;
  /** Jobs of this owner that are queued or running. */
  openJobs(owner: string): Promise<number>;
  metrics(): Promise<Metrics>;
  close(): Promise<void>;
}

const now = () => new Date().toISOString();

/** Jobs in this process: N worker threads, a FIFO queue, state in the store's records. */
export class EmbeddedBackend implements Backend {
  readonly name = 'embedded';
  private pool?: ThreadPool;
  /** Records of the jobs this process knows, by id (the store holds the same, for restarts). */
  private readonly records = new Map<string, JobRecord>();
  private readonly fps = new Map<string, number>();
  private readonly lastWrite = new Map<string, number>();

  constructor(private readonly store: JobStore, private readonly workers: number, private readonly dataDir: string, private readonly poolOptions: { abortGraceMs?: number } = {}) {}

  async start(): Promise<void> {
    this.pool = new ThreadPool(this.workers, this.dataDir, this.poolOptions);
    // Resume: what was queued or running when the process stopped runs again, oldest first.
    let all: JobRecord[];
    try {
      all = (await this.store.listRecords()).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    } catch (err) {
      await this.pool.close();
      throw err;
    }
    for (const r of all) {
      this.records.set(r.id, r);
      if (r.state === 'queued' || r.state === 'active') {
        r.state = 'queued';
        // A store that cannot be written (disk full) does not stop the others: the job runs and fails with that.
        await this.store.writeRecord(r).catch((e: Error) => process.stderr.write(`cleanplate serve: cannot record job ${r.id}: ${e.message}\n`));
        this.dispatch(r);
      }
    }
  }

  async enqueue(record: JobRecord): Promise<void> {
    this.records.set(record.id, record);
    this.dispatch(record);
  }

  /** Record writes of one job, in order (the last one on disk is the last one made). */
  private readonly writes = new Map<string, Promise<void>>();

  private save(r: JobRecord, patch: Partial<JobRecord>): Promise<void> {
    if (!this.records.has(r.id)) return Promise.resolve(); // cancelled meanwhile: nothing to record
    Object.assign(r, patch, { updatedAt: now() });
    const snapshot = structuredClone(r);
    const write = (this.writes.get(r.id) ?? Promise.resolve())
      .then(() => (this.records.has(r.id) ? this.store.writeRecord(snapshot) : undefined))
      .catch((e: Error) => { process.stderr.write(`cleanplate serve: cannot record job ${r.id}: ${e.message}\n`); });
    this.writes.set(r.id, write);
    void write.finally(() => { if (this.writes.get(r.id) === write) this.writes.delete(r.id); });
    return write;
  }

  private dispatch(r: JobRecord): void {
    const onProgress = (p: JobProgress) => {
      this.fps.set(r.id, p.fps);
      r.progress = p;
      const t = Date.now();
      // Progress is written at most once a second.
      if (t - (this.lastWrite.get(r.id) ?? 0) >= 1000) { this.lastWrite.set(r.id, t); void this.save(r, {}); }
    };
    const onStart = () => void this.save(r, { state: 'active', attempts: r.attempts + 1 });
    this.pool!.run(r.id, { onStart, onProgress }).then(
      ({ outputs = [] }) => this.save(r, { state: 'completed', outputs, error: null, progress: { ...r.progress, etaSeconds: 0 } }),
      (e: JobError) => (e.cancelled ? undefined : this.save(r, { state: 'failed', error: e.message })),
    ).finally(() => { this.fps.delete(r.id); this.lastWrite.delete(r.id); });
  }

  async status(record: JobRecord): Promise<JobStatus> {
    const r = this.records.get(record.id) ?? record;
    return { state: r.state, progress: r.progress, error: r.error, attempts: r.attempts };
  }

  async cancel(id: string): Promise<void> {
    this.records.delete(id);
    await this.pool?.abort(id);
    await this.writes.get(id);
  }

  async openJobs(owner: string): Promise<number> {
    let n = 0;
    for (const r of this.records.values()) if (r.owner === owner && (r.state === 'queued' || r.state === 'active')) n++;
    return n;
  }

  async metrics(): Promise<Metrics> {
    const jobs: Record<JobState, number> = { queued: 0, active: 0, completed: 0, failed: 0 };
    for (const r of this.records.values()) jobs[r.state]++;
    return { jobs, queueDepth: jobs.queued, framesPerSecond: [...this.fps.values()].reduce((a, b) => a + b, 0) };
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }
}
