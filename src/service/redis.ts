/**
 * Distributed mode: the API enqueues whole jobs on a BullMQ queue in Redis and `cleanplate worker`
 * processes on any number of machines take them, reading inputs from and publishing outputs to the
 * shared store. A worker that dies mid-job loses its lock; BullMQ's stalled-job check gives the job
 * to another worker, whose run publishes the same outputs (runs are idempotent, outputs published
 * in one rename). Redis must keep its data across a restart (appendonly yes) for jobs to survive one.
 */
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Backend, JobStatus, Metrics } from './backend.js';
import type { JobProgress, JobRecord, JobState } from './jobs.js';
import { ThreadPool, type JobError } from './pool.js';
import type { JobStore } from './store.js';

export const QUEUE = 'cleanplate';

/** Attempts of one job (a killed worker's run counts as one) before it fails. */
const ATTEMPTS = 3;

export function connection(url: string) {
  // null: commands wait for Redis to come back instead of failing (BullMQ requires it for workers).
  return { url, maxRetriesPerRequest: null, retryStrategy: (times: number) => Math.min(200 * times, 2000) };
}

const STATE: Record<string, JobState> = {
  waiting: 'queued', delayed: 'queued', prioritized: 'queued', 'waiting-children': 'queued', unknown: 'queued',
  active: 'active', completed: 'completed', failed: 'failed',
};

const EMPTY: JobProgress = { framesDone: 0, framesTotal: 0, fps: 0, etaSeconds: null };

export class RedisBackend implements Backend {
  readonly name = 'redis';
  private readonly queue: Queue;
  /** Our own keys (the open jobs of each token) beside BullMQ's. */
  private readonly client: Redis;

  constructor(url: string) {
    this.queue = new Queue(QUEUE, { connection: connection(url) });
    this.client = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: connection(url).retryStrategy });
    this.client.on('error', () => undefined); // the queue reports connection problems once
    this.queue.on('error', (e) => process.stderr.write(`cleanplate serve: redis: ${e.message}\n`));
  }

  async start(): Promise<void> {
    await this.queue.waitUntilReady();
  }

  private openKey(owner: string): string {
    return `${QUEUE}:open:${owner}`;
  }

  async enqueue(record: JobRecord): Promise<void> {
    await this.queue.add('matte', { id: record.id }, {
      jobId: record.id, attempts: ATTEMPTS, backoff: { type: 'fixed', delay: 1000 },
      removeOnComplete: { age: 7 * 86400 }, removeOnFail: { age: 7 * 86400 },
    });
    await this.client.sadd(this.openKey(record.owner), record.id);
  }

  async status(record: JobRecord): Promise<JobStatus> {
    const job = await this.queue.getJob(record.id);
    if (!job) return { state: 'queued', progress: record.progress, error: null, attempts: 0 };
    const state = STATE[await job.getState()] ?? 'queued';
    const progress = typeof job.progress === 'object' && job.progress ? { ...record.progress, ...(job.progress as JobProgress) } : record.progress;
    return { state, progress: state === 'completed' ? { ...progress, etaSeconds: 0 } : progress, error: state === 'failed' ? job.failedReason ?? 'failed' : null, attempts: job.attemptsMade };
  }

  async cancel(id: string): Promise<void> {
    const job = await this.queue.getJob(id);
    // A waiting job is removed; a running one stops when its worker sees the record gone.
    await job?.remove().catch(() => undefined);
  }

  async openJobs(owner: string): Promise<number> {
    const client = this.client;
    const ids = await client.smembers(this.openKey(owner));
    let open = 0;
    for (const id of ids) {
      const state = await this.queue.getJobState(id);
      if (state === 'completed' || state === 'failed' || state === 'unknown') await client.srem(this.openKey(owner), id);
      else open++;
    }
    return open;
  }

  async metrics(): Promise<Metrics> {
    const c = await this.queue.getJobCounts('waiting', 'delayed', 'prioritized', 'active', 'completed', 'failed');
    const active = await this.queue.getActive(0, 1000);
    const fps = active.reduce((sum, j) => sum + (typeof j.progress === 'object' && j.progress ? Number((j.progress as JobProgress).fps) || 0 : 0), 0);
    const queued = (c.waiting ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0);
    return { jobs: { queued, active: c.active ?? 0, completed: c.completed ?? 0, failed: c.failed ?? 0 }, queueDepth: queued, framesPerSecond: +fps.toFixed(3) };
  }

  async close(): Promise<void> {
    await this.queue.close();
    this.client.disconnect();
  }
}

export interface WorkerOptions {
  redis: string;
  store: JobStore;
  dataDir: string;
  concurrency: number;
  /** How long a job's lock lives without renewal: a dead worker's job is retried after about this long. */
  lockMs: number;
  log?: (line: string) => void;
}

/** `cleanplate worker`: takes jobs from the queue and runs them on `concurrency` threads. */
export async function startWorker(o: WorkerOptions): Promise<{ close(): Promise<void>; worker: Worker }> {
  const pool = new ThreadPool(o.concurrency, o.dataDir);
  const log = o.log ?? (() => undefined);
  const worker = new Worker(QUEUE, async (job: Job<{ id: string }>) => {
    const id = job.data.id;
    if (!(await o.store.readRecord(id))) throw new UnrecoverableError('cancelled: the job was deleted');
    log(`job ${id}: attempt ${job.attemptsMade + 1}`);
    // Cancellation across machines: the API removes the record; we look for it every second.
    const watch = setInterval(() => {
      void o.store.readRecord(id).then((r) => { if (!r) void pool.abort(id); }, () => undefined);
    }, 1000);
    try {
      let last = 0;
      const outputs = await pool.run(id, {
        onProgress: (p) => {
          const t = Date.now();
          if (t - last < 500 && p.framesDone < p.framesTotal) return;
          last = t;
          void job.updateProgress(p).catch(() => undefined);
        },
      });
      await job.updateProgress({ ...(typeof job.progress === 'object' ? job.progress as JobProgress : EMPTY), etaSeconds: 0 }).catch(() => undefined);
      log(`job ${id}: completed`);
      return { outputs };
    } catch (err) {
      const e = err as JobError;
      log(`job ${id}: ${e.cancelled ? 'cancelled' : `failed: ${e.message}`}`);
      // Bad inputs and cancellations are final; a crashed thread may be retried.
      if (e.cancelled || e.user) throw new UnrecoverableError(e.cancelled ? 'cancelled' : e.message);
      throw err;
    } finally {
      clearInterval(watch);
    }
  }, {
    connection: connection(o.redis), concurrency: o.concurrency,
    lockDuration: o.lockMs, stalledInterval: Math.max(1000, Math.round(o.lockMs / 2)), maxStalledCount: ATTEMPTS,
  });
  worker.on('error', (e) => log(`redis: ${e.message}`));
  await worker.waitUntilReady();
  return {
    worker,
    async close() {
      await worker.close();
      await pool.close();
    },
  };
}
