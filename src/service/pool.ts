/**
 * N worker threads that run jobs, one at a time each. A thread that dies (out of memory, a native
 * crash) fails its job with a clear message and is replaced; the process goes on. Threads are asked
 * to end themselves (`retire`), not terminated: see service/thread.ts.
 */
import { Worker } from 'node:worker_threads';
import { disableOrtTelemetry } from '../platform/telemetry.js';
import type { JobProgress, JobTask, TaskResult } from './jobs.js';
import type { FromThread, ToThread } from './thread.js';

export class JobError extends Error {
  constructor(message: string, readonly cancelled: boolean, readonly user: boolean) {
    super(message);
  }
}

interface Task {
  key: string;
  id: string;
  task: JobTask;
  onStart?: () => void;
  onProgress?: (p: JobProgress) => void;
  resolve: (result: TaskResult) => void;
  reject: (e: JobError) => void;
}

interface Slot { worker: Worker; task?: Task; exited?: boolean }

/** How long a cancelled job may take to notice before its thread is retired (and replaced), by default. */
export const ABORT_GRACE_MS = 5000;
/**
 * How long a retired thread may take to end itself before it is terminated after all: a job that
 * ignores its abort this long is stuck, and ending it may then cost the process (service/thread.ts).
 */
const RETIRE_MS = 60_000;

export class ThreadPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Task[] = [];
  private closed = false;

  private readonly abortGraceMs: number;

  /** `abortGraceMs`: how long a cancelled job may take to stop before its thread is retired (default ABORT_GRACE_MS). */
  constructor(readonly size: number, private readonly dataDir: string, options: { abortGraceMs?: number } = {}) {
    this.abortGraceMs = options.abortGraceMs ?? ABORT_GRACE_MS;
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    // Before the thread loads ONNX Runtime, which reads this process's environment, not its copy.
    disableOrtTelemetry();
    const slot: Slot = { worker: new Worker(new URL('./thread.js', import.meta.url), { workerData: { dataDir: this.dataDir } }) };
    slot.worker.on('message', (m: FromThread) => {
      const task = slot.task;
      if (!task || task.key !== m.key) return;
      if (m.type === 'progress') { task.onProgress?.(m.progress); return; }
      slot.task = undefined;
      if (m.type === 'done') task.resolve(m.result);
      else task.reject(new JobError(m.message, m.cancelled, m.user));
      this.next();
    });
    slot.worker.on('error', (e: Error) => this.lost(slot, `worker thread failed: ${e.message}`));
    slot.worker.on('exit', (code) => { slot.exited = true; this.lost(slot, `worker thread exited (code ${code}), e.g. out of memory`); });
    return slot;
  }

  /**
   * Asks a thread to end itself: it aborts its job, closes its prior threads and exits. Resolves
   * once it has; terminated only as a last resort, after RETIRE_MS.
   */
  private retire(slot: Slot): Promise<void> {
    if (slot.exited) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => void slot.worker.terminate(), RETIRE_MS);
      slot.worker.once('exit', () => { clearTimeout(timer); resolve(); });
      slot.worker.postMessage({ type: 'exit' } satisfies ToThread);
    });
  }

  private lost(slot: Slot, message: string): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    const task = slot.task;
    slot.task = undefined;
    if (this.closed) { this.slots.splice(i, 1); task?.reject(new JobError('service is shutting down', true, false)); return; }
    void slot.worker.terminate();
    this.slots[i] = this.spawn();
    task?.reject(new JobError(message, false, false));
    this.next();
  }

  /**
   * Runs a job (or one step of it: `task`) on the next free thread. `key` names the run for
   * `abort` (default: the job's id; a segment's run has its own).
   */
  run(id: string, hooks: { onStart?: () => void; onProgress?: (p: JobProgress) => void } = {}, task: JobTask = { kind: 'whole' }, key = id): Promise<TaskResult> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ key, id, task, ...hooks, resolve, reject });
      this.next();
    });
  }

  get busy(): number {
    return this.slots.filter((s) => s.task).length;
  }

  private next(): void {
    for (const slot of this.slots) {
      if (slot.task || !this.waiting.length) continue;
      slot.task = this.waiting.shift()!;
      slot.worker.postMessage({ type: 'run', key: slot.task.key, id: slot.task.id, task: slot.task.task } satisfies ToThread);
      slot.task.onStart?.();
    }
  }

  isRunning(key: string): boolean {
    return this.slots.some((s) => s.task?.key === key);
  }

  /**
   * Stops a job: a waiting one at once; a running one is asked to stop, and its thread is retired
   * (and replaced at once) if it has not stopped within the grace time. Resolves once it stopped,
   * or its thread was retired.
   */
  abort(key: string): Promise<void> {
    const w = this.waiting.findIndex((t) => t.key === key);
    if (w >= 0) { this.waiting.splice(w, 1)[0]!.reject(new JobError('cancelled', true, false)); return Promise.resolve(); }
    const slot = this.slots.find((s) => s.task?.key === key);
    if (!slot) return Promise.resolve();
    const task = slot.task!;
    slot.worker.postMessage({ type: 'abort', key } satisfies ToThread);
    return new Promise((resolve) => {
      const settle = task.resolve, fail = task.reject;
      task.resolve = (o) => { clearTimeout(timer); settle(o); resolve(); };
      task.reject = (e) => { clearTimeout(timer); fail(e); resolve(); };
      const timer = setTimeout(() => {
        if (slot.task !== task || this.closed) return;
        slot.task = undefined;
        const i = this.slots.indexOf(slot);
        if (i >= 0) { this.slots[i] = this.spawn(); void this.retire(slot); }
        task.reject(new JobError('cancelled', true, false));
        this.next();
      }, this.abortGraceMs);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.waiting.splice(0)) t.reject(new JobError('service is shutting down', true, false));
    await Promise.all(this.slots.map((s) => this.retire(s)));
  }
}
