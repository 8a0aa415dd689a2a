/**
 * A worker thread of the service: runs `runTask` for the pool in the main thread, so matting uses
 * its own core and the API (and BullMQ's lock renewal) stays responsive while a job runs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { CleanplateError, InterruptedError } from '../errors.js';
import { PriorThread } from '../prior/worker.js';
import { threadLimit } from '../threads.js';
import { runTask, type JobProgress, type JobTask, type TaskResult } from './jobs.js';
import { DirStore } from './store.js';

/**
 * `key` names one run: the job's id, or the id and segment for a segment of a split video. `exit`:
 * the thread stops its run and ends itself (ThreadPool's retire).
 */
export type ToThread = { type: 'run'; key: string; id: string; task: JobTask } | { type: 'abort'; key: string } | { type: 'exit' };
export type FromThread =
  | { type: 'progress'; key: string; progress: JobProgress }
  | { type: 'done'; key: string; result: TaskResult }
  | { type: 'error'; key: string; message: string; cancelled: boolean; user: boolean };

const limit = threadLimit();
if (limit) sharp.concurrency(limit);
const store = new DirStore((workerData as { dataDir: string }).dataDir);
const running = new Map<string, { controller: AbortController; settled: Promise<void> }>();
const port = parentPort!;
const send = (m: FromThread) => port.postMessage(m);
let exiting = false;

/**
 * Ends this thread from the inside: its run aborted and settled, then its prior threads closed and
 * ended, then the exit. Terminating it from outside instead would terminate a prior thread that may
 * be running its model, and ONNX Runtime then aborts the whole process (as it does for a model
 * running on this thread itself, the network engine's: a run only stops between two frames).
 */
async function exit(): Promise<void> {
  if (exiting) return;
  exiting = true;
  for (const { controller } of running.values()) controller.abort();
  await Promise.all([...running.values()].map((r) => r.settled));
  await PriorThread.closeAll();
  process.exit(0);
}

port.on('message', (msg: ToThread) => {
  if (msg.type === 'exit') { void exit(); return; }
  if (msg.type === 'abort') { running.get(msg.key)?.controller.abort(); return; }
  if (exiting) { send({ type: 'error', key: msg.key, message: 'cancelled', cancelled: true, user: false }); return; }
  const controller = new AbortController();
  const settled = runTask(store, msg.id, msg.task, { signal: controller.signal, onProgress: (progress) => send({ type: 'progress', key: msg.key, progress }) })
    .then((result) => send({ type: 'done', key: msg.key, result }))
    .catch((err: Error) => send({ type: 'error', key: msg.key, message: err.message, cancelled: err instanceof InterruptedError, user: err instanceof CleanplateError }))
    .finally(() => running.delete(msg.key));
  running.set(msg.key, { controller, settled });
});
