/**
 * Distributed mode: the API enqueues whole jobs on a BullMQ queue in Redis and `cleanplate worker`
 * processes on any number of machines take them, reading inputs from and publishing outputs to the
 * shared store. A worker that dies mid-job loses its lock; BullMQ's stalled-job check gives the job
 * to another worker, whose run publishes the same outputs (runs are idempotent, outputs published
 * in one rename). Redis must keep its data across a restart (appendonly yes) for jobs to survive one.
 *
 * A long video becomes a flow: the job's first run makes the colour pass and cuts the video at
 * keyframes (the plan, in the store), adds one child job per segment with BullMQ's FlowProducer,
 * and moves itself to waiting-children; any worker takes the segments; once all are done BullMQ
 * hands the job back to a worker, which joins the parts and publishes the outputs.
 */
import { FlowProducer, Queue, UnrecoverableError, WaitingChildrenError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Backend, JobStatus, Metrics } from './backend.js';
import type { JobProgress, JobRecord, JobState, JobTask, TaskResult } from './jobs.js';
import { ThreadPool, type JobError } from './pool.js';
import { isSegmentJobId, segmentJobId } from './segments.js';
import type { JobStore } from './store.js';

/** A job's data in the queue: its id; `segments` (frames of each) once its video was split; a segment's number. */
interface QueueData { id: string; segments?: number[]; segment?: number }

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
    const job = await this.queue.getJob(record.id) as Job<QueueData> | undefined;
    if (!job) return { state: 'queued', progress: record.progress, error: null, attempts: 0 };
    const raw = await job.getState();
    let state = STATE[raw] ?? 'queued';
    let progress = typeof job.progress === 'object' && job.progress ? { ...record.progress, ...(job.progress as JobProgress) } : record.progress;
    const sizes = job.data.segments;
    if (sizes && raw !== 'completed' && raw !== 'failed') {
      // A split video: its segments' progress. A finished segment is removed from the queue.
      let done = 0, fps = 0;
      for (const [k, frames] of sizes.entries()) {
        const child = await this.queue.getJob(segmentJobId(record.id, k));
        // Gone: completed (segments are removed from the queue once done).
        if (!child) { done += frames; continue; }
        const p = typeof child.progress === 'object' && child.progress ? child.progress as JobProgress : undefined;
        const childState = await child.getState();
        if (childState === 'completed') done += frames;
        else if (p) { done += p.framesDone; if (childState === 'active') fps += p.fps; }
      }
      const total = sizes.reduce((a, b) => a + b, 0);
      progress = { framesDone: done, framesTotal: total, fps: +fps.toFixed(3), etaSeconds: fps > 0 ? +((total - done) / fps).toFixed(1) : null };
      if (raw === 'waiting-children') state = 'active';
    }
    let error: string | null = null;
    if (state === 'failed') {
      error = job.failedReason ?? 'failed';
      // A segment failed: its own reason, not BullMQ's "child <key> failed".
      const child = /^child \S*?([^:\s]+\.s(\d+)) failed$/.exec(error);
      if (child) {
        const reason = (await this.queue.getJob(child[1]!))?.failedReason;
        error = `segment ${Number(child[2]) + 1}: ${reason ?? 'failed'}`;
      }
    }
    return { state, progress: state === 'completed' ? { ...progress, etaSeconds: 0 } : progress, error, attempts: job.attemptsMade };
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
    // Jobs only: a split video's segments are units of work (queue depth, frames/s), not jobs.
    const jobsIn = async (...types: Parameters<Queue['getRanges']>[0]) => (await this.queue.getRanges(types, 0, -1)).filter((id) => !isSegmentJobId(id));
    const queuedIds = await this.queue.getRanges(['waiting', 'delayed', 'prioritized'], 0, -1);
    const active = await this.queue.getActive(0, 1000);
    const fps = active.reduce((sum, j) => sum + (typeof j.progress === 'object' && j.progress ? Number((j.progress as JobProgress).fps) || 0 : 0), 0);
    const completed = (await this.queue.getJobCounts('completed')).completed ?? 0;
    const jobs = {
      queued: queuedIds.filter((id) => !isSegmentJobId(id)).length,
      // A split video waiting for its segments is running.
      active: (await jobsIn('active', 'waiting-children')).length,
      completed,
      failed: (await jobsIn('failed')).length,
    };
    return { jobs, queueDepth: queuedIds.length, framesPerSecond: +fps.toFixed(3) };
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
  /** Length of a split video's segments in seconds; a video shorter than two is one job; 0: never split. */
  segmentSeconds: number;
  /** How long a cancelled job may take to stop before its thread is retired (ThreadPool). */
  abortGraceMs?: number;
  log?: (line: string) => void;
}

