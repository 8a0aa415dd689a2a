/**
 * A worker thread of the service: runs `runJob` for the pool in the main thread, so matting uses
 * its own core and the API (and BullMQ's lock renewal) stays responsive while a job runs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CleanplateError, InterruptedError } from '../errors.js';
import { runJob } from './jobs.js';
import { DirStore } from './store.js';

export type ToThread = { type: 'run'; id: string } | { type: 'abort'; id: string };
export type FromThread =
  | { type: 'progress'; id: string; progress: import('./jobs.js').JobProgress }
  | { type: 'done'; id: string; outputs: string[] }
  | { type: 'error'; id: string; message: string; cancelled: boolean; user: boolean };

const store = new DirStore((workerData as { dataDir: string }).dataDir);
const running = new Map<string, AbortController>();
const port = parentPort!;

port.on('message', (msg: ToThread) => {
  if (msg.type === 'abort') { running.get(msg.id)?.abort(); return; }
  const controller = new AbortController();
  running.set(msg.id, controller);
  const send = (m: FromThread) => port.postMessage(m);
  runJob(store, msg.id, { signal: controller.signal, onProgress: (progress) => send({ type: 'progress', id: msg.id, progress }) })
    .then((outputs) => send({ type: 'done', id: msg.id, outputs }))
    .catch((err: Error) => send({ type: 'error', id: msg.id, message: err.message, cancelled: err instanceof InterruptedError, user: err instanceof CleanplateError }))
    .finally(() => running.delete(msg.id));
});
