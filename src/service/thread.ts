/**
 * A worker thread of the service: runs `runTask` for the pool in the main thread, so matting uses
 * its own core and the API (and BullMQ's lock renewal) stays responsive while a job runs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { CleanplateError, InterruptedError } from '../errors.js';
import { threadLimit } from '../threads.js';
import { runTask, type JobProgress, type JobTask, type TaskResult } from './jobs.js';
import { DirStore } from './store.js';

/** `key` names one run: the job's id, or the id and segment for a segment of a split video. */
export type ToThread = { type: 'run'; key: string; id: string; task: JobTask } | { type: 'abort'; key: string };
export type FromThread =
  | { type: 'progress'; key: string; progress: JobProgress }
  | { type: 'done'; key: string; result: TaskResult }
  | { type: 'error'; key: string; message: string; cancelled: boolean; user: boolean };

const limit = threadLimit();
if (limit) sharp.concurrency(limit);
const store = new DirStore((workerData as { dataDir: string }).dataDir);
const running = new Map<string, AbortController>();
const port = parentPort!;

port.on('message', (msg: ToThread) => {
  if (msg.type === 'abort') { running.get(msg.key)?.abort(); return; }
  const controller = new AbortController();
  running.set(msg.key, controller);
  const send = (m: FromThread) => port.postMessage(m);
  runTask(store, msg.id, msg.task, { signal: controller.signal, onProgress: (progress) => send({ type: 'progress', key: msg.key, progress }) })
    .then((result) => send({ type: 'done', key: msg.key, result }))
    .catch((err: Error) => send({ type: 'error', key: msg.key, message: err.message, cancelled: err instanceof InterruptedError, user: err instanceof CleanplateError }))
    .finally(() => running.delete(msg.key));
});