/** Why a split video's segments are not all published yet, or undefined when they are. */
async function missingSegments(store: JobStore, id: string, sizes: number[]): Promise<number[]> {
  const missing: number[] = [];
  for (const k of sizes.keys()) if (!(await store.segmentParts(id, k))) missing.push(k);
  return missing;
}

/** `cleanplate worker`: takes jobs (and video segments) from the queue and runs them on `concurrency` threads. */
export async function startWorker(o: WorkerOptions): Promise<{ close(): Promise<void>; worker: Worker }> {
  const pool = new ThreadPool(o.concurrency, o.dataDir, { abortGraceMs: o.abortGraceMs });
  const flows = new FlowProducer({ connection: connection(o.redis) });
  flows.on('error', () => undefined); // the worker reports connection problems once
  const log = o.log ?? (() => undefined);
  const worker = new Worker(QUEUE, async (job: Job<QueueData>, token?: string) => {
    const { id, segment } = job.data;
    const what = segment === undefined ? `job ${id}` : `job ${id} segment ${segment + 1}`;
    if (!(await o.store.readRecord(id))) throw new UnrecoverableError('cancelled: the job was deleted');
    // Started runs, a stalled one (its worker died) included.
    log(`${what}: attempt ${Math.max(job.attemptsStarted ?? 0, job.attemptsMade + 1)}`);
    const key = segment === undefined ? id : `${id}#${segment}`;
    // Cancellation across machines: the API removes the record; we look for it every second.
    const watch = setInterval(() => {
      void o.store.readRecord(id).then((r) => { if (!r) void pool.abort(key); }, () => undefined);
    }, 1000);
    let last = 0;
    const run = (task: JobTask): Promise<TaskResult> => pool.run(id, {
      onProgress: (p) => {
        const t = Date.now();
        if (t - last < 500 && p.framesDone < p.framesTotal) return;
        last = t;
        void job.updateProgress(p).catch(() => undefined);
      },
    }, task, key);
    try {
      if (segment !== undefined) {
        await run({ kind: 'segment', segment });
        log(`${what}: completed`);
        return { segment };
      }
      // Published already (a run that died after publishing): nothing more to do.
      const published = await o.store.listOutputs(id);
      if (published.length) {
        log(`${what}: completed (published before)`);
        return { outputs: published };
      }
      let sizes = job.data.segments;
      if (!sizes) {
        const planned = await run({ kind: 'plan', segmentSeconds: o.segmentSeconds });
        if (planned.outputs) {
          await job.updateProgress({ ...(typeof job.progress === 'object' ? job.progress as JobProgress : EMPTY), etaSeconds: 0 }).catch(() => undefined);
          log(`${what}: completed`);
          return { outputs: planned.outputs };
        }
        sizes = planned.segments!;
        await job.updateData({ ...job.data, segments: sizes });
      }
      const missing = await missingSegments(o.store, id, sizes);
      if (missing.length) {
        // The segments as children of this job (a flow); ids are fixed, so adding one that exists adds nothing.
        await flows.addBulk(missing.map((k) => ({
          name: 'segment', queueName: QUEUE, data: { id, segment: k } satisfies QueueData,
          opts: {
            jobId: segmentJobId(id, k), parent: { id: job.id!, queue: job.queueQualifiedName }, failParentOnFailure: true,
            attempts: ATTEMPTS, backoff: { type: 'fixed', delay: 1000 }, removeOnComplete: true, removeOnFail: { age: 7 * 86400 },
          },
        })));
        if (await job.moveToWaitingChildren(token!)) {
          log(`${what}: split into ${sizes.length} segments (${sizes.join(', ')} frames), waiting for them`);
          throw new WaitingChildrenError();
        }
        // Every child finished meanwhile.
        const still = await missingSegments(o.store, id, sizes);
        if (still.length) throw new Error(`segments ${still.map((k) => k + 1).join(', ')} finished without publishing their parts`);
      }
      const joined = await run({ kind: 'join' });
      log(`${what}: completed`);
      return { outputs: joined.outputs };
    } catch (err) {
      if (err instanceof WaitingChildrenError) throw err;
      const e = err as JobError;
      log(`${what}: ${e.cancelled ? 'cancelled' : `failed: ${e.message}`}`);
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
  await flows.waitUntilReady();
  return {
    worker,
    async close() {
      await worker.close();
      await flows.close();
      await pool.close();
    },
  };
}
